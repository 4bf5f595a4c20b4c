"""The hub's clock: what time it is for the hub's business rules (dates of care and periods
accepted, the day statements are issued, when an insurer's file is due) and for the times a
file's journey records (received, decided, archived, acknowledged, published).

Real time, unless ``EDIHUB_CLOCK_SHIFT_DAYS`` moves it by whole days, to replay a past period
through the real pipeline: ``edihub run`` sets it so that the brochure's December 2016 is
processed on 2016-12-31. The time of day stays real, so the clock never runs backwards. Rows'
bookkeeping times (``loaded_at``, ``created_at``...) stay the database's, and so do security
decisions (SFTP key validity): those are about the real world, not the replayed one.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

MONACO = ZoneInfo("Europe/Monaco")
SHIFT_VARIABLE = "EDIHUB_CLOCK_SHIFT_DAYS"


def shift() -> dt.timedelta:
    value = os.environ.get(SHIFT_VARIABLE, "").strip()
    try:
        return dt.timedelta(days=int(value or 0))
    except ValueError:
        message = f"{SHIFT_VARIABLE} must be a whole number of days, not {value!r}"
        raise ValueError(message) from None


def now() -> dt.datetime:
    """The hub's time, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC) + shift()


def monaco_today(at: dt.datetime | None = None) -> dt.date:
    """The Monaco date of ``at`` (default: the hub's now)."""
    return (at or now()).astimezone(MONACO).date()


def shift_to(day: dt.date) -> int:
    """The EDIHUB_CLOCK_SHIFT_DAYS that makes the hub's Monaco date ``day`` today."""
    return (day - dt.datetime.now(dt.UTC).astimezone(MONACO).date()).days
