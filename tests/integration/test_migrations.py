"""Versioned migrations on a real PostgreSQL: applied once, in order, never edited."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg2
import pytest

from edihub import retention
from edihub.load import db


def test_migrations_apply_once(empty_dsn: str) -> None:
    first = db.migrate(empty_dsn)
    assert first and first == sorted(first)
    assert db.migrate(empty_dsn) == []
    conn = psycopg2.connect(empty_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('edi.inbound_file'), to_regclass('edi.fse_act')")
            assert cur.fetchone() == ("edi.inbound_file", "edi.fse_act")
    finally:
        conn.close()


def test_an_edited_migration_is_refused(empty_dsn: str) -> None:
    db.migrate(empty_dsn)
    conn = psycopg2.connect(empty_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE public.edihub_migration SET sha256 = 'edited'")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(RuntimeError, match="edited after it was applied"):
        db.migrate(empty_dsn)


def test_registry_history_survives_the_move_of_current_versions(empty_dsn: str) -> None:
    """0013 moves each row's open version into its document's table (unchanged_since) and
    keeps the closed ones: the history reads the same before and after."""
    db.migrate(empty_dsn, upto="0012_kpi")
    history = (
        "SELECT document, key, valid_from, valid_to, row, file_id FROM edi.registry_history"
        " ORDER BY 1, 2, 3"
    )
    conn = psycopg2.connect(empty_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path,"
                " remote_path_raw, size_bytes, state) VALUES"
                " ('registry', 'csm-core', 'a.csv', '/a.csv', '\\x00', 1, 'loaded'),"
                " ('registry', 'csm-core', 'b.csv', '/b.csv', '\\x00', 1, 'loaded')"
                " RETURNING id"
            )
            first, second = (i for (i,) in cur.fetchall())
            cur.execute(
                "INSERT INTO edi.registry_practitioner (file_id, sender, record_no,"
                " practitioner_id, kind, name) VALUES"
                " (%(second)s, 'csm-core', 1, 'P1', 'dentist', 'Dr One'),"
                " (%(second)s, 'csm-core', 2, 'P2', 'dentist', 'Dr Two')",
                {"second": second},
            )
            # P1 unchanged since January, P2 changed in February; P3 dropped in February.
            cur.execute(
                "INSERT INTO edi.registry_history (document, key, valid_from, valid_to, row,"
                " file_id) VALUES"
                " ('practitioner', 'P1', '2026-01-31', NULL, '{\"name\": \"Dr One\"}', %(a)s),"
                " ('practitioner', 'P2', '2026-01-31', '2026-02-28', '{\"name\": \"Dr 2\"}',"
                "  %(a)s),"
                " ('practitioner', 'P2', '2026-02-28', NULL, '{\"name\": \"Dr Two\"}', %(b)s),"
                " ('practitioner', 'P3', '2026-01-31', '2026-02-28', '{\"name\": \"Dr 3\"}',"
                "  %(a)s)",
                {"a": first, "b": second},
            )
            conn.commit()
            cur.execute(history)
            before = cur.fetchall()
        conn.commit()  # the migration's ALTER TABLEs would wait on this reader's locks
        upgrade = "0013_registry_current_versions"
        assert db.migrate(empty_dsn, upto=upgrade) == [upgrade]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT practitioner_id, unchanged_since::text FROM edi.registry_practitioner"
                " ORDER BY 1"
            )
            assert cur.fetchall() == [("P1", "2026-01-31"), ("P2", "2026-02-28")]
            cur.execute("SELECT key, valid_to::text FROM edi.registry_past_version ORDER BY 1")
            assert cur.fetchall() == [("P2", "2026-02-28"), ("P3", "2026-02-28")]
            cur.execute(history)
            after = cur.fetchall()
    finally:
        conn.close()
    # The open versions' rows now come from the table itself, all its columns.
    closed = [r for r in before if r[3] is not None]
    assert [r for r in after if r[3] is not None] == closed
    assert [(d, k, f, t, i) for d, k, f, t, _, i in after if t is None] == [
        ("practitioner", "P1", dt.date(2026, 1, 31), None, second),
        ("practitioner", "P2", dt.date(2026, 2, 28), None, second),
    ]
    assert [r[4]["name"] for r in after if r[3] is None] == ["Dr One", "Dr Two"]


def _prior_approval(cur: Any, file_id: int, *received_month: str) -> None:
    """A dental prior approval, whose approval_key is a generated column."""
    columns = ("request_id, status, file_id, sender, record_no, practitioner_id,"
               " registration_number, beneficiary_rank, fse_code, requested_on, planned_start,"
               " estimated_total") + ", received_month" * len(received_month)  # fmt: skip
    values = ("'PA1', 'submitted', %s, 'P1', 1, 'P1', '100001', 1, '01', '2026-02-01',"
              " '2026-03-01', 120000") + ", %s" * len(received_month)  # fmt: skip
    cur.execute(
        f"INSERT INTO edi.fse_prior_approval ({columns}) VALUES ({values})",
        (file_id, *received_month),
    )


def test_the_message_store_moves_into_months_of_receipt(empty_dsn: str) -> None:
    """0021 files every row a file brought under its month of receipt, in that month's
    partition; the views read the new tables; the business keys hold within a month."""
    db.migrate(empty_dsn, upto="0020_alert_mail")
    conn = psycopg2.connect(empty_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path,"
                " remote_path_raw, size_bytes, state, received_at) VALUES"
                " ('pharmacy', 'PH1', 'a.txt', '/a.txt', '\\x00', 1, 'loaded',"
                "  '2026-02-28 23:30+00'),"
                " ('pharmacy', 'PH1', 'b.txt', '/b.txt', '\\x00', 1, 'loaded_with_errors',"
                "  '2026-03-01 00:30+01')"  # still February in UTC
                " RETURNING id"
            )
            first, second = (i for (i,) in cur.fetchall())
            cur.execute(
                "INSERT INTO edi.pharmacy_invoice (sender, invoice_number, file_id, record_no,"
                " registration_number, beneficiary_rank, prescription_ref, prescriber_id,"
                " dispensing_date, total) VALUES"
                " ('PH1', 'F1', %(a)s, 1, '100001', 1, 'ORD-1', 'P1', '2026-02-27', 700),"
                " ('PH1', 'F2', %(b)s, 1, '100001', 1, 'ORD-2', 'P1', '2026-02-28', 350)",
                {"a": first, "b": second},
            )
            cur.execute(
                "INSERT INTO edi.pharmacy_invoice_line (sender, invoice_number, child_no,"
                " file_id, product_code, quantity, unit_price, amount, reimbursement_category)"
                " VALUES ('PH1', 'F1', 1, %s, '3400930000001', 2, 350, 700, '65')",
                (first,),
            )
            cur.execute(
                "INSERT INTO edi.file_error (file_id, seq, level, record_no, rule, message)"
                " VALUES (%s, 1, 'record', 2, 'PHA-R06', 'unknown prescriber')",
                (second,),
            )
            _prior_approval(cur, first)
        conn.commit()  # the migration's ALTER TABLEs would wait on this reader's locks
        upgrade = "0021_receipt_month_partitions"
        assert db.migrate(empty_dsn, upto=upgrade) == [upgrade]
        with conn.cursor() as cur:
            brought = {"pharmacy_invoice": [first, second], "pharmacy_invoice_line": [first],
                       "file_error": [second]}  # fmt: skip
            for table, file_ids in brought.items():
                cur.execute(
                    f"SELECT file_id, received_month::text, tableoid::regclass::text"
                    f" FROM edi.{table} ORDER BY file_id"
                )
                assert cur.fetchall() == [
                    (i, "2026-02-01", f"edi.{table}_202602") for i in file_ids
                ]
            cur.execute("SELECT pharmacy_id, invoices FROM kpi.pharmacies_teletransmitting")
            assert cur.fetchall() == [("PH1", 2)]  # the view reads the partitioned table
            # Generated columns are generated again, for the rows moved as for new ones.
            cur.execute("SELECT approval_key, tableoid::regclass::text FROM edi.fse_prior_approval")
            assert cur.fetchall() == [("P1/PA1", "edi.fse_prior_approval_202602")]
            _prior_approval(cur, second, "2019-05-01")  # no partition: the DEFAULT one
            conn.commit()
            retention.ensure_partitions(empty_dsn, months_ahead=0)
            cur.execute(
                "SELECT approval_key, tableoid::regclass::text FROM edi.fse_prior_approval"
                " WHERE file_id = %s",
                (second,),
            )
            assert cur.fetchall() == [("P1/PA1", "edi.fse_prior_approval_201905")]
            conn.commit()
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute(
                    "INSERT INTO edi.pharmacy_invoice (sender, invoice_number, file_id,"
                    " record_no, registration_number, beneficiary_rank, prescription_ref,"
                    " prescriber_id, dispensing_date, total, received_month) VALUES ('PH1',"
                    " 'F1', %s, 2, '100001', 1, 'ORD-1', 'P1', '2026-02-27', 700, '2026-02-01')",
                    (second,),
                )
    finally:
        conn.close()
