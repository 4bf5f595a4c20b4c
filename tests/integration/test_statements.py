"""Pricing and statements on the real PostgreSQL: files loaded through their contracts, then
priced, issued per insured and day, routed, and corrected when an exemption comes late."""

from __future__ import annotations

import datetime as dt

import pytest

from edihub.registry_writer import write_snapshot
from edihub.statements import MONACO, build_statements, monaco_today
from tests.fixtures.fse import KNOWN_INSURED, PRACTITIONER, fse_file, message, sheet, v2_file
from tests.fixtures.funds import Funds
from tests.fixtures.pharmacy import PHARMACY, pharmacy_file
from tests.fixtures.registry import CORE, SNAPSHOT_DAY


def _at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), MONACO)


def test_lines_are_priced_by_rate_and_category_and_trace_to_their_record(funds: Funds) -> None:
    funds.ingest("fse", fse_file(funds.folder / "F1.xml"), PRACTITIONER)
    funds.ingest("pharmacy", pharmacy_file(funds.folder / "PH1.txt"), PHARMACY)
    build = build_statements(funds.dsn, close_today=True)
    assert (build.adjudication.priced, build.adjudication.unpriced) == (5 * 2 + 3 * 2, [])
    # An act at 80 %; medicines by category: 65 % and 30 %, rounded to the cent.
    assert funds.query(
        "SELECT source_record_id, service_code, billed, rate_percent, reimbursed, patient_share"
        " FROM edi.claim_line WHERE source_record_id IN ('S-000001', 'F00000000001')"
        " ORDER BY source_kind, source_line_no"
    ) == [
        ("S-000001", "C", 3000, 80, 2400, 600),
        ("S-000001", "K", 2500, 80, 2000, 500),
        ("F00000000001", "3400930000001", 700, 65, 455, 245),
        ("F00000000001", "3400930000002", 1299, 30, 390, 909),
    ]
    # Every statement line leads back to its file and record in that file.
    [(traced,)] = funds.query(
        "SELECT count(*) FROM edi.statement_line sl JOIN edi.claim_line c USING (claim_line_id)"
        " JOIN edi.inbound_file f ON f.id = c.source_file_id"
        " WHERE f.state = 'loaded' AND c.source_record_no >= 1"
    )
    assert traced == 16


def test_one_statement_per_insured_and_day_whose_totals_reconcile(funds: Funds) -> None:
    funds.ingest("fse", fse_file(funds.folder / "F1.xml"), PRACTITIONER)
    build = build_statements(funds.dsn, close_today=True)
    assert build.issue is not None
    assert (build.issue.statements, build.issue.lines) == (2, 10)
    today = monaco_today()
    rows = funds.query(
        "SELECT statement_number, line_count, total_billed, total_reimbursed, total_patient_share,"
        " payment_date FROM edi.statement ORDER BY statement_number"
    )
    # 123456 has its own sheets and its beneficiary's (rank 1): S-3 (rank 0), S-1 and S-4 (rank 1)
    assert rows == [
        (f"{today:%Y%m%d}-000001", 6, 3 * 5500, 3 * 4400, 3 * 1100, today + dt.timedelta(days=1)),
        (f"{today:%Y%m%d}-000002", 4, 2 * 5500, 2 * 4400, 2 * 1100, today + dt.timedelta(days=1)),
    ]
    assert funds.query(
        "SELECT count(*) FROM edi.statement s WHERE total_billed <> (SELECT sum(billed)"
        " FROM edi.statement_line l WHERE l.statement_id = s.statement_id)"
    ) == [(0,)]


def test_routes_email_paper_and_insurer_copy_only_with_consent(funds: Funds) -> None:
    rows = []
    for number, rank in KNOWN_INSURED:
        chose_email = number == "123456"
        rows.append({
            "registration_number": number, "beneficiary_rank": rank, "last_name": f"NOM{number}",
            "first_name": "X", "postal_address": "1 rue Grimaldi, 98000 MONACO",
            "email": f"{number}@example.mc", "teleservice_subscribed_on": dt.date(2016, 3, 1),
            "email_validated": chose_email, "dematerialisation": chose_email,
            "insurer_id": "INS01" if rank == 0 else None,
            "insurer_member_number": "M-1" if rank == 0 else None,
            "insurer_consent": rank == 0 and chose_email,
        })  # fmt: skip
    later = SNAPSHOT_DAY + dt.timedelta(days=1)
    funds.ingest("registry", write_snapshot(funds.folder / "reg2", "insured", later, rows), CORE)
    funds.ingest("fse", fse_file(funds.folder / "F1.xml"), PRACTITIONER)
    build_statements(funds.dsn, close_today=True)
    assert funds.query(
        "SELECT s.registration_number, s.channel, s.email, s.insurer_id, s.insurer_member_number,"
        " d.channel, d.state FROM edi.statement s JOIN edi.statement_delivery d USING"
        " (statement_id) ORDER BY 1"
    ) == [
        ("123456", "email", "123456@example.mc", "INS01", "M-1", "email", "pending"),
        ("654321", "paper", None, None, None, "paper", "pending"),
    ]


def test_a_day_is_issued_once_and_later_lines_go_on_the_next_day(funds: Funds) -> None:
    today = monaco_today()
    funds.ingest("fse", fse_file(funds.folder / "F1.xml", [sheet(1)]), PRACTITIONER)
    first = build_statements(funds.dsn, now=_at(today), close_today=True)
    funds.ingest("fse", fse_file(funds.folder / "F2.xml", [sheet(2)], batch="000002"), PRACTITIONER)
    again = build_statements(funds.dsn, now=_at(today, 18), close_today=True)
    assert first.issue and again.issue
    assert (first.issue.newly_issued, again.issue.newly_issued) == (True, False)
    assert again.adjudication.priced == 2  # priced today, stated tomorrow
    tomorrow = build_statements(funds.dsn, now=_at(today + dt.timedelta(days=1), 1))
    assert tomorrow.issue and tomorrow.issue.day == today and not tomorrow.issue.newly_issued
    next_day = build_statements(funds.dsn, now=_at(today + dt.timedelta(days=2), 1))
    assert next_day.issue and (next_day.issue.day, next_day.issue.lines) == (
        today + dt.timedelta(days=1),
        2,
    )


def test_a_late_exemption_reverses_and_replaces_the_stated_lines(funds: Funds) -> None:
    today = monaco_today()
    care = today - dt.timedelta(days=3)
    funds.ingest("fse", fse_file(funds.folder / "F1.xml", [sheet(3, care_date=care)]), PRACTITIONER)
    build_statements(funds.dsn, now=_at(today), close_today=True)  # 123456/0 at 80 %
    exemption = message("exemption_request", 3, exempt_from=care - dt.timedelta(days=10))
    late = v2_file(funds.folder / "E1.xml", "exemption_request", [exemption], batch="000002")
    funds.ingest("fse", late, PRACTITIONER)
    tomorrow = today + dt.timedelta(days=1)
    build = build_statements(funds.dsn, now=_at(tomorrow), close_today=True)
    assert build.adjudication.repriced == 2
    lines = funds.query(
        "SELECT s.statement_number, l.line_no, l.kind, c.service_code, l.billed, l.reimbursed,"
        " l.patient_share, r.statement_number, l.reversed_line_no, c.exemption_id"
        " FROM edi.statement_line l JOIN edi.statement s USING (statement_id)"
        " JOIN edi.claim_line c USING (claim_line_id)"
        " LEFT JOIN edi.statement r ON r.statement_id = l.reversed_statement_id"
        " WHERE s.issued_on = %s ORDER BY l.line_no",
        tomorrow,
    )
    first = f"{today:%Y%m%d}-000001"
    assert lines == [
        (f"{tomorrow:%Y%m%d}-000001", 1, "reversal", "C", -3000, -2400, -600, first, 1, None),
        (f"{tomorrow:%Y%m%d}-000001", 2, "replacement", "C", 3000, 3000, 0, first, 1,
         "ETM-000003"),
        (f"{tomorrow:%Y%m%d}-000001", 3, "reversal", "K", -2500, -2000, -500, first, 2, None),
        (f"{tomorrow:%Y%m%d}-000001", 4, "replacement", "K", 2500, 2500, 0, first, 2,
         "ETM-000003"),
    ]  # fmt: skip
    # Net effect of the correction: the 20 % the insured had paid, reimbursed.
    assert funds.query(
        "SELECT total_billed, total_reimbursed, total_patient_share FROM edi.statement"
        " WHERE issued_on = %s",
        tomorrow,
    ) == [(0, 1100, -1100)]
    assert build_statements(funds.dsn, now=_at(tomorrow, 20)).adjudication.repriced == 0


@pytest.mark.parametrize(
    ("utc", "day"),
    [
        # The night of the autumn change: 22:30 UTC is 00:30 on the 25th in Monaco (UTC+2).
        (dt.datetime(2026, 10, 24, 22, 30, tzinfo=dt.UTC), dt.date(2026, 10, 25)),
        (dt.datetime(2026, 10, 25, 22, 30, tzinfo=dt.UTC), dt.date(2026, 10, 25)),  # UTC+1
        (dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC), dt.date(2026, 3, 29)),
    ],
)
def test_processing_days_are_monaco_days(utc: dt.datetime, day: dt.date) -> None:
    assert monaco_today(utc) == day
