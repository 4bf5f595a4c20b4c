"""Connections and versioned migrations (``migrations/NNNN_name.sql``, applied in order, once)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import psycopg2
import psycopg2.extensions

log = logging.getLogger(__name__)

# Serialises concurrent migrators (two DAG runs, a CLI and a worker starting together).
_MIGRATION_LOCK = 0x6564_6968_7562  # "edihub"


def dsn_from_connection(conn: Any) -> str:
    """A libpq DSN from an Airflow connection's fields (host may be a unix-socket folder)."""
    params = {
        "host": conn.host,
        "port": conn.port,
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema,
    }
    return psycopg2.extensions.make_dsn(**{k: v for k, v in params.items() if v not in (None, "")})


@contextmanager
def connect(dsn: str) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(dsn, application_name="edihub")
    try:
        yield conn
    finally:
        conn.close()


def receipt_month(cur: Any, file_id: int) -> dt.date:
    """The month a file's rows are filed under in the message store (migration 0021)."""
    cur.execute(
        "SELECT edi.receipt_month(received_at) FROM edi.inbound_file WHERE id = %s", (file_id,)
    )
    return cur.fetchone()[0]  # type: ignore[no-any-return]


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("edihub.load") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


def migrate(dsn: str, upto: str | None = None) -> list[str]:
    """Apply the migrations not yet applied (those up to ``upto`` included, if given: a test
    of a migration's conversion of data loaded before it); return their names. Refuses edited
    migrations."""
    applied_now: list[str] = []
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS public.edihub_migration ("
                " name text PRIMARY KEY, sha256 text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            cur.execute("SELECT name, sha256 FROM public.edihub_migration")
            done = dict(cur.fetchall())
            for name, text in _migrations():
                if upto is not None and name > upto:
                    break
                digest = hashlib.sha256(text.encode()).hexdigest()
                if name in done:
                    if done[name] != digest:
                        raise RuntimeError(
                            f"migration {name} was edited after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                cur.execute(text)
                cur.execute(
                    "INSERT INTO public.edihub_migration (name, sha256) VALUES (%s, %s)",
                    (name, digest),
                )
                conn.commit()
                applied_now.append(name)
                log.info("applied migration %s", name)
        finally:
            conn.rollback()
            cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            conn.commit()
    return applied_now
