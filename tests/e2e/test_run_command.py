"""``edihub run`` end to end: the README's first command, as a user runs it.

One subprocess starts the embedded stack on a fresh state folder, drops the brochure demo's
files (edihub.population: the registry and December 2016's partner files) on the SFTP server,
runs the collect DAG of every feed, then the day's statements, e-mails, print batch and the 52
insurers' exports under Airflow standalone's real scheduler, serves the KPI dashboard and
stops everything. The test then reads the outcome where a user would find it: the terminal
output, the hub database (the embedded PostgreSQL started again on the same folder), the
acknowledgment files, the dashboard the run fetched from the Airflow UI and its HTML file, the
process table. Every brochure figure is pinned to what the demo yields.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lxml.html
import psutil
import psycopg2.extras
import pytest

from edihub.feeds import FEEDS
from edihub.kpi.figures import brochure
from edihub.load.db import connect
from edihub.stack.airflow import PASSWORD_FILE, stack_processes
from edihub.stack.postgres import EmbeddedPostgres
from edihub.stack.run import postgres_processes

RUN_TIMEOUT = 720  # seconds; a run takes about 4 min here (12 s of it starting Airflow)
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(RUN_TIMEOUT + 120)]
# What edihub.population makes its partners send: feed -> (files, senders, records loaded).
# The same seed always gives these numbers.
EXPECTED = {
    "registry": (6, 1, 162_749),
    "fse": (210, 210, 8_975),  # one month of care sheets per practitioner
    "pharmacy": (15, 15, 2_930),
    "payroll": (200, 171, 4_000),  # 170 companies' own, 30 keyed in from paper by CSMSAISIE
}
# The brochure's figures as the demo must show them: tile -> (value, ratio rounded as printed).
BROCHURE = {
    "teleservice_subscribers": (47_596, None),
    "validated_email": (43_910, 0.92),
    "dematerialisation": (32_481, 0.68),
    "statements_by_email": (1_000, 0.40),
    "contracted_insurers": (52, None),
    "electronic_employers": (170, 0.85),
    "paper_employer_size": (4, None),
    "paper_line_share": (120, 0.03),
    "household_first_month": (390, None),
    "household_after_a_year": (1_136, 0.5),
    "fse_doctors": (180, None),
    "fse_general_practitioners": (92, None),
    "fse_specialists": (88, None),
    "fse_dentists": (30, None),
    "fse_per_month": (8_975, None),
    "pharmacies": (15, None),
    "reimbursement_three_days": (1, 1.0),  # paid the day after receipt, every claim
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


def html_tiles(page: Path) -> dict[str, str]:
    """Each tile of the HTML report: its key and its headline as a reader sees it."""
    tree = lxml.html.parse(str(page))
    return {
        t.get("data-key"): " ".join(t.find_class("big")[0].text_content().split())
        for t in tree.iter("article")
        if "tile" in (t.get("class") or "")
    }


def test_edihub_run_gives_the_brochure_figures_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    code, out = run_edihub(state)

    assert code == 0, out
    assert processes_of(state) == [], out
    assert "Hub clock: 2016-12-31" in out

    password = json.loads((state / "airflow" / PASSWORD_FILE).read_text())["admin"]
    ui = re.search(r"Airflow UI: (http://127\.0\.0\.1:\d+)\s+\(user admin, password (\S+)\)", out)
    assert ui, out
    assert ui.group(2) == password
    assert set(EXPECTED) == set(FEEDS)  # the demo covers every feed
    for feed in FEEDS:  # every feed's collect DAG ran, and succeeded
        assert re.search(rf"Run manual__\S+ of collect_{feed}: success", out), out

    rows = inbound_files(state)
    found = {
        feed: (
            len(mine := [r for r in rows if r["feed"] == feed]),
            len({r["sender"] for r in mine}),
            sum(r["records_loaded"] for r in mine),
        )
        for feed in FEEDS
    }
    assert found == EXPECTED
    assert {r["state"] for r in rows} == {"loaded"} and not any(r["records_rejected"] for r in rows)
    for r in rows:  # every file acknowledged, in its own sender's folder
        ack = state / "sftp" / r["ack_path"].lstrip("/")
        assert ack.is_file() and ack.parent.parts[-3] == r["sender"], r

    # The day's fan-out: statements issued, e-mails in the catcher, the mail room's print
    # batch, and a numbered file with its manifest in each of the 52 insurers' folders.
    for dag_id in ("build_statements", "notify_insured", "export_insurers"):
        assert re.search(rf"Run manual__\S+ of {dag_id}: success", out), out
    assert "Statements of 2016-12-31: 2500 (1000 by e-mail, 1500 on paper" in out
    assert "Deliveries: 1000 e-mailed, 1500 printed, 0 pending" in out
    assert len(list((state / "mail").glob("*.eml"))) == 1000
    printed = state / "sftp" / "partners" / "CSMSAISIE" / "outbound" / "print" / "2016-12-31"
    assert sorted(p.suffix for p in printed.iterdir()) == [".csv", ".pdf"]
    insurers = sorted((state / "sftp" / "partners").glob("mut*/outbound/statements"))
    assert len(insurers) == 52
    for folder in insurers:
        names = sorted(p.name for p in folder.iterdir())
        assert len(names) == 2 and names[1] == names[0] + ".manifest.json", names

    # The dashboard: served by the Airflow UI (the run fetched kpi.json as admin), written as
    # one HTML file, the two agreeing, and each figure the brochure's.
    served = re.search(r"KPI dashboard: (http://127\.0\.0\.1:\d+/edihub-kpi/kpi) \(17 tiles", out)
    assert served and served.group(1).startswith(ui.group(1)), out
    board = json.loads((state / "kpi" / "dashboard.json").read_text())
    assert board["as_of"] == "2016-12-31"
    tiles = {t["key"]: t for t in board["tiles"]}
    assert list(tiles) == list(BROCHURE)
    for key, (value, ratio) in BROCHURE.items():
        tile = tiles[key]
        assert tile["value"] == value, key
        assert (None if tile["ratio"] is None else round(tile["ratio"], 2)) == ratio, key
        reference = brochure()[key]
        if key == "reimbursement_three_days":  # a promise: at most three days
            assert tile["value"] <= reference.value, key
        elif reference.value is not None and reference.approximate:  # "près de", "environ"
            assert abs(tile["value"] - reference.value) <= 0.05 * reference.value, key
        elif reference.value is not None:
            assert tile["value"] == reference.value, key
        if reference.ratio is not None:
            assert round(tile["ratio"], 2) == reference.ratio, key
    shown = html_tiles(state / "kpi" / "dashboard.html")
    assert list(shown) == list(tiles)
    for key, tile in tiles.items():
        first = f"{100 * tile['ratio']:.0f} %" if tile["headline"] == "ratio" else None
        number = f"{tile['value']:,.0f}"
        assert shown[key].startswith(first or number), (key, shown[key])
    assert processes_of(state) == []  # the test's own PostgreSQL start is stopped too
