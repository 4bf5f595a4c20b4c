"""The exactly-once guarantees under a worker killed with SIGKILL (edihub.faults) at every
step of a collect run and of an export, on the real PostgreSQL and SFTP servers: the worker
runs in its own process and dies at the point; the next run finishes the job. Every file and
every statement then exists once, nothing is left half-written on the server, and every file
is in a final state with its acknowledgment."""

from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from edihub.faults import POINTS
from edihub.sftp.layout import statements_dir
from edihub.statements import monaco_today
from tests.fixtures.crash_worker import endpoint_json, finished, run_worker, start_worker
from tests.fixtures.exports import Exports, day_of_care
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.hub import Hub, ack_status, make_hub
from tests.fixtures.registry import seed_registry

# The points a collect run passes (the sftp ones: while writing the first file's ack).
COLLECT_POINTS = sorted(p for p in POINTS if p.startswith(("collect.", "sftp.")))
# The points an export passes (the sftp ones: while writing the insurer's file).
EXPORT_POINTS = sorted(p for p in POINTS if p.startswith(("exports.", "sftp.")))


@pytest.fixture
def hub(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, PRACTITIONER, dsn, tmp_path / "state", "fse")


@pytest.fixture
def embedded_hub(embedded_sftp: Any, dsn: str, tmp_path: Path) -> Hub:
    """The crash matrix runs on the embedded server only: what a crash leaves is the hub's
    doing, not the server's (OpenSSH runs the export crashes and the concurrent runs)."""
    seed_registry(dsn, tmp_path)
    return make_hub(embedded_sftp, PRACTITIONER, dsn, tmp_path / "state", "fse")


def leftovers(root: Path) -> list[str]:
    """Half-written files anywhere on the server."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.part"))


@pytest.mark.parametrize("point", COLLECT_POINTS)
def test_a_collect_killed_at_any_step_then_rerun_loads_each_file_once(
    embedded_hub: Hub, tmp_path: Path, point: str
) -> None:
    hub = embedded_hub
    hub.send(fse_file(tmp_path / "FSE_1.xml", [sheet(i) for i in range(1, 6)]))
    hub.send(fse_file(tmp_path / "FSE_2.xml", [sheet(i) for i in range(6, 9)], batch="000002"))
    job = {"step": "collect", "feed": "fse", "dsn": hub.dsn,
           "endpoint": endpoint_json(hub.server.hub)}  # fmt: skip

    assert run_worker(job, hub.settings.state_dir, point) == -signal.SIGKILL

    hub.collect()  # the next run, in this process
    assert [f[:2] + f[3:] for f in hub.files()] == [
        ("FSE_1.xml", "loaded", 5, True, True),
        ("FSE_2.xml", "loaded", 3, True, True),
    ]
    assert hub.query("SELECT count(*), count(DISTINCT sheet_id) FROM edi.fse_care_sheet") == [
        (8, 8)
    ]
    assert hub.query("SELECT count(*) FROM edi.fse_act a JOIN edi.fse_care_sheet s"
                     " USING (file_id, sheet_id)") == hub.query(
        "SELECT count(*) FROM edi.fse_act")  # fmt: skip
    assert hub.inbox() == []
    with hub.server.connect(hub.partner) as sftp:
        acks = sorted(sftp.listdir("/outbound/acks"))
    assert [a.split(".xml.")[0] for a in acks] == ["FSE_1", "FSE_2"]  # one each, whole
    assert ack_status(hub.ack("FSE_1.xml")) == ("accepted", "A")
    archived = sorted(p.name for p in hub.server.local("/archive").rglob("*") if p.is_file())
    assert len(archived) == 2, archived
    assert leftovers(hub.server.root) == []
    # and a third run finds nothing to do
    assert hub.collect() == [] and len(hub.files()) == 2


def test_two_collect_runs_at_once_load_each_file_once(hub: Hub, tmp_path: Path) -> None:
    """An overlapping schedule or a manual trigger: two workers over the same inbox."""
    for n in range(1, 7):
        sheets = [sheet(i) for i in range(10 * n, 10 * n + 3)]
        hub.send(fse_file(tmp_path / f"FSE_{n}.xml", sheets, batch=f"{n:06d}"))
    job = {"step": "collect", "feed": "fse", "dsn": hub.dsn,
           "endpoint": endpoint_json(hub.server.hub)}  # fmt: skip
    workers = [start_worker(job, hub.settings.state_dir, None) for _ in range(2)]
    assert [finished(w) for w in workers] == [0, 0]

    assert hub.collect() == []  # nothing is left for a third run
    # one row each: the run that came second to a file found it in flight or gone
    assert sorted(hub.files()) == [
        (f"FSE_{n}.xml", "loaded", None, 3, True, True) for n in range(1, 7)
    ]
    assert hub.query("SELECT count(*), count(DISTINCT sheet_id) FROM edi.fse_care_sheet") == [
        (18, 18)
    ]
    assert hub.inbox() == [] and leftovers(hub.server.root) == []


@pytest.mark.parametrize("point", EXPORT_POINTS)
def test_an_export_killed_at_any_step_then_rerun_publishes_it_once(
    exports: Exports, point: str
) -> None:
    today = monaco_today()
    day_of_care(exports, today)
    job = {"step": "publish", "insurer_id": "INS01", "day": today, "dsn": exports.dsn,
           "endpoint": endpoint_json(exports.server.hub)}  # fmt: skip

    assert run_worker(job, exports.folder / "state", point) == -signal.SIGKILL

    again = exports.publish("INS01", today)
    name = f"CSM_INS01_{today:%Y%m%d}_000001.csv"
    files = exports.pulled("INS01")
    assert sorted(files) == [name, f"{name}.manifest.json"]
    assert json.loads(files[f"{name}.manifest.json"])["row_count"] == again.rows > 0
    assert exports.query(
        "SELECT sequence, state, row_count FROM edi.export_file WHERE insurer_id = 'INS01'"
    ) == [(1, "published", again.rows)]
    assert leftovers(exports.server.root) == []
    assert exports.server.local(statements_dir("ins01")).is_dir()
    # a later rerun changes no byte
    assert exports.publish("INS01", today).uploaded is False
    assert exports.pulled("INS01") == files
    assert dt.date.fromisoformat(json.loads(files[f"{name}.manifest.json"])["export_day"]) == today
