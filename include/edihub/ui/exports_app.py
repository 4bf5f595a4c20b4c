"""The integration engineer's view of the per-insurer exports inside the Airflow UI: each
insurer's last days (published, late, failed, ...), and a rerun of one insurer and one day.

Every route needs an Airflow login (``common.plugin_access``). The rerun needs more: the
right to trigger ``export_insurers`` (Airflow's own check, the one behind its REST API and
its "Trigger" button), a form token bound to the user, and a same-origin request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from edihub import clock
from edihub.exports import DayStatus, export_status
from edihub.statements import MONACO, monaco_today
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

EXPORT_DAG_ID = "export_insurers"
DAYS = 7
# Display order of the statuses, worst news first after the good one.
STATUSES = ("published", "failed", "late", "due", "waiting", "paused", "no convention")
# A rerun can publish these; the others would only be refused by edihub.exports.publish
# (paused, no convention) or come before the statements exist (waiting).
RERUNNABLE = frozenset({"published", "failed", "late", "due"})

_TEMPLATE = template("exports.html")
RERUN_FORM = "edihub-rerun"  # the purpose its form token is bound to


def _may_trigger() -> Any:
    """Airflow's own permission check of ``POST /api/v2/dags/export_insurers/dagRuns``."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return Depends(requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=EXPORT_DAG_ID))


app = FastAPI(title="EDI hub: insurer exports", dependencies=[plugin_access()])
# The logged-in Airflow user (already required by plugin_access; this hands it over).
User = Annotated[Any, current_user()]


def _can_trigger(user: BaseUser) -> bool:
    """Only to hide the buttons from those the rerun route would refuse."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.models import DagModel

    details = DagDetails(id=EXPORT_DAG_ID, team_name=DagModel.get_team_name(EXPORT_DAG_ID))
    return get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=details, user=user
    )


def _statuses(now: dt.datetime) -> list[DayStatus]:
    return export_status(database_dsn(), now, days=DAYS)


def _issued_days(statuses: list[DayStatus]) -> set[dt.date]:
    since = min((s.day for s in statuses), default=dt.date.max)
    with read_cursor() as cur:
        cur.execute("SELECT issued_on FROM edi.statement_day WHERE issued_on >= %s", (since,))
        return {r["issued_on"] for r in cur.fetchall()}


def _rerunnable(s: DayStatus, issued: set[dt.date]) -> bool:
    """What ``publish`` would not refuse: a file already planned (same bytes again), or a
    day whose statements are issued. A late day without them waits for the statements DAG."""
    return s.status in RERUNNABLE and (s.sequence is not None or s.day in issued)


def _insurers() -> dict[str, dict[str, Any]]:
    with read_cursor() as cur:
        cur.execute("SELECT insurer_id, name, export_format, export_time FROM edi.registry_insurer")
        return {r["insurer_id"]: dict(r) for r in cur.fetchall()}


def _day(day: dt.date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _local(when: dt.datetime, day: dt.date | None = None) -> str:
    """Monaco wall-clock time; with the date too unless it falls on ``day``."""
    local = when.astimezone(MONACO)
    return f"{local:%H:%M}" if local.date() == day else f"{_day(local.date())} {local:%H:%M}"


def _summary(statuses: list[DayStatus], now: dt.datetime) -> dict[str, Any]:
    """The files due today: those of yesterday's statements (due at each insurer's time)."""
    day = monaco_today(now) - dt.timedelta(days=1)
    counts = Counter(s.status for s in statuses if s.day == day)
    return {"day": day, "label": _day(day), "counts": {k: counts.get(k, 0) for k in STATUSES}}


def _grid(statuses: list[DayStatus], shown: str | None) -> tuple[list[dt.date], list[Any]]:
    """Insurers (rows) × days, oldest to newest (columns); with a filter, only the insurers
    that have a day in that status."""
    days = sorted({s.day for s in statuses})
    names, issued = _insurers(), _issued_days(statuses)
    cells: dict[str, dict[dt.date, DayStatus]] = {}
    for s in statuses:
        cells.setdefault(s.insurer_id, {})[s.day] = s
    rows = []
    for insurer_id, by_day in cells.items():
        if shown and not any(s.status == shown for s in by_day.values()):
            continue
        row_cells = []
        for day in days:
            s = by_day[day]
            due = s.due_at.astimezone(MONACO)
            row_cells.append({
                "s": s,
                "css": s.status.replace(" ", "-"),
                "dim": bool(shown) and s.status != shown,
                "due": _local(s.due_at, due.date()),
                "due_title": f"due {_day(due.date())} {due:%H:%M} Monaco time"
                f" ({s.due_at.astimezone(dt.UTC):%H:%M} UTC)",
                "published": _local(s.published_at, due.date()) if s.published_at else None,
                "rerun": _rerunnable(s, issued),
                "unissued": s.sequence is None and s.day not in issued,
            })  # fmt: skip
        rows.append({"insurer": names.get(insurer_id, {"insurer_id": insurer_id}),
                     "cells": row_cells})  # fmt: skip
    return days, rows


# Plain ``def`` routes: FastAPI runs them in a thread pool, so the blocking DB calls are fine.
@app.get("/exports", response_class=HTMLResponse)
def exports_page(user: User, status: str | None = None) -> str:
    now = clock.now()
    everything = _statuses(now)
    shown = status if status in STATUSES else None
    days, rows = _grid(everything, shown)
    counts = Counter(s.status for s in everything)
    return _TEMPLATE.render(
        title="Insurer exports",
        now=_local(now),
        days=[(_day(d), _day(d + dt.timedelta(days=1))) for d in days],
        rows=rows,
        summary=_summary(everything, now),
        filters=[(k, counts.get(k, 0)) for k in STATUSES],
        shown=shown,
        can_rerun=_can_trigger(user),
        token=form_token(user, RERUN_FORM),
        triggered=None,
    )


@app.get("/exports.json")
def exports_json(status: str | None = None) -> dict[str, Any]:
    """The same statuses for monitoring (times in UTC, ISO 8601)."""
    now = clock.now()
    everything = _statuses(now)
    summary = _summary(everything, now)
    return {
        "generated_at": now,
        "due_today": {"day": summary["day"], **summary["counts"]},
        "statuses": [dataclasses.asdict(s) for s in everything if status in (None, s.status)],
    }


@app.post("/exports/rerun", response_class=HTMLResponse, dependencies=[_may_trigger()])
def rerun(
    request: Request,
    user: User,
    insurer_id: Annotated[str, Form()],
    day: Annotated[str, Form()],
    token: Annotated[str, Form()] = "",
) -> str:
    check_form(request, user, token, RERUN_FORM, "Insurer exports")
    try:
        export_day = dt.date.fromisoformat(day)
    except ValueError:
        raise HTTPException(400, f"not a day: {day!r}") from None
    now = clock.now()
    statuses = _statuses(now)
    found = [s for s in statuses if (s.insurer_id, s.day) == (insurer_id, export_day)]
    if not found:
        raise HTTPException(404, f"no export of {insurer_id!r} on {day} in the last {DAYS} days")
    if not _rerunnable(found[0], _issued_days(found)):
        raise HTTPException(409, f"{insurer_id}'s file of {day} is {found[0].status}: no rerun")
    run_id, paused = trigger_rerun(insurer_id, export_day, user.get_name(), now)
    return _TEMPLATE.render(
        title="Rerun queued",
        triggered={
            "insurer_id": insurer_id,
            "day": _day(export_day),
            "run_id": run_id,
            "run_href": f"../../dags/{EXPORT_DAG_ID}/runs/{quote(run_id, safe='')}",
            "paused": paused,
        },
    )


def trigger_rerun(
    insurer_id: str, day: dt.date, user_name: str, now: dt.datetime
) -> tuple[str, bool]:
    """Create a manual run of ``export_insurers`` for one insurer and day, as ``user_name``
    (recorded on the run and in Airflow's audit log); return its run id and whether the DAG
    is paused (the run then waits). Same refusals as Airflow's trigger route."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models import DagModel, Log
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    conf = {"insurer_id": insurer_id, "day": day.isoformat()}
    # Readable in the runs list; Airflow allows only [A-Za-z0-9_.~:+-] in run ids.
    safe_id = re.sub(r"[^A-Za-z0-9_.~:+-]", "_", insurer_id)
    run_id = f"rerun__{safe_id}__{day.isoformat()}__{now:%Y%m%dT%H%M%S.%fZ}"
    with create_session() as session:
        dag = DagModel.get_current(EXPORT_DAG_ID, session=session)
        if dag is None or dag.is_stale:
            raise HTTPException(503, f"the DAG {EXPORT_DAG_ID} is not deployed")
        if dag.has_import_errors:
            raise HTTPException(503, f"the DAG {EXPORT_DAG_ID} has import errors")
        run = trigger_dag(
            EXPORT_DAG_ID,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user_name,
            run_id=run_id,
            conf=conf,
            session=session,
        )
        extra = json.dumps({"conf": conf, "from": "edihub insurer exports page"})
        session.add(Log(event="trigger_dag_run", owner=user_name, owner_display_name=user_name,
                        dag_id=EXPORT_DAG_ID, run_id=run_id, extra=extra))  # fmt: skip
        return run.run_id, bool(dag.is_paused)
