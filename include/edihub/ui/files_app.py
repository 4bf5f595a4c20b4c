"""The engineer's view of inbound files inside the Airflow UI: each file's state, and the
data-contract results and errors behind its acknowledgment.

Airflow mounts plugin apps without any login check (stack-notes §1): every route here depends
on an Airflow user allowed to view plugins. Pages are rendered on the server with escaping;
no script, no CDN.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import psycopg2
import psycopg2.extras
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from jinja2 import Environment, select_autoescape

POSTGRES_CONN_ID = "edi_postgres"

_TEMPLATE = Environment(autoescape=select_autoescape(default=True)).from_string(
    (resources.files("edihub.ui") / "templates" / "files.html").read_text("utf-8")
)


def database_dsn() -> str:
    """EDIHUB_DATABASE_URL, or the ``edi_postgres`` Airflow connection."""
    url = os.environ.get("EDIHUB_DATABASE_URL")
    if url:
        return url
    # The API server has no task context: read the connection from the secrets backends.
    from airflow.models.connection import Connection

    from edihub.load.db import dsn_from_connection

    return dsn_from_connection(Connection.get_connection_from_secrets(POSTGRES_CONN_ID))


@contextmanager
def _cursor() -> Iterator[Any]:
    conn = psycopg2.connect(database_dsn(), application_name="edihub-ui")
    try:
        conn.set_session(readonly=True)
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            yield cur
    finally:
        conn.close()


def _access() -> Any:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return Depends(requires_access_view(AccessView.PLUGINS))


app = FastAPI(title="EDI hub: inbound files", dependencies=[_access()])

FILE_COLUMNS = (
    "id, feed, sender, remote_name, sha256, size_bytes, batch_number, format_version, document,"
    " state, reason_code, reason, records_total, records_loaded, records_rejected, received_at,"
    " decided_at, archived_at, archive_path, acked_at, ack_path"
)


# Plain ``def`` routes: FastAPI runs them in a thread pool, so the blocking DB calls are fine.
@app.get("/files", response_class=HTMLResponse)
def list_files(limit: int = 200) -> str:
    with _cursor() as cur:
        cur.execute(
            f"SELECT {FILE_COLUMNS} FROM edi.inbound_file ORDER BY id DESC LIMIT %s",
            (min(limit, 1000),),
        )
        files = cur.fetchall()
    return _TEMPLATE.render(title="Inbound files", files=files, file=None)


@app.get("/files/{file_id}", response_class=HTMLResponse)
def show_file(file_id: int) -> str:
    return _TEMPLATE.render(title=f"Inbound file {file_id}", **file_detail(file_id))


@app.get("/api/files/{file_id}")
def file_json(file_id: int) -> dict[str, Any]:
    return file_detail(file_id)


def file_detail(file_id: int, max_errors: int = 500) -> dict[str, Any]:
    with _cursor() as cur:
        cur.execute(f"SELECT {FILE_COLUMNS} FROM edi.inbound_file WHERE id = %s", (file_id,))
        file = cur.fetchone()
        if file is None:
            raise HTTPException(status_code=404, detail=f"no inbound file {file_id}")
        cur.execute(
            "SELECT table_name, rule, on_failure, checked, failed FROM edi.validation_result"
            " WHERE file_id = %s ORDER BY table_name, rule",
            (file_id,),
        )
        results = cur.fetchall()
        cur.execute(
            "SELECT level, record_no, record_id, field, rule, value, message FROM edi.file_error"
            " WHERE file_id = %s ORDER BY seq LIMIT %s",
            (file_id, max_errors),
        )
        errors = cur.fetchall()
        cur.execute("SELECT count(*) AS n FROM edi.file_error WHERE file_id = %s", (file_id,))
        total = cur.fetchone()["n"]
    return {
        "file": {k: (str(v) if v is not None else None) for k, v in file.items()},
        "results": [dict(r) for r in results],
        "errors": [dict(e) for e in errors],
        "error_total": total,
    }
