"""The conditions the alerts DAG looks for, each read from the hub database at ``now``.

Each check returns a ``Verdict``: the conditions that hold (one ``Finding`` per sender,
insurer, feed or export) and, for an open alert whose condition no longer holds, why it
cleared. Days are Monaco days of the hub's clock; the files' ``received_at`` and the exports'
``published_at`` are written on that clock too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg2.extras

from edihub.alerts.settings import AlertSettings
from edihub.alerts.store import Finding, Verdict
from edihub.clock import MONACO, monaco_today
from edihub.load.db import connect

# A file that reached a decision; 'received' is in flight and 'duplicate' says nothing about
# the sender's content.
_DECIDED = ("loaded", "loaded_with_errors", "rejected", "quarantined")
_REJECTED = ("rejected", "quarantined")


def _rows(dsn: str, query: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    with (
        connect(dsn) as conn,
        conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur,
    ):
        cur.execute(query, args)
        return [dict(r) for r in cur.fetchall()]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), MONACO)


def _stamp(when: dt.datetime) -> str:
    return f"{when.astimezone(MONACO):%Y-%m-%d %H:%M}"


_SENDERS = """
SELECT sender, array_agg(DISTINCT feed ORDER BY feed) AS feeds,
       count(DISTINCT (received_at AT TIME ZONE 'Europe/Monaco')::date)
           FILTER (WHERE received_at < %(today)s) AS days_sent,
       count(DISTINCT (received_at AT TIME ZONE 'Europe/Monaco')::date)
           FILTER (WHERE received_at < %(today)s AND extract(isodow FROM received_at
                   AT TIME ZONE 'Europe/Monaco') = %(isodow)s) AS weekdays_sent,
       count(*) FILTER (WHERE received_at >= %(today)s) AS sent_today,
       max(received_at) AS last_received
  FROM edi.inbound_file
 WHERE received_at >= %(since)s AND received_at < %(tomorrow)s
 GROUP BY sender
"""


def sender_silent(dsn: str, settings: AlertSettings, now: dt.datetime) -> Verdict:
    """A sender that sent on at least ``sender_usual_percent`` % of the last
    ``sender_history_days`` days, and on more than half of the same weekdays among them (a
    pharmacy closed on Sundays is not expected on a Sunday), and nothing today by
    ``sender_hour`` (Monaco)."""
    today = monaco_today(now)
    rows = _rows(dsn, _SENDERS, {
        "since": _midnight(today - dt.timedelta(days=settings.sender_history_days)),
        "today": _midnight(today), "tomorrow": _midnight(today + dt.timedelta(days=1)),
        "isodow": today.isoweekday(),
    })  # fmt: skip
    by_sender = {r["sender"]: r for r in rows}

    weeks = settings.sender_history_days // 7

    def usual(r: dict[str, Any]) -> bool:
        days = settings.sender_usual_percent * settings.sender_history_days
        return r["days_sent"] * 100 >= days and r["weekdays_sent"] * 2 > weeks

    past_hour = now.astimezone(MONACO).hour >= settings.sender_hour
    firing = [
        Finding(
            key=r["sender"],
            summary=f"{r['sender']} ({', '.join(r['feeds'])}) sent nothing today by"
            f" {settings.sender_hour:02d}:00; it sent on {r['days_sent']} of the last"
            f" {settings.sender_history_days} days, last at {_stamp(r['last_received'])}",
            detail={
                "feeds": r["feeds"],
                "days_sent": r["days_sent"],
                "history_days": settings.sender_history_days,
                "last_received": r["last_received"].isoformat(),
                "day": today.isoformat(),
            },
        )
        for r in rows
        if past_hour and not r["sent_today"] and usual(r)
    ]

    def cleared(sender: str) -> str | None:
        r = by_sender.get(sender)
        if r and r["sent_today"]:
            return f"sent {r['sent_today']} file(s) on {today}"
        if r is None or not usual(r):
            return "no longer expected on this day (a daily sender, on this weekday too)"
        return None  # before the hour: still quiet, the alert stays open

    return Verdict(firing, cleared)


_UNPULLED = """
SELECT e.insurer_id, e.file_name, e.export_day, e.published_at
  FROM edi.export_file e
 WHERE e.state = 'published' AND e.published_at >= %(since)s AND e.published_at < %(by)s
   AND NOT EXISTS (
       SELECT 1 FROM edi.audit_event a
        WHERE a.action = 'export.download'
          AND a.detail ->> 'insurer_id' = e.insurer_id
          AND a.detail ->> 'file_name' = e.file_name)
 ORDER BY e.insurer_id, e.export_day
"""


def insurer_not_pulling(dsn: str, settings: AlertSettings, now: dt.datetime) -> Verdict:
    """An insurer with a file published more than ``pull_days`` ago (within the last
    ``pull_window_days``) that no ``export.download`` audit event says it downloaded."""
    rows = _rows(dsn, _UNPULLED, {
        "since": now - dt.timedelta(days=settings.pull_window_days),
        "by": now - dt.timedelta(days=settings.pull_days),
    })  # fmt: skip
    files: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        files.setdefault(r["insurer_id"], []).append(r)
    firing = [
        Finding(
            key=insurer,
            summary=f"{insurer} has not pulled {len(unpulled)} file(s) published more than"
            f" {settings.pull_days} days ago, the oldest {unpulled[0]['file_name']}"
            f" (published {_stamp(unpulled[0]['published_at'])})",
            detail={
                "files": [
                    {
                        "file_name": u["file_name"],
                        "export_day": str(u["export_day"]),
                        "published_at": u["published_at"].isoformat(),
                    }
                    for u in unpulled
                ]
            },
        )
        for insurer, unpulled in files.items()
    ]
    return Verdict(firing, lambda _: "its files were downloaded (or left the window)")


_REJECTIONS = """
SELECT feed,
       count(*) FILTER (WHERE received_at >= %(today)s) AS today_total,
       count(*) FILTER (WHERE received_at >= %(today)s AND state = ANY(%(rejected)s))
           AS today_rejected,
       count(*) FILTER (WHERE received_at < %(today)s) AS past_total,
       count(*) FILTER (WHERE received_at < %(today)s AND state = ANY(%(rejected)s))
           AS past_rejected
  FROM edi.inbound_file
 WHERE received_at >= %(since)s AND received_at < %(tomorrow)s AND state = ANY(%(decided)s)
 GROUP BY feed
"""


def rejection_jump(dsn: str, settings: AlertSettings, now: dt.datetime) -> Verdict:
    """A feed whose share of rejected (or quarantined) files today, over at least
    ``rejection_min_files`` decided files, is ``rejection_jump_points`` points above its
    share over the ``rejection_history_days`` before."""
    today = monaco_today(now)
    rows = _rows(dsn, _REJECTIONS, {
        "since": _midnight(today - dt.timedelta(days=settings.rejection_history_days)),
        "today": _midnight(today), "tomorrow": _midnight(today + dt.timedelta(days=1)),
        "rejected": list(_REJECTED), "decided": list(_DECIDED),
    })  # fmt: skip
    firing = []
    for r in rows:
        rate = r["today_rejected"] / r["today_total"] if r["today_total"] else 0.0
        usual = r["past_rejected"] / r["past_total"] if r["past_total"] else 0.0
        if (
            r["today_total"] >= settings.rejection_min_files
            and (rate - usual) * 100 >= settings.rejection_jump_points
        ):
            firing.append(Finding(
                key=r["feed"],
                summary=f"{r['feed']}: {r['today_rejected']} of {r['today_total']} files"
                f" rejected today ({rate:.0%}), against {usual:.0%} over the last"
                f" {settings.rejection_history_days} days",
                detail={k: r[k] for k in ("today_total", "today_rejected", "past_total",
                                          "past_rejected")} | {"day": today.isoformat()},
            ))  # fmt: skip
    return Verdict(firing, lambda _: "the rejection rate is back within bounds")


# An export stays the exports' business this many days (the export DAG's catch-up window).
EXPORT_WINDOW_DAYS = 7


def export_late(dsn: str, settings: AlertSettings, now: dt.datetime) -> Verdict:
    """An insurer's file not published ``export_late_minutes`` after its due time (its
    registry ``export_time`` on the next day, Monaco time). Counted from the first day whose
    statements the hub issued (before that, no file was ever due), and yesterday's file
    always: a day whose statements were not issued has no file either."""
    from edihub.exports import export_status

    statuses = export_status(dsn, now, days=EXPORT_WINDOW_DAYS)
    [first] = _rows(dsn, "SELECT min(issued_on) AS day FROM edi.statement_day", {})
    yesterday = monaco_today(now) - dt.timedelta(days=1)
    since = min(first["day"] or yesterday, yesterday)
    grace = dt.timedelta(minutes=settings.export_late_minutes)
    firing, known = [], {}
    for s in statuses:
        key = f"{s.insurer_id}/{s.day.isoformat()}"
        known[key] = s
        if s.status in ("published", "paused", "no convention") or s.day < since:
            continue
        if now >= s.due_at + grace:
            firing.append(Finding(
                key=key,
                summary=f"{s.insurer_id}'s file of {s.day} is not published: due"
                f" {_stamp(s.due_at)}, {settings.export_late_minutes} min grace"
                + (f"; last error: {s.error}" if s.error else ""),
                detail={"insurer_id": s.insurer_id, "day": s.day.isoformat(),
                        "due_at": s.due_at.isoformat(), "status": s.status, "error": s.error},
            ))  # fmt: skip

    def cleared(key: str) -> str | None:
        s = known.get(key)
        if s is None or s.day < since:
            return None  # out of the window: only its publication (seen here) closes it
        if s.status == "published" and s.published_at:
            return f"published {_stamp(s.published_at)}"
        return f"the insurer is {s.status}" if s.status in ("paused", "no convention") else None

    return Verdict(firing, cleared)


CHECKS: dict[str, Callable[[str, AlertSettings, dt.datetime], Verdict]] = {
    "sender_silent": sender_silent,
    "insurer_not_pulling": insurer_not_pulling,
    "rejection_jump": rejection_jump,
    "export_late": export_late,
}
