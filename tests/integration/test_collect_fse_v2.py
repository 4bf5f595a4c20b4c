"""FSE v2 through the collection on the real servers: every message kind, beside version 1,
against the registry in PostgreSQL (practitioner kinds, cards valid on a date, prior approvals
a care sheet or a withdrawal refers to)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from edihub import clock
from tests.fixtures.fse import DENTIST, MESSAGES, PRACTITIONER, fse_file, message, sheet, v2_file
from tests.fixtures.hub import ACK_NS, Hub, ack_status, make_hub
from tests.fixtures.registry import OLD_CARD_CODE, seed_registry

TABLES = {
    "care_sheet": "edi.fse_care_sheet",
    "work_stoppage": "edi.fse_work_stoppage",
    "exemption_request": "edi.fse_exemption_request",
    "invalidity_request": "edi.fse_invalidity_request",
    "prior_approval": "edi.fse_prior_approval",
}


@pytest.fixture
def doctor(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, PRACTITIONER, dsn, tmp_path / "state", "fse")


@pytest.fixture
def dentist(doctor: Hub) -> Hub:
    """The dentist's account on the same hub (registry seeded by ``doctor``)."""
    return make_hub(doctor.server, DENTIST, doctor.dsn, doctor.settings.state_dir, "fse")


def errors(hub: Hub, name: str) -> set[tuple[str | None, str | None]]:
    return {(e.get("record"), e.get("rule")) for e in hub.ack(name).iterfind(".//a:error", ACK_NS)}


def test_every_message_kind_loads_into_its_table(doctor: Hub, dentist: Hub, tmp_path: Path) -> None:
    for document in sorted(MESSAGES):
        sender = dentist if document == "prior_approval" else doctor
        sender.send(v2_file(tmp_path / f"FSE_{document}.xml", document, batch=document))
    doctor.collect()
    assert doctor.query(
        "SELECT remote_name, state, format_version, document, records_loaded"
        " FROM edi.inbound_file WHERE feed = 'fse' ORDER BY remote_name"
    ) == [(f"FSE_{doc}.xml", "loaded", "2", doc, 5) for doc in sorted(MESSAGES)]
    for table in TABLES.values():
        assert doctor.query(f"SELECT count(*), count(DISTINCT file_id) FROM {table}") == [(5, 1)]
    assert doctor.query("SELECT count(*) FROM edi.fse_prior_approval_act") == [(10,)]
    assert doctor.query(
        "SELECT kind, reason_category, outings_allowed, end_date - start_date"
        " FROM edi.fse_work_stoppage WHERE prescription_id = 'AT-000001'"
    ) == [("initial", "illness", True, 7)]
    assert ack_status(doctor.ack("FSE_work_stoppage.xml")) == ("accepted", "A")
    assert ack_status(dentist.ack("FSE_prior_approval.xml")) == ("accepted", "A")


def test_version_1_and_version_2_care_sheets_load_side_by_side(doctor: Hub, tmp_path: Path) -> None:
    doctor.send(fse_file(tmp_path / "FSE_v1.xml", [sheet(i) for i in range(1, 4)]))
    v2 = [message("care_sheet", i, id=f"S-V2-{i}") for i in range(1, 3)]
    doctor.send(v2_file(tmp_path / "FSE_v2.xml", "care_sheet", v2, batch="000002"))
    doctor.collect()
    assert doctor.query(
        "SELECT f.format_version, count(*) FROM edi.fse_care_sheet s"
        " JOIN edi.inbound_file f ON f.id = s.file_id GROUP BY 1 ORDER BY 1"
    ) == [("1", 3), ("2", 2)]


def test_the_card_code_must_be_the_one_valid_on_the_date_of_care(
    doctor: Hub, tmp_path: Path
) -> None:
    sheets = [sheet(1), sheet(2, fse_code=OLD_CARD_CODE), sheet(3)]
    doctor.send(fse_file(tmp_path / "FSE_card.xml", sheets))
    doctor.collect()
    assert [(s, n) for _, s, _, n, *_ in doctor.files()] == [("loaded_with_errors", 2)]
    assert errors(doctor, "FSE_card.xml") == {("2", "FSE-R10")}


def test_practitioner_kinds_come_from_the_registry(
    doctor: Hub, dentist: Hub, tmp_path: Path
) -> None:
    # a dentist prescribes no work stoppage, a doctor asks no dental prior approval
    stoppages = [message("work_stoppage", i, practitioner_id=DENTIST) for i in range(1, 3)]
    dentist.send(v2_file(tmp_path / "FSE_ws.xml", "work_stoppage", stoppages, sender=DENTIST))
    approvals = [message("prior_approval", 1, practitioner_id=PRACTITIONER)]
    doctor.send(v2_file(tmp_path / "FSE_dap.xml", "prior_approval", approvals, PRACTITIONER))
    doctor.collect()
    assert doctor.query(
        "SELECT remote_name, state, reason_code FROM edi.inbound_file WHERE feed = 'fse'"
        " ORDER BY remote_name"
    ) == [
        ("FSE_dap.xml", "rejected", "ALL_RECORDS_REJECTED"),
        ("FSE_ws.xml", "rejected", "ALL_RECORDS_REJECTED"),
    ]
    assert errors(dentist, "FSE_ws.xml") == {("1", "WS-R03"), ("2", "WS-R03")}
    assert errors(doctor, "FSE_dap.xml") == {("1", "DPA-R03")}
    assert doctor.query("SELECT count(*) FROM edi.fse_work_stoppage") == [(0,)]


def test_a_prior_approval_is_submitted_used_then_withdrawn(
    doctor: Hub, dentist: Hub, tmp_path: Path
) -> None:
    def run(name: str, document: str, messages: list[Any], batch: str) -> None:
        dentist.send(v2_file(tmp_path / name, document, messages, sender=DENTIST, batch=batch))
        dentist.collect()

    request = message("prior_approval", 1, id="DAP-1")
    run("FSE_1.xml", "prior_approval", [request], "1")
    assert dentist.query(
        "SELECT request_id, status, estimated_total FROM edi.fse_prior_approval_status"
    ) == [("DAP-1", "pending", 17750)]

    under_approval = message(
        "care_sheet", 1, id="S-DENT-1", practitioner_id=DENTIST, prior_approval_id="DAP-1"
    )
    unknown = message(
        "care_sheet", 2, id="S-DENT-2", practitioner_id=DENTIST, prior_approval_id="DAP-9"
    )
    run("FSE_2.xml", "care_sheet", [under_approval, unknown], "2")
    assert errors(dentist, "FSE_2.xml") == {("2", "FSE-R11")}
    assert dentist.query("SELECT sheet_id, prior_approval_id FROM edi.fse_care_sheet") == [
        ("S-DENT-1", "DAP-1")
    ]

    withdrawal = message("prior_approval", 1, id="DAP-1", status="withdrawn")
    stray = message("prior_approval", 2, id="DAP-8", status="withdrawn")
    run("FSE_3.xml", "prior_approval", [withdrawal, stray], "3")
    assert errors(dentist, "FSE_3.xml") == {("2", "DPA-R08")}
    assert dentist.query(
        "SELECT request_id, status, withdrawn_in IS NOT NULL FROM edi.fse_prior_approval_status"
    ) == [("DAP-1", "withdrawn", True)]

    late = message(
        "care_sheet", 3, id="S-DENT-3", practitioner_id=DENTIST, prior_approval_id="DAP-1"
    )
    run("FSE_4.xml", "care_sheet", [late, message("care_sheet", 4, id="S-DENT-4")], "4")
    assert errors(dentist, "FSE_4.xml") == {("1", "FSE-R12")}


def test_a_message_already_loaded_is_refused_from_a_new_file(doctor: Hub, tmp_path: Path) -> None:
    doctor.send(v2_file(tmp_path / "FSE_a.xml", "exemption_request", batch="a"))
    doctor.collect()
    again = [message("exemption_request", 1), message("exemption_request", 9)]
    doctor.send(v2_file(tmp_path / "FSE_b.xml", "exemption_request", again, batch="b"))
    doctor.collect()
    assert [(s, n) for _, s, _, n, *_ in doctor.files()] == [
        ("loaded", 5),
        ("loaded_with_errors", 1),
    ]
    assert errors(doctor, "FSE_b.xml") == {("1", "TME-R02")}
    assert doctor.query("SELECT count(*) FROM edi.fse_exemption_request") == [(6,)]


def test_a_stoppage_prescribed_in_the_future_is_refused(doctor: Hub, tmp_path: Path) -> None:
    tomorrow = clock.monaco_today() + dt.timedelta(days=1)
    stoppages = [
        message("work_stoppage", 1),
        message("work_stoppage", 2, prescribed_on=tomorrow, start_date=tomorrow),
    ]
    doctor.send(v2_file(tmp_path / "FSE_f.xml", "work_stoppage", stoppages))
    doctor.collect()
    assert errors(doctor, "FSE_f.xml") == {("2", "WS-R06")}
