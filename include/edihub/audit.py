"""The audit trail (``edi.audit_event``): who did what to which partner, file or export, when.

Every operation that changes what the hub holds or delivers records one event in the same
transaction as the change, so that an event exists if and only if the change happened.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from psycopg2.extras import Json

# The hub's own scheduled work (retention purges, alerts) acts as this actor.
HUB_ACTOR = "edihub"


def current_actor() -> str:
    """Who runs this command: EDIHUB_ACTOR if set (a wrapper that knows the person behind a
    shared account), else the operating-system user."""
    return os.environ.get("EDIHUB_ACTOR") or getpass.getuser()


def record(
    cur: Any, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None
) -> int:
    """Record one event with ``cur`` (in the caller's transaction); return its id."""
    cur.execute(
        "INSERT INTO edi.audit_event (actor, action, subject, detail)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (actor, action, subject, Json(detail or {})),
    )
    return int(cur.fetchone()[0])


def events(
    cur: Any, subject: str | None = None, action: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """The latest events, newest first, for one subject and/or one action (a prefix ending in
    '.' matches a family: 'partner.')."""
    where, args = [], []
    if subject is not None:
        where.append("subject = %s")
        args.append(subject)
    if action is not None:
        where.append("action LIKE %s" if action.endswith(".") else "action = %s")
        args.append(action + "%" if action.endswith(".") else action)
    cur.execute(
        "SELECT id, at, actor, action, subject, detail FROM edi.audit_event"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY at DESC, id DESC LIMIT %s",
        (*args, limit),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
