"""OpenLineage events of a collect_fse run: the inbox file and the tables it filled; the
datasets of an insurer's export.

The run is ``dag.test()`` in a child process with the OpenLineage settings the embedded
stack writes (``AirflowStandalone.environment``): the provider decides at import whether it
listens, so this test process, whose Airflow has long been imported, cannot be the one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from edihub import lineage
from edihub.sftp.client import put_atomic
from edihub.stack.airflow import AirflowStandalone
from edihub.statements import monaco_today
from tests.fixtures.airflow import airflow_connections
from tests.fixtures.exports import Exports, day_of_care
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.registry import seed_registry

pytestmark = pytest.mark.airflow

RUN = """
import os
from airflow.dag_processing.dagbag import DagBag

run = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags["collect_fse"].test()
assert run.state == "success", run.state
"""


def test_a_collect_run_names_the_inbox_file_and_the_tables_it_filled(
    airflow_db: None, dsn: str, embedded_sftp: Any, tmp_path: Path
) -> None:
    seed_registry(dsn, tmp_path)
    partner = embedded_sftp.add_partner(PRACTITIONER)
    with embedded_sftp.connect(partner) as sftp:
        put_atomic(sftp, fse_file(tmp_path / "good.xml"), "/inbound/fse/good.xml")
        bad = fse_file(tmp_path / "bad.xml", [sheet(1, practitioner_id="P99999")], batch="2")
        put_atomic(sftp, bad, "/inbound/fse/bad.xml")
    home = tmp_path / "airflow"
    stack = AirflowStandalone(
        home, Path(), Path(), os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    lineage = {k: v for k, v in stack.environment().items() if "OPENLINEAGE" in k}
    env = os.environ | airflow_connections(dsn, embedded_sftp) | lineage
    env |= {"EDIHUB_SETTLE_SECONDS": "0", "EDIHUB_FILES_PER_TASK": "1"}  # a task each
    env["EDIHUB_STATE_DIR"] = str(tmp_path / "state")
    home.mkdir()  # the stack's home, where the events file goes
    subprocess.run([sys.executable, "-c", RUN], env=env, check=True, timeout=120)

    events = [json.loads(line) for line in (home / "openlineage.jsonl").read_text().splitlines()]
    done = [e for e in events if e["eventType"] == "COMPLETE"]
    assert {e["job"]["namespace"] for e in done} == {"edihub"}

    def datasets(task: str, side: str) -> list[set[tuple[str, str]]]:
        """Per mapped run of ``task`` (one file each), its inputs or outputs."""
        return [
            {(d["namespace"], d["name"]) for d in e[side]}
            for e in done
            if e["job"]["name"] == f"collect_fse.process_files.{task}"
        ]

    sftp = f"sftp://{embedded_sftp.hub.host}:{embedded_sftp.hub.port}"
    inbox = "/partners/P10001/inbound/fse/"
    url = urllib.parse.urlsplit(dsn)
    host = urllib.parse.parse_qs(url.query).get("host", [url.hostname])[0]
    # A unix socket counts as localhost; no port given: PostgreSQL's.
    postgres = f"postgres://{'localhost' if host.startswith('/') else host}:{url.port or 5432}"
    database = url.path.lstrip("/")
    # The good file filled the FSE tables, the refused one only its row in edi.inbound_file.
    tables = {
        next(iter(inputs))[1].rsplit("/", 1)[1]: {name for _, name in outputs}
        for inputs, outputs in zip(
            datasets("load", "inputs"), datasets("load", "outputs"), strict=True
        )
    }
    assert tables == {
        "good.xml": {f"{database}.edi.{t}" for t in ("fse_act", "fse_care_sheet", "inbound_file")},
        "bad.xml": {f"{database}.edi.inbound_file"},
    }
    loads = datasets("load", "inputs") + datasets("load", "outputs")
    assert {namespace for each in loads for namespace, _ in each} == {sftp, postgres}
    assert sorted(map(sorted, datasets("fetch", "inputs"))) == sorted(
        [[(sftp, inbox + "bad.xml")], [(sftp, inbox + "good.xml")]]
    )
    archived = {
        name.rsplit("/", 2)[0] for each in datasets("archive", "outputs") for _, name in each
    }
    assert archived == {"/archive/P10001/fse"}
    acks = {
        name.rsplit("/", 1)[1] for each in datasets("acknowledge", "outputs") for _, name in each
    }
    assert {a.split(".xml.")[0] for a in acks} == {"good", "bad"}


@pytest.mark.parametrize("sftp_server", ["embedded"], indirect=True)
def test_an_insurers_export_run_names_its_file_and_manifest(
    exports: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in airflow_connections(exports.dsn, exports.server).items():
        monkeypatch.setenv(name, value)
    today = monaco_today()
    day_of_care(exports, today)
    published = exports.publish("INS01", today)

    ran = lineage.datasets("export_insurers", "export_insurer",
                           {"insurer_id": "INS01", "days": [today.isoformat()]})  # fmt: skip

    sftp = f"sftp://{exports.server.hub.host}:{exports.server.hub.port}"
    assert [(d.namespace, d.name) for d in ran.outputs] == [
        (sftp, published.path), (sftp, f"{published.path}.manifest.json")]  # fmt: skip
    assert {d.name.split(".", 1)[1] for d in ran.inputs} == set(lineage.EXPORT_INPUTS)
    # A day not published yet names no file.
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert (
        lineage.datasets(
            "export_insurers", "export_insurer", {"insurer_id": "INS01", "days": [tomorrow]}
        ).outputs
        == []
    )
