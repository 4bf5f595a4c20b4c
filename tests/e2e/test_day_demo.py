"""``edihub run --demo day``'s files (edihub.demo), sent over SFTP by each partner and collected
by the hub on the real servers: each ends as the demo's docstring says. (The run command itself
is tested on the default, brochure demo: tests/e2e/test_run_command.py.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from edihub.demo import write_demo
from edihub.feeds import FEEDS
from edihub.statements import monaco_today
from tests.fixtures.hub import make_hub

TODAY = monaco_today()
LAST_MONTH = (TODAY.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
YESTERDAY = f"{TODAY - dt.timedelta(days=1):%Y%m%d}"

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


def test_each_day_demo_file_ends_as_documented(dsn: str, sftp_server: Any, tmp_path: Path) -> None:
    demo = write_demo(tmp_path / "demo", TODAY)
    assert {f.feed for files in demo.files.values() for f in files} == set(FEEDS)
    hubs = {}
    for feed in ("registry", "fse", "pharmacy", "payroll"):  # the registry first
        for partner, files in demo.files.items():
            mine = [f.path for f in files if f.feed == feed]
            if mine:
                hub = hubs.get(partner) or make_hub(sftp_server, partner, dsn,
                                                    tmp_path / "state", feed)  # fmt: skip
                hubs[partner] = hub
                hub.feed = feed
                for path in mine:
                    hub.send(path)
                hub.collect()
    [hub, *_] = hubs.values()
    rows = hub.query(
        "SELECT feed, sender, remote_name, state, records_total, records_loaded,"
        " records_rejected, acked_at IS NOT NULL FROM edi.inbound_file ORDER BY id"
    )
    assert {(f, s, n): (st, t, ld, r) for f, s, n, st, t, ld, r, _ in rows} == EXPECTED
    assert len(rows) == len(EXPECTED) and all(acked for *_, acked in rows)  # once, acked

    # The paper declaration's payslip waits in the paper account's folder, for the mail room.
    with sftp_server.connect(hubs["CSMSAISIE"].partner) as sftp:
        assert sftp.listdir(f"/outbound/payroll/{LAST_MONTH}") == ["EMP0003"]
        assert "recapitulatif_cotisations.html" in sftp.listdir(
            f"/outbound/payroll/{LAST_MONTH}/EMP0003"
        )
