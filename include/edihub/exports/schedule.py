"""When each insurer's file is due, and where each stands: from the registry, not from code.

An insurer's file for day D (the statements issued up to D) is due at its ``export_time`` on
D + 1, Monaco local time, whatever the season: 06:00 is 05:00 UTC in winter and 04:00 UTC in
summer. Onboarding, a new time or a pause is a registry snapshot; the export DAG reads this
every run. Days are caught up to ``backfill_days`` back, in order, once their statements are
issued.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg2.extras

from edihub.load.db import connect
from edihub.statements import MONACO, monaco_today

# A file not published this long after its time is late (the DAG runs every 15 minutes and
# retries a failed upload with backoff for about that long).
LATE_AFTER = dt.timedelta(hours=1)


def due_at(export_time: str, day: dt.date) -> dt.datetime:
    hours, minutes = map(int, export_time.split(":"))
    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hours, minutes), MONACO)
    return local.astimezone(dt.UTC)


_INSURERS = """
    SELECT insurer_id, status, sftp_account, export_format, export_time, convention_signed_on
      FROM edi.registry_insurer ORDER BY insurer_id
"""

_FILES = """
    SELECT insurer_id, export_day, sequence, state, row_count, published_at, attempts,
           last_error, file_name
      FROM edi.export_file WHERE export_day >= %s
"""


def _insurers(cur: Any) -> list[dict[str, Any]]:
    cur.execute(_INSURERS)
    return [dict(r) for r in cur.fetchall()]


def _read(
    dsn: str, since: dt.date
) -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]], set[dt.date], dict[Any, int]]:
    with connect(dsn) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        insurers = _insurers(cur)
        cur.execute(_FILES, (since,))
        exported = {(r["insurer_id"], r["export_day"]): dict(r) for r in cur.fetchall()}
        cur.execute("SELECT issued_on FROM edi.statement_day WHERE issued_on >= %s", (since,))
        issued = {r["issued_on"] for r in cur.fetchall()}
        cur.execute(
            "SELECT insurer_id, issued_on, count(*) AS n FROM edi.statement"
            " WHERE insurer_id IS NOT NULL AND issued_on >= %s GROUP BY 1, 2",
            (since,),
        )
        copies = {(r["insurer_id"], r["issued_on"]): r["n"] for r in cur.fetchall()}
    return insurers, exported, issued, copies


def export_refusal(insurer: dict[str, Any], day: dt.date) -> str | None:
    """Why the registry gives ``insurer`` no file for ``day`` (None: it gets one)."""
    if insurer["status"] != "active":
        return f"insurer {insurer['insurer_id']} is {insurer['status']}: not exported"
    signed = insurer["convention_signed_on"]
    if signed is None or signed > day:
        return f"insurer {insurer['insurer_id']} has no convention in force on {day}"
    return None


def _exportable(insurer: dict[str, Any], day: dt.date) -> bool:
    return export_refusal(insurer, day) is None


def due_exports(dsn: str, now: dt.datetime, backfill_days: int = 7) -> list[dict[str, Any]]:
    """One entry per insurer with files due and not published: ``{"insurer_id", "days"}``
    (ISO dates, oldest first), for the export DAG to map over."""
    today = monaco_today(now)
    days = [today - dt.timedelta(days=n) for n in range(backfill_days, 0, -1)]
    insurers, exported, issued, _ = _read(dsn, days[0])
    due = []
    for insurer in insurers:
        pending = [
            d.isoformat()
            for d in days
            if d in issued
            and _exportable(insurer, d)
            and due_at(insurer["export_time"], d) <= now
            and exported.get((insurer["insurer_id"], d), {}).get("state") != "published"
        ]
        if pending:
            due.append({"insurer_id": insurer["insurer_id"], "days": pending})
    return due


def exportable_insurers(dsn: str, day: dt.date) -> list[str]:
    """The insurers that get a file for ``day``: active, with a convention in force."""
    with connect(dsn) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        insurers = _insurers(cur)
    return [i["insurer_id"] for i in insurers if _exportable(i, day)]


@dataclass(frozen=True)
class DayStatus:
    insurer_id: str
    day: dt.date
    status: str  # published, failed, late, due, waiting, paused
    statements: int
    rows: int | None
    sequence: int | None
    due_at: dt.datetime
    published_at: dt.datetime | None
    error: str | None


def export_status(dsn: str, now: dt.datetime, days: int = 7) -> list[DayStatus]:
    """Each insurer's last ``days`` export days, newest first: what the engineer sees."""
    today = monaco_today(now)
    window = [today - dt.timedelta(days=n) for n in range(0, days)]
    insurers, exported, issued, copies = _read(dsn, window[-1])
    statuses = []
    for insurer in insurers:
        for day in window:
            found = exported.get((insurer["insurer_id"], day), {})
            when = due_at(insurer["export_time"], day)
            if found.get("state") == "published":
                status = "published"
            elif found.get("last_error"):
                status = "failed"
            elif not _exportable(insurer, day):
                status = "paused" if insurer["status"] != "active" else "no convention"
            elif now >= when + LATE_AFTER:
                status = "late"
            elif now >= when and day in issued:
                status = "due"
            else:
                status = "waiting"
            statuses.append(
                DayStatus(
                    insurer_id=insurer["insurer_id"],
                    day=day,
                    status=status,
                    statements=copies.get((insurer["insurer_id"], day), 0),
                    rows=found.get("row_count"),
                    sequence=found.get("sequence"),
                    due_at=when,
                    published_at=found.get("published_at"),
                    error=found.get("last_error"),
                )
            )
    return statuses
