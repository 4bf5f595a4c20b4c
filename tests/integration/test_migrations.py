"""Versioned migrations on a real PostgreSQL: applied once, in order, never edited."""

from __future__ import annotations

import datetime as dt

import psycopg2
import pytest

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
