"""The engineer's view of inbound files inside the Airflow UI: each file's state, and the
data-contract results and errors behind its acknowledgment; for operators, a rejected file
reprocessed and a file quarantined unread released (``edihub.reprocess``, as the CLI does).

Every route needs an Airflow login (``common.plugin_access``): Airflow mounts plugin apps
without one. Reprocess and release need more: Airflow's permission to read the hub's SFTP
connection (``edi_sftp``), which they act with (SimpleAuthManager: op and admin), the form's
token and a same-origin request (``common.check_form``).

They run here, in the API server, rather than in a DAG run: one file is validated and loaded
in seconds, so the operator sees the attempt's outcome at once, and ``edihub.reprocess`` makes
two clicks safe (the original is locked, one live attempt per file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from edihub import reprocess
from edihub.config import Settings
from edihub.orchestration import SFTP_CONN_ID, sftp_session
from edihub.ui.common import (
    check_form,
    current_user,
    database_dsn,
    form_token,
    plugin_access,
    read_cursor,
    template,
)

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

_TEMPLATE = template("files.html")
FORM_PURPOSE = "edihub-files-action"
# An attempt in these states ends a file's reprocessing (reprocess refuses another one).
_ATTEMPT_LIVE = ("received", "loaded", "loaded_with_errors")
_ACTIONS = {"reprocess": reprocess.reprocess_file, "release": reprocess.release}

app = FastAPI(title="EDI hub: inbound files", dependencies=[plugin_access()])
User = Annotated[Any, current_user()]

FILE_COLUMNS = (
    "id, original_file_id, feed, sender, remote_name, sha256, size_bytes, batch_number,"
    " format_version, document, state, reason_code, reason, records_total, records_loaded,"
    " records_rejected, received_at, decided_at, archived_at, archive_path, acked_at, ack_path"
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
def show_file(file_id: int, user: User) -> str:
    detail = file_detail(file_id)
    action = _action(detail) if may_act(user) else None
    return _TEMPLATE.render(
        title=f"Inbound file {file_id}",
        action=action,
        token=form_token(user, FORM_PURPOSE) if action else None,
        **detail,
    )


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
        # The attempts at the file the partner sent, this one's siblings if it is one.
        cur.execute(
            "SELECT id, state, reason_code, received_at FROM edi.inbound_file"
            " WHERE original_file_id = %s ORDER BY id",
            (file["original_file_id"] or file["id"],),
        )
        attempts = cur.fetchall()
    return {
        "file": _text(file),
        "results": [dict(r) for r in results],
        "errors": [dict(e) for e in errors],
        "error_total": total,
        "attempts": [_text(a) for a in attempts],
    }


def _text(row: dict[str, Any]) -> dict[str, str | None]:
    return {k: (str(v) if v is not None else None) for k, v in row.items()}


def may_act(user: BaseUser) -> bool:
    """Airflow's own check of reading ``edi_sftp``, the account reprocess and release use."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    return get_auth_manager().is_authorized_connection(
        method="GET", details=ConnectionDetails(conn_id=SFTP_CONN_ID), user=user
    )


def _require_may_act(user: User) -> None:
    if not may_act(user):
        raise HTTPException(
            403, f"reprocess and release need access to the {SFTP_CONN_ID} connection"
        )


def _action(detail: dict[str, Any]) -> str | None:
    """The button a file's view offers, if any (``edihub.reprocess`` still decides)."""
    file = detail["file"]
    if any(a["state"] in _ATTEMPT_LIVE for a in detail["attempts"]):
        return None
    if file["state"] == "rejected":
        return "reprocess"
    if file["state"] == "quarantined" and file["reason_code"] in reprocess.RELEASABLE:
        return "release"
    return None


@app.post(
    "/files/{file_id}/{action}",
    response_class=HTMLResponse,
    dependencies=[Depends(_require_may_act)],
)
def act(
    request: Request,
    user: User,
    file_id: int,
    action: Literal["reprocess", "release"],
    token: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Try the file again as the Airflow user; the new attempt's outcome, or why not (409)."""
    check_form(request, user, token, FORM_PURPOSE, "Inbound files")
    dsn, settings = database_dsn(), Settings.from_env()
    try:
        with sftp_session() as sftp:
            attempt = _ACTIONS[action](sftp, dsn, settings, file_id, reason, user.get_name())
    except reprocess.Refused as refused:
        page = _TEMPLATE.render(title=f"Inbound file {file_id}: not tried again",
                                refused=str(refused), back=file_id)  # fmt: skip
        return HTMLResponse(page, status_code=409)
    page = _TEMPLATE.render(title=f"Inbound file {file_id}: {action}", attempt=attempt)
    return HTMLResponse(page)
