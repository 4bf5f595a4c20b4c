"""Versioned migrations on a real PostgreSQL: applied once, in order, never edited."""

from __future__ import annotations

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
