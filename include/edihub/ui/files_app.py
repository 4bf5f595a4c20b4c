"""The engineer's view of inbound files inside the Airflow UI: each file's state, and the
data-contract results and errors behind its acknowledgment.

Every route needs an Airflow login (``common.plugin_access``): Airflow mounts plugin apps
without one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from edihub.ui.common import plugin_access, read_cursor, template

_TEMPLATE = template("files.html")

app = FastAPI(title="EDI hub: inbound files", dependencies=[plugin_access()])

FILE_COLUMNS = (
    "id, feed, sender, remote_name, sha256, size_bytes, batch_number, format_version, document,"
    " state, reason_code, reason, records_total, records_loaded, records_rejected, received_at,"
    " decided_at, archived_at, archive_path, acked_at, ack_path"
)


# Plain ``def`` routes: FastAPI runs them in a thread pool, so the blocking DB calls are fine.
@app.get("/files", response_class=HTMLResponse)
def list_files(limit: int = 200) -> str:
    with read_cursor() as cur:
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
    with read_cursor() as cur:
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
