"""One open alert per condition in ``edi.alert``: opened once, refreshed while it holds,
closed when it clears. Each opening and closing is an audit event of the same transaction
(actor ``edihub``, action ``alert.open`` / ``alert.close``, subject ``kind:key``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg2.extras
from psycopg2.extras import Json

from edihub.audit import HUB_ACTOR, record
from edihub.load.db import connect


@dataclass(frozen=True)
class Finding:
    """A condition that holds now: ``key`` names it within its kind."""

    key: str
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """What a check saw: the conditions that hold, and for an open alert whose condition no
    longer holds, why it cleared (None: the check cannot tell, the alert stays open)."""

    firing: list[Finding]
    cleared: Callable[[str], str | None]


@dataclass
class Applied:
    opened: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"opened": self.opened, "refreshed": self.refreshed, "closed": self.closed}


_RAISE = """
INSERT INTO edi.alert (kind, key, summary, detail, opened_at, last_seen_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (kind, key) WHERE closed_at IS NULL DO UPDATE
   SET summary = EXCLUDED.summary, detail = EXCLUDED.detail,
       last_seen_at = EXCLUDED.last_seen_at, seen_count = edi.alert.seen_count + 1
RETURNING id, xmax = 0
"""


def raise_alert(cur: Any, kind: str, finding: Finding, now: dt.datetime) -> bool:
    """Open the alert of ``finding``, or refresh the open one; True if opened now."""
    detail = Json(finding.detail)
    cur.execute(_RAISE, (kind, finding.key, finding.summary, detail, now, now))
    alert_id, inserted = cur.fetchone()
    if inserted:  # xmax = 0: a new row, not the update of the open one
        record(cur, HUB_ACTOR, "alert.open", f"{kind}:{finding.key}",
               {"alert_id": alert_id, "summary": finding.summary})  # fmt: skip
    return bool(inserted)


def close_alert(cur: Any, kind: str, key: str, now: dt.datetime, reason: str) -> bool:
    """Close the open alert of (kind, key), if any; True if one was closed."""
    cur.execute(
        "UPDATE edi.alert SET closed_at = %s, close_reason = %s"
        " WHERE kind = %s AND key = %s AND closed_at IS NULL RETURNING id",
        (now, reason, kind, key),
    )
    row = cur.fetchone()
    if row:
        record(cur, HUB_ACTOR, "alert.close", f"{kind}:{key}",
               {"alert_id": row[0], "reason": reason})  # fmt: skip
    return row is not None


def apply(dsn: str, kind: str, verdict: Verdict, now: dt.datetime) -> Applied:
    """Bring ``kind``'s alerts in line with ``verdict``, in one transaction."""
    done = Applied()
    with connect(dsn) as conn, conn, conn.cursor() as cur:
        for finding in verdict.firing:
            opened = raise_alert(cur, kind, finding, now)
            (done.opened if opened else done.refreshed).append(finding.key)
        firing = {f.key for f in verdict.firing}
        cur.execute("SELECT key FROM edi.alert WHERE kind = %s AND closed_at IS NULL", (kind,))
        for (key,) in cur.fetchall():
            reason = None if key in firing else verdict.cleared(key)
            if reason and close_alert(cur, kind, key, now, reason):
                done.closed.append(key)
    return done


# Serialises the alerts' mailings (the DAG's digest, the failure callbacks), so that a burst
# of callbacks sends one message, not one each.
_MAIL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('edihub-alert-mail'))"
_TRY_MAIL_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('edihub-alert-mail'))"


def lock_mail(cur: Any, wait: bool) -> bool:
    """Take the mailing lock for this transaction, waiting for it or not; True if taken."""
    cur.execute(_MAIL_LOCK if wait else _TRY_MAIL_LOCK)
    return wait or bool(cur.fetchone()[0])


def last_sent(cur: Any) -> dt.datetime | None:
    """When a recipient last accepted an alert e-mail."""
    cur.execute("SELECT max(sent_at) FROM edi.alert_delivery")
    return cur.fetchone()[0]


def pending_mail(cur: Any) -> list[dict[str, Any]]:
    """The open alerts not yet e-mailed to every recipient, with those who accepted them
    (``delivered_to``). Call under ``lock_mail``."""
    cur.execute(
        "SELECT a.id, a.kind, a.key, a.summary, a.detail, a.opened_at,"
        " coalesce(array_agg(d.recipient) FILTER (WHERE d.recipient IS NOT NULL), '{}')"
        " AS delivered_to"
        " FROM edi.alert a LEFT JOIN edi.alert_delivery d ON d.alert_id = a.id"
        " WHERE a.emailed_at IS NULL AND a.closed_at IS NULL"
        " GROUP BY a.id ORDER BY a.opened_at, a.id"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def record_delivery(
    cur: Any, ids: list[int], recipient: str, now: dt.datetime, message_id: str
) -> None:
    """``recipient``'s relay accepted the message carrying ``ids``."""
    cur.executemany(
        "INSERT INTO edi.alert_delivery (alert_id, recipient, sent_at, message_id)"
        " VALUES (%s, %s, %s, %s)",
        [(alert_id, recipient, now, message_id) for alert_id in ids],
    )


def mark_mailed(cur: Any, errors: dict[int, str | None], now: dt.datetime) -> None:
    """Record a mailing: each alert's error (None: every recipient has it now, e-mailed at
    ``now``; else retried for those who refused)."""
    cur.execute(
        "UPDATE edi.alert a SET email_attempts = email_attempts + 1, email_error = f.error,"
        " emailed_at = CASE WHEN f.error IS NULL THEN %s END"
        " FROM unnest(%s::bigint[], %s::text[]) AS f(id, error) WHERE a.id = f.id",
        (now, list(errors), list(errors.values())),
    )


def listing(dsn: str, closed_since: dt.datetime) -> list[dict[str, Any]]:
    """Every open alert, and those closed since ``closed_since``: newest first."""
    with (
        connect(dsn) as conn,
        conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur,
    ):
        cur.execute(
            "SELECT * FROM edi.alert WHERE closed_at IS NULL OR closed_at >= %s"
            " ORDER BY closed_at IS NOT NULL, opened_at DESC, id DESC",
            (closed_since,),
        )
        return [dict(r) for r in cur.fetchall()]
