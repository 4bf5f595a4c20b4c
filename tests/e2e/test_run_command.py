"""``edihub run`` end to end: the README's first command, as a user runs it.

One subprocess starts the embedded stack on a fresh state folder, runs the collect DAG of
every feed (collect_fse, collect_pharmacy) under Airflow standalone's real scheduler and
stops everything. The test then reads the outcome where a user would find it: the terminal
output, the hub database (the embedded PostgreSQL started again on the same folder), the
acknowledgment files, the process table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import psycopg2.extras
import pytest

from edihub.feeds import FEEDS
from edihub.load.db import connect
from edihub.stack.airflow import PASSWORD_FILE, stack_processes
from edihub.stack.postgres import EmbeddedPostgres
from edihub.stack.run import postgres_processes

pytestmark = pytest.mark.airflow

LAST_MONTH = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
YESTERDAY = f"{dt.date.today() - dt.timedelta(days=1):%Y%m%d}"
RUN_TIMEOUT = 240  # seconds; a run takes about 100 s here (12 s of it starting Airflow)

# What edihub.demo makes its partners send, and how each file must end (see its docstring):
# (feed, sender, file) -> (state, records total, loaded, rejected)
EXPECTED = {
    # the registry first, in one snapshot per document from the funds' core systems
    ("registry", "csm-core", f"insured_{YESTERDAY}.csv"): ("loaded", 300, 300, 0),
    ("registry", "csm-core", f"card_{YESTERDAY}.csv"): ("loaded", 300, 300, 0),
    ("registry", "csm-core", f"practitioner_{YESTERDAY}.csv"): ("loaded", 3, 3, 0),
    ("registry", "csm-core", f"pharmacy_{YESTERDAY}.csv"): ("loaded", 2, 2, 0),
    ("registry", "csm-core", f"employer_{YESTERDAY}.csv"): ("loaded", 3, 3, 0),
    ("registry", "csm-core", f"insurer_{YESTERDAY}.csv"): ("loaded", 52, 52, 0),
    ("fse", "P10001", "FSE_P10001_000001.xml"): ("loaded", 40, 40, 0),
    ("fse", "P10002", "FSE_P10002_000001.xml"): ("loaded_with_errors", 25, 23, 2),
    ("fse", "D20001", "FSE_D20001_000001.xml"): ("loaded", 15, 15, 0),
    ("fse", "D20001", "FSE_D20001_000002.xml"): ("rejected", 5, 0, 5),
    # FSE v2: the other messages (work stoppages, requests, dental prior approvals)
    ("fse", "P10001", "FSE_P10001_000002.xml"): ("loaded", 6, 6, 0),
    ("fse", "P10001", "FSE_P10001_000003.xml"): ("loaded", 1, 1, 0),
    ("fse", "P10002", "FSE_P10002_000002.xml"): ("loaded", 3, 3, 0),
    ("fse", "D20001", "FSE_D20001_000003.xml"): ("loaded", 3, 3, 0),
    ("pharmacy", "PH000001", "PHA_PH000001_00000001.txt"): ("loaded", 20, 20, 0),
    ("pharmacy", "PH000002", "PHA_PH000002_00000001.txt"): ("loaded", 18, 18, 0),
    # one invoice with a line amount that is not quantity x unit price (PHA-R08)
    ("pharmacy", "PH000002", "PHA_PH000002_00000002.txt"): ("loaded_with_errors", 6, 5, 1),
    ("payroll", "EMP0001", f"DSM_EMP0001_{LAST_MONTH}.xml"): ("loaded", 12, 12, 0),
    ("payroll", "EMP0002", f"DSM_EMP0002_{LAST_MONTH}.xml"): ("loaded", 2, 2, 0),
    # a household employer's paper form, keyed in and sent by the funds' staff (payroll v2)
    ("payroll", "CSMSAISIE", f"DSM_EMP0003_{LAST_MONTH}.xml"): ("loaded", 1, 1, 0),
}


def run_edihub(state: Path) -> tuple[int, str]:
    # A user's shell, not the test session's: no Airflow or hub settings leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EDIHUB_"))}
    edihub = Path(sys.executable).parent / "edihub"
    proc = subprocess.Popen(
        [str(edihub), "run", "--state-dir", str(state), "--timeout", str(RUN_TIMEOUT - 30)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # edihub stops its stack on SIGTERM, as on Ctrl-C
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"edihub run took over {RUN_TIMEOUT} s:\n{out}")
    return proc.returncode, out


def processes_of(state: Path) -> list[str]:
    """Anything still running for this state folder: Airflow, PostgreSQL, or edihub itself."""
    left = stack_processes(state / "airflow") + postgres_processes(state / "postgres")
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(state) in cmdline and proc.pid != os.getpid():
            left.append(f"{proc.pid} {cmdline[:120]}")
    return left


def inbound_files(state: Path) -> list[dict[str, Any]]:
    server = EmbeddedPostgres(state / "postgres").start()
    try:
        with (
            connect(server.url("edihub")) as conn,
            conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur,
        ):
            cur.execute(
                "SELECT feed, sender, remote_name, state, records_total, records_loaded,"
                " records_rejected, ack_path FROM edi.inbound_file ORDER BY id"
            )
            rows = [dict(r) for r in cur.fetchall()]
    finally:
        server.stop()
    return rows


def test_edihub_run_collects_the_demo_files_and_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "state"
    code, out = run_edihub(state)

    assert code == 0, out
    assert processes_of(state) == [], out

    password = json.loads((state / "airflow" / PASSWORD_FILE).read_text())["admin"]
    ui = re.search(r"Airflow UI: (http://127\.0\.0\.1:\d+)\s+\(user admin, password (\S+)\)", out)
    assert ui, out
    assert ui.group(2) == password
    assert {feed for feed, _, _ in EXPECTED} == set(FEEDS)  # the demo covers every feed
    for feed in FEEDS:  # every feed's collect DAG ran, and succeeded
        assert re.search(rf"Run manual__\S+ of collect_{feed}: success", out), out

    rows = inbound_files(state)
    outcome = {
        (r["feed"], r["sender"], r["remote_name"]): (
            r["state"],
            r["records_total"],
            r["records_loaded"],
            r["records_rejected"],
        )
        for r in rows
    }
    assert outcome == EXPECTED
    assert len(rows) == len(EXPECTED)  # each file once

    for r in rows:
        # The hub's account sees the SFTP tree's root: its paths map into <state>/sftp.
        assert r["ack_path"], r
        ack = state / "sftp" / r["ack_path"].lstrip("/")
        assert ack.is_file(), ack
        assert ack.parent == state / "sftp" / "partners" / r["sender"] / "outbound" / "acks"
        assert str(ack.parent) in out  # the report says where the acks are

    # The paper declaration's payslip waits in the paper account's folder, for the mail room.
    paper = state / "sftp" / "partners" / "CSMSAISIE" / "outbound" / "payroll" / LAST_MONTH
    assert [p.name for p in paper.iterdir()] == ["EMP0003"]
    assert "recapitulatif_cotisations.html" in {p.name for p in (paper / "EMP0003").iterdir()}

    # The day's fan-out: statements issued, e-mails in the catcher, the mail room's print
    # batch, and a numbered file with its manifest in each of the 52 insurers' folders.
    for dag_id in ("build_statements", "notify_insured", "export_insurers"):
        assert re.search(rf"Run manual__\S+ of {dag_id}: success", out), out
    issued = re.search(r"Statements of \S+: (\d+) \((\d+) by e-mail, (\d+) on paper", out)
    assert issued, out
    statements, by_email, by_paper = map(int, issued.groups())
    assert statements == by_email + by_paper and by_email > 0 and by_paper > 0
    assert len(list((state / "mail").glob("*.eml"))) == by_email
    printed = list((state / "sftp" / "partners" / "CSMSAISIE" / "outbound" / "print").rglob("*"))
    assert any(p.suffix == ".pdf" for p in printed), printed
    insurers = sorted((state / "sftp" / "partners").glob("mut*/outbound/statements"))
    assert len(insurers) == 52
    for folder in insurers:
        names = sorted(p.name for p in folder.iterdir())
        assert len(names) == 2 and names[1] == names[0] + ".manifest.json", names

    assert processes_of(state) == []  # the test's own PostgreSQL start is stopped too
