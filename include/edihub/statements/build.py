"""One build: price what came in, then issue the last closed day's statements.

``build_statements`` runs whenever a collect DAG loaded care sheets or pharmacy invoices, and
once a day after midnight (Monaco). The last closed day is yesterday, or today when an
operator closes it early (``close_today``: the demo, a day-end run by hand); lines priced
after their day was issued go on the next day's statements.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from edihub.load.db import connect
from edihub.statements.adjudicate import Adjudication, adjudicate
from edihub.statements.issue import Issue, issue_day, monaco_today

# Serialises builds: two overlapping runs must not price or issue the same line twice.
_STATEMENTS_LOCK = 0x6564_6973_7461  # "edista"


@dataclass(frozen=True)
class Build:
    processing_day: dt.date
    adjudication: Adjudication
    issue: Issue | None

    def summary(self) -> dict[str, object]:
        """For task return values and asset events (JSON-friendly)."""
        return {
            "processing_day": self.processing_day.isoformat(),
            "priced": self.adjudication.priced,
            "repriced": self.adjudication.repriced,
            "unpriced": [str(u) for u in self.adjudication.unpriced],
            "issue": {**asdict(self.issue), "day": self.issue.day.isoformat()}
            if self.issue
            else None,
        }


def build_statements(
    dsn: str,
    now: dt.datetime | None = None,
    close_today: bool = False,
    payment_delay_days: int = 1,
) -> Build:
    today = monaco_today(now)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_STATEMENTS_LOCK,))
        adjudication = adjudicate(cur, today)
        closed_day = today if close_today else today - dt.timedelta(days=1)
        issue = issue_day(cur, closed_day, payment_delay_days)
        conn.commit()
    return Build(today, adjudication, issue)
