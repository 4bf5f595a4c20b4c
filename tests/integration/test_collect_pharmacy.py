"""The pharmacy feed (fixed-width) through the same collection, on the real servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edihub.pharmacy_writer import Line
from tests.fixtures.hub import ACK_NS, Hub, ack_status, make_hub
from tests.fixtures.pharmacy import PHARMACY, invoice, pharmacy_file
from tests.fixtures.registry import seed_registry


@pytest.fixture
def hub(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, PHARMACY, dsn, tmp_path / "state", "pharmacy")


def test_clean_file_is_loaded_with_its_lines(hub: Hub, tmp_path: Path) -> None:
    hub.send(pharmacy_file(tmp_path / "PH_1.txt", newline="\r\n"))
    hub.collect()
    assert hub.files() == [("PH_1.txt", "loaded", None, 3, True, True)]
    assert hub.query("SELECT count(*), sum(total) FROM edi.pharmacy_invoice") == [(3, 3 * 1999)]
    assert hub.query(
        "SELECT sender, invoice_number, child_no, quantity, amount, reimbursement_category"
        " FROM edi.pharmacy_invoice_line ORDER BY invoice_number, child_no LIMIT 2"
    ) == [
        (PHARMACY, "F00000000001", 1, 2, 700, "65"),
        (PHARMACY, "F00000000001", 2, 1, 1299, "30"),
    ]
    assert ack_status(hub.ack("PH_1.txt")) == ("accepted", "A")


def test_record_rules_reject_the_invoice_only(hub: Hub, tmp_path: Path) -> None:
    invoices = [
        invoice(1),
        invoice(2, lines=[Line("3400930000001", 2, 350, amount=999)], total=999),
        invoice(3, prescriber_id="P99999"),
        invoice(4, lines=[Line("3400930000001", 1, 350, "99")]),
    ]
    hub.send(pharmacy_file(tmp_path / "PH_2.txt", invoices))
    hub.collect()
    [(_, state, _, loaded, *_)] = hub.files()
    assert (state, loaded) == ("loaded_with_errors", 1)
    errors = {
        (e.get("record"), e.get("rule")) for e in hub.ack("PH_2.txt").iterfind(".//a:error", ACK_NS)
    }
    assert errors == {("2", "PHA-R08"), ("3", "PHA-R06"), ("4", "PHA-R09")}
    assert hub.query("SELECT count(*) FROM edi.pharmacy_invoice_line") == [(2,)]


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda text: text.replace("990000000030", "990000000040", 1), "PHA-F02"),
        (
            lambda text: "\n".join(text.split("\n")[:3]) + "\n" + text.split("\n")[3][:40] + "\n",
            "RECORD_LENGTH",
        ),
        (lambda text: text.replace("\n110", "\n120", 1), "UNKNOWN_RECORD_TYPE"),
    ],
    ids=["trailer-count", "truncated-record", "unknown-record-type"],
)
def test_broken_files_are_rejected_whole(hub: Hub, tmp_path: Path, spoil: Any, reason: str) -> None:
    path = pharmacy_file(tmp_path / "PH_3.txt")
    path.write_text(spoil(path.read_text()))
    hub.send(path)
    hub.collect()
    assert [(s, r) for _, s, r, *_ in hub.files()] == [("rejected", reason)]
    assert hub.query("SELECT count(*) FROM edi.pharmacy_invoice") == [(0,)]
    assert hub.inbox() == []
    error = hub.ack("PH_3.txt").find("a:errors/a:error", ACK_NS)
    assert error.get("rule") == reason and error.text


def test_invoice_numbers_are_unique_per_pharmacy(
    hub: Hub, sftp_server: Any, dsn: str, tmp_path: Path
) -> None:
    hub.send(pharmacy_file(tmp_path / "a.txt", [invoice(1)]))
    hub.collect()
    hub.send(pharmacy_file(tmp_path / "b.txt", [invoice(1), invoice(2)], batch="00000002"))
    hub.collect()
    assert [(s, loaded) for _, s, _, loaded, *_ in hub.files()] == [
        ("loaded", 1),
        ("loaded_with_errors", 1),
    ]
    assert [e.get("rule") for e in hub.ack("b.txt").iterfind(".//a:error", ACK_NS)] == ["PHA-R02"]
    # Another pharmacy may use the same invoice number.
    other = make_hub(sftp_server, "PH000002", dsn, tmp_path / "state", "pharmacy")
    path = pharmacy_file(tmp_path / "c.txt", [invoice(1)])
    path.write_text(path.read_text().replace("000PH000001", "000PH000002", 1))
    other.send(path)
    other.collect()
    assert hub.query(
        "SELECT sender, count(*) FROM edi.pharmacy_invoice GROUP BY sender ORDER BY sender"
    ) == [(PHARMACY, 2), ("PH000002", 1)]
