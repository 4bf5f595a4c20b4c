"""The collect_fse DAG itself, run by Airflow (``dag.test()``) on the real servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg2
import pytest

from edihub.sftp.client import put_atomic
from tests.fixtures.airflow import airflow_connections
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.registry import seed_registry

pytestmark = pytest.mark.airflow


def test_collect_fse_dag_run(
    dagbag: Any, dsn: str, embedded_sftp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in airflow_connections(dsn, embedded_sftp).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EDIHUB_SETTLE_SECONDS", "0")
    monkeypatch.setenv("EDIHUB_FILES_PER_TASK", "1")  # each file its own mapped task group
    monkeypatch.setenv("EDIHUB_STATE_DIR", str(tmp_path / "state"))
    seed_registry(dsn, tmp_path)
    partner = embedded_sftp.add_partner(PRACTITIONER)
    with embedded_sftp.connect(partner) as sftp:
        put_atomic(sftp, fse_file(tmp_path / "good.xml"), "/inbound/fse/good.xml")
        bad = fse_file(tmp_path / "bad.xml", [sheet(1, practitioner_id="P99999")], batch="2")
        put_atomic(sftp, bad, "/inbound/fse/bad.xml")

    run = dagbag.dags["collect_fse"].test()

    assert run.state == "success"
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    assert sorted(i for task, i in states if task == "process_files.fetch") == [0, 1]
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT remote_name, state, acked_at IS NOT NULL FROM edi.inbound_file"
                " WHERE feed = 'fse'"
                " ORDER BY remote_name"
            )
            assert cur.fetchall() == [("bad.xml", "rejected", True), ("good.xml", "loaded", True)]
    finally:
        conn.close()
    with embedded_sftp.connect(partner) as sftp:
        acks = sorted(sftp.listdir("/outbound/acks"))
        assert [a.split(".xml.")[0] for a in acks] == ["bad", "good"]
        assert sftp.listdir("/inbound/fse") == []
