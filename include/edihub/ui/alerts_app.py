"""The integration team's alerts inside the Airflow UI: what is open now (newest first), and
what closed in the last days with why. Read-only; every route needs an Airflow login
(``common.plugin_access``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from edihub import clock
from edihub.alerts.mail import RUNBOOK, TITLES
from edihub.alerts.store import listing
from edihub.clock import MONACO
from edihub.ui.common import database_dsn, plugin_access, template

CLOSED_DAYS = 7
_TEMPLATE = template("alerts.html")

app = FastAPI(title="EDI hub: alerts", dependencies=[plugin_access()])


def _local(when: dt.datetime | None) -> str:
    return f"{when.astimezone(MONACO):%a %d %b %H:%M}" if when else ""


def _alerts(now: dt.datetime) -> list[dict[str, Any]]:
    return listing(database_dsn(), now - dt.timedelta(days=CLOSED_DAYS))


# Plain ``def`` routes: FastAPI runs them in a thread pool, so the blocking DB calls are fine.
@app.get("/alerts", response_class=HTMLResponse)
def alerts_page(kind: str | None = None) -> str:
    now = clock.now()
    everything = _alerts(now)
    shown = kind if kind in TITLES else None
    rows = [
        {**a, "title": TITLES[a["kind"]], "opened": _local(a["opened_at"]),
         "seen": _local(a["last_seen_at"]), "closed": _local(a["closed_at"]),
         "emailed": _local(a["emailed_at"])}
        for a in everything
        if shown in (None, a["kind"])
    ]  # fmt: skip
    open_counts = Counter(a["kind"] for a in everything if a["closed_at"] is None)
    return _TEMPLATE.render(
        title="Alerts",
        now=_local(now),
        closed_days=CLOSED_DAYS,
        runbook=RUNBOOK,
        open_rows=[r for r in rows if r["closed_at"] is None],
        closed_rows=[r for r in rows if r["closed_at"] is not None],
        filters=[(k, t, open_counts.get(k, 0)) for k, t in TITLES.items()],
        shown=shown,
    )


@app.get("/alerts.json")
def alerts_json() -> dict[str, Any]:
    """The same alerts for monitoring (times ISO 8601)."""
    now = clock.now()
    everything = _alerts(now)
    return {
        "generated_at": now,
        "open": [a for a in everything if a["closed_at"] is None],
        "closed": [a for a in everything if a["closed_at"] is not None],
    }
