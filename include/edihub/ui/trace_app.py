"""The File journey page inside the Airflow UI: what happened to a file, found by its name,
sha256 or id (``edihub.trace``, the same timeline as ``edihub trace``).

Its own app rather than a route of the Inbound files page: the journey reads the statements,
exports and audit trail as well as the file's row, and is searched by name or sha256, not only
reached from a file id. The files page links each file to it. Every route needs an Airflow
login (``common.plugin_access``): Airflow mounts plugin apps without one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from edihub import trace
from edihub.ui.common import plugin_access, read_cursor, template

_TEMPLATE = template("trace.html")

app = FastAPI(title="EDI hub: file journey", dependencies=[plugin_access()])


def _journeys(query: str) -> list[dict[str, Any]]:
    with read_cursor() as cur:
        return trace.journeys(cur.connection, query)


def _page(query: str, found: list[dict[str, Any]], base: str, status: int = 200) -> HTMLResponse:
    """``base``: the way back to /trace from the route's path (relative links: a base_url)."""
    blocks = [(j, trace.timeline(j)) for j in found]
    html = _TEMPLATE.render(
        title="File journey", q=query, blocks=blocks, when=trace.when, base=base
    )
    return HTMLResponse(html, status_code=status)


# Plain ``def`` routes: FastAPI runs them in a thread pool, so the blocking DB calls are fine.
@app.get("/trace", response_class=HTMLResponse)
def search(q: str = "") -> HTMLResponse:
    found = _journeys(q) if q.strip() else []
    return _page(q, found, "", 404 if q.strip() and not found else 200)


@app.get("/trace/{file_id}", response_class=HTMLResponse)
def show(file_id: int) -> HTMLResponse:
    return _page(str(file_id), [_journey(file_id)], "../")


@app.get("/api/trace/{file_id}")
def as_json(file_id: int) -> Response:
    return Response(trace.to_json(_journey(file_id)), media_type="application/json")


def _journey(file_id: int) -> dict[str, Any]:
    with read_cursor() as cur:
        try:
            return trace.journey(cur.connection, file_id)
        except LookupError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
