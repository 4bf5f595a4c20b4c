"""Infrastructure faults on the real servers (issue 6): PostgreSQL restarted while a file's
load is under way, and no room left in one insurer's folder on the SFTP server. Each step
fails with an error that raises (Airflow retries it with backoff), loses nothing, leaves no
half-written row or file, and its retry once the fault is gone ends as if nothing had
happened; the other files and the other insurers are not held up."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from edihub import collect, orchestration
from edihub.exports import due_at, due_exports, export_status, publish
from edihub.sftp.client import ServerDiskFull
from edihub.sftp.layout import insurer_folders, statements_dir
from edihub.statements import MONACO, build_statements, monaco_today
from tests.fixtures.exports import LATER, Exports, insurers
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.full_disk import PAGE, full_disk
from tests.fixtures.hub import make_hub
from tests.fixtures.registry import seed_registry
from tests.fixtures.restartable_postgres import RestartablePostgres, restartable_postgres


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[RestartablePostgres]:
    with restartable_postgres(tmp_path / "pg") as server:
        yield server


def waiting_on(dsn: str, table: str, deadline: float = 30.0) -> tuple[str, bool]:
    """Once a session waits for a lock on ``table``: its statement, and whether its
    transaction has written anything yet (it has an xid)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True  # no transaction: pg_stat_activity is read afresh each time
    with contextlib.closing(conn), conn.cursor() as cur:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            # The wait as pg_stat_activity shows it too: its snapshot, taken apart from
            # pg_locks', may still show the session's previous statement.
            cur.execute(
                "SELECT a.query, a.backend_xid IS NOT NULL FROM pg_locks l"
                " JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND l.relation = %s::regclass"
                " AND a.wait_event_type = 'Lock'",
                (table,),
            )
            found = cur.fetchone()
            if found:
                return found[0], found[1]
            time.sleep(0.02)
    raise AssertionError(f"no session waited on {table} within {deadline} s")


def test_postgres_restarted_mid_copy_then_the_retry_loads_each_file_once(
    private_pg: RestartablePostgres,
    embedded_sftp: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = private_pg.hub_database()
    seed_registry(dsn, tmp_path)
    hub = make_hub(embedded_sftp, PRACTITIONER, dsn, tmp_path / "state", "fse")
    hub.send(fse_file(tmp_path / "FSE_1.xml", [sheet(i) for i in range(1, 4)]))
    hub.collect()  # a file loaded before the fault, which must stay loaded once
    hub.send(fse_file(tmp_path / "FSE_2.xml", [sheet(i) for i in range(10, 15)], batch="000002"))
    hub.send(fse_file(tmp_path / "FSE_3.xml", [sheet(i) for i in range(20, 23)], batch="000003"))
    # The batch's fetch and validate tasks, then its load task as Airflow runs it.
    with hub.server.connect(hub.server.hub) as sftp:
        items = collect.list_inbound(sftp, "fse", 0)
        file_ids = [collect.fetch(sftp, dsn, hub.settings, item) for item in items]
    for file_id in file_ids:
        collect.validate(dsn, hub.settings, file_id)
    airflow_conn = {"conn_type": "postgres", "host": private_pg.socket_dir, "login": "postgres",
                    "schema": "hub"}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_EDI_POSTGRES", json.dumps(airflow_conn))
    monkeypatch.setenv("EDIHUB_STATE_DIR", str(hub.settings.state_dir))

    # The first file's COPY of care sheets done, its COPY of acts held on a lock: the
    # restart then hits a load under way, deterministically.
    blocker, pool = psycopg2.connect(dsn), ThreadPoolExecutor(1)
    try:
        blocker.cursor().execute("LOCK TABLE edi.fse_act IN SHARE MODE")
        task = pool.submit(orchestration.load, file_ids)
        statement, wrote = waiting_on(dsn, "edi.fse_act")
        assert statement.startswith('COPY "edi"."fse_act"') and wrote
        private_pg.stop()
        error = task.exception(timeout=60)
    finally:
        blocker.close()  # first: a load still waiting on its lock then ends
        pool.shutdown()

    assert isinstance(error, RuntimeError) and "load failed for 2 of 2 file(s)" in str(error)
    assert isinstance(error.__cause__, psycopg2.OperationalError)
    # libpq reports the backend's end as the FATAL it read or as the connection it lost
    assert re.search("terminating connection|server closed the connection", str(error.__cause__))
    # Still down when the next run starts: it raises too (no server on the socket), and
    # decides nothing about any file.
    with pytest.raises(psycopg2.OperationalError):
        hub.collect()

    private_pg.start()
    assert [f[:2] for f in hub.files()] == [
        ("FSE_1.xml", "loaded"), ("FSE_2.xml", "received"), ("FSE_3.xml", "received")
    ]  # fmt: skip
    assert hub.query("SELECT count(*) FROM edi.fse_care_sheet WHERE file_id = ANY(%s)",
                     file_ids) == [(0,)]  # fmt: skip
    assert hub.inbox() == ["FSE_2.xml", "FSE_3.xml"]

    assert orchestration.load(file_ids) == file_ids  # the task's retry
    hub.collect()  # the next run: the batch's archive and acknowledge, nothing else redone
    assert hub.files() == [
        ("FSE_1.xml", "loaded", None, 3, True, True),
        ("FSE_2.xml", "loaded", None, 5, True, True),
        ("FSE_3.xml", "loaded", None, 3, True, True),
    ]
    assert hub.query("SELECT count(*), count(DISTINCT sheet_id) FROM edi.fse_care_sheet") == [
        (11, 11)
    ]
    assert hub.query("SELECT count(*) FROM edi.fse_act") == [(22,)]
    with hub.server.connect(hub.partner) as sftp:
        acks = sorted(sftp.listdir("/outbound/acks"))
    assert [a.split(".xml.")[0] for a in acks] == ["FSE_1", "FSE_2", "FSE_3"]
    assert hub.inbox() == [] and hub.collect() == []


def fifty_two_insurers() -> list[dict[str, Any]]:
    """The fixture's four, all active, and 48 more without members (empty, numbered files)."""
    first = insurers(paused="")
    more = [{**first[0], "insurer_id": f"INS{n:02d}", "name": f"Mutuelle {n}",
             "sftp_account": f"ins{n:02d}", "export_format": ("csv", "xml", "parquet")[n % 3]}
            for n in range(5, 53)]  # fmt: skip
    return first + more


def export_run(exports: Exports, now: dt.datetime) -> dict[str, Exception]:
    """The export DAG's run at ``now``: each due insurer's task publishes its days, and fails
    alone; what each failed task raised."""
    failed: dict[str, Exception] = {}
    with exports.server.connect(exports.server.hub) as sftp:
        for due in due_exports(exports.dsn, now):
            try:
                for day in due["days"]:
                    publish(exports.dsn, sftp, due["insurer_id"], dt.date.fromisoformat(day))
            except Exception as exc:  # the task fails, Airflow retries it; the others go on
                failed[due["insurer_id"]] = exc
    return failed


@pytest.mark.airflow
def test_a_full_disk_in_one_insurers_folder_fails_its_export_alone_until_room_is_made(
    exports: Exports, dagbag: Any
) -> None:
    every = fifty_two_insurers()
    exports.register(every, LATER + dt.timedelta(days=1))
    for row in every[4:]:
        exports.accounts[row["insurer_id"]] = exports.server.add_partner(
            row["sftp_account"], insurer_folders()
        )
    today = monaco_today()
    care = [sheet(i) for i in range(1, 31)]  # INS01's file: 40 lines, more than a page
    exports.ingest("fse", fse_file(exports.folder / "F1.xml", care), PRACTITIONER)
    build_statements(exports.dsn, now=dt.datetime.combine(today, dt.time(12), MONACO),
                     close_today=True)  # fmt: skip
    next_morning = due_at("06:00", today)
    statements = exports.server.local(statements_dir("ins01"))

    with full_disk(statements.parent, size=16 * PAGE, free=PAGE) as disk:
        failed = export_run(exports, next_morning)

        assert list(failed) == ["INS01"]
        error = failed["INS01"]
        assert isinstance(error, ServerDiskFull) and error.errno == errno.ENOSPC
        assert "no space left on the SFTP server" in str(error)
        assert list(statements.iterdir()) == []  # nothing under its name, no .part either
        files = exports.query("SELECT insurer_id, sequence, state, attempts, last_error,"
                              " file_name FROM edi.export_file ORDER BY insurer_id")  # fmt: skip
        assert [f[:4] for f in files] == [("INS01", 1, "planned", 1)] + [
            (row["insurer_id"], 1, "published", 1) for row in every[1:]
        ]
        assert files[0][4].startswith("ServerDiskFull: [Errno 28] no space left")
        for iid, _, _, _, _, name in files[1:]:
            folder = exports.server.local(statements_dir(iid.lower()))
            assert sorted(p.name for p in folder.iterdir()) == [name, f"{name}.manifest.json"]
        statuses = {s.insurer_id: s.status for s in export_status(exports.dsn, next_morning)
                    if s.day == today}  # fmt: skip
        assert statuses == {"INS01": "failed"} | {row["insurer_id"]: "published"
                                                  for row in every[1:]}  # fmt: skip
        # Its task fails, and Airflow retries it with backoff (what the next run does too).
        task = dagbag.dags["export_insurers"].get_task("export_insurer")
        assert task.retries == 3 and task.retry_exponential_backoff

        disk.make_room()
        assert due_exports(exports.dsn, next_morning) == [
            {"insurer_id": "INS01", "days": [today.isoformat()]}
        ]
        assert export_run(exports, next_morning) == {}
        name = files[0][5]
        pulled = exports.pulled("INS01")
        assert sorted(pulled) == [name, f"{name}.manifest.json"]
        manifest = json.loads(pulled[f"{name}.manifest.json"])
        assert manifest["sha256"] == hashlib.sha256(pulled[name]).hexdigest()
        assert manifest["row_count"] == 40 and manifest["sequence"] == 1
        assert exports.query(
            "SELECT sequence, state, attempts, last_error FROM edi.export_file"
            " WHERE insurer_id = 'INS01'"
        ) == [(1, "published", 2, None)]
        assert due_exports(exports.dsn, next_morning) == []
