"""The fan-out DAGs themselves, run by Airflow (``dag.test()``) on the real servers: statements
issued by build_statements, e-mailed by notify_insured, and export_insurers mapping one task
per insurer, so that one insurer's broken folder fails its own task and no other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edihub.notify.catcher import MailCatcher
from edihub.registry_writer import write_snapshot
from edihub.sftp.layout import statements_dir
from edihub.statements import monaco_today
from tests.fixtures.airflow import airflow_connections
from tests.fixtures.exports import LATER, Exports, insured, insurers
from tests.fixtures.fse import PRACTITIONER, fse_file
from tests.fixtures.registry import CORE, seed_registry

pytestmark = pytest.mark.airflow


def _task_states(run: Any) -> dict[str, str]:
    return {
        f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]": ti.state
        for ti in run.get_task_instances()
    }


def test_the_fanout_dags_issue_mail_and_export_each_insurer_alone(
    dagbag: Any, dsn: str, embedded_sftp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catcher = MailCatcher(tmp_path / "mail").start()
    try:
        smtp = {
            "conn_type": "smtp", "host": catcher.host, "port": catcher.port,
            "extra": {"from_email": "releves@example.mc", "disable_ssl": True,
                      "disable_tls": True},
        }  # fmt: skip
        for name, value in airflow_connections(dsn, embedded_sftp).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AIRFLOW_CONN_EDI_SMTP", json.dumps(smtp))
        monkeypatch.setenv("EDIHUB_STATE_DIR", str(tmp_path / "state"))
        seed_registry(dsn, tmp_path)
        hub = Exports(dsn, tmp_path, embedded_sftp)
        hub.ingest("registry", write_snapshot(tmp_path / "ri", "insured", LATER, insured()), CORE)
        hub.register(insurers())
        hub.ingest("fse", fse_file(tmp_path / "F1.xml"), PRACTITIONER)

        built = dagbag.dags["build_statements"].test(run_conf={"close_today": True})
        assert built.state == "success", _task_states(built)
        notified = dagbag.dags["notify_insured"].test()
        assert notified.state == "success", _task_states(notified)
        assert sorted(str(m["To"]) for m in catcher.wait_for(2)) == [
            "123456@example.mc",
            "654321@example.mc",
        ]
    finally:
        catcher.stop()

    # INS01's folder is broken on the server: only its own mapped task may fail.
    broken = embedded_sftp.local(statements_dir("ins01"))
    broken.rmdir()
    broken.write_bytes(b"")
    dag = dagbag.dags["export_insurers"]
    for task in dag.tasks:  # fail now rather than after the production backoff
        monkeypatch.setattr(task, "retries", 0)
    today = monaco_today()
    exported = dag.test(run_conf={"day": today.isoformat()})
    states = _task_states(exported)
    assert states == {
        "due_exports[-1]": "success",
        "export_insurer[INS01]": "failed",
        "export_insurer[INS02]": "success",
        "export_insurer[INS03]": "success",
    }
    assert hub.query(
        "SELECT insurer_id, state, last_error IS NOT NULL FROM edi.export_file"
        " WHERE export_day = %s ORDER BY 1",
        today,
    ) == [("INS01", "planned", True), ("INS02", "published", False), ("INS03", "published", False)]
    assert sorted(hub.pulled("INS02")) == [
        f"CSM_INS02_{today:%Y%m%d}_000001.xml",
        f"CSM_INS02_{today:%Y%m%d}_000001.xml.manifest.json",
    ]
