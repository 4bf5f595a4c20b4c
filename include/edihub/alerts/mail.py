"""The integration team's e-mail of new alerts: one message per batch of newly opened alerts,
over the relay statements go through (``edihub.notify.mail``), sent once per alert and
recipient (``edi.alert_delivery``)."""

from __future__ import annotations

import datetime as dt
import logging
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from edihub.alerts import store
from edihub.alerts.settings import AlertSettings
from edihub.clock import MONACO
from edihub.load.db import connect
from edihub.notify.mail import Relay, SmtpSettings

log = logging.getLogger(__name__)

RUNBOOK = "docs/operations.md#alerts"
TITLES = {
    "task_failed": "Task failed",
    "sender_silent": "Daily sender silent",
    "insurer_not_pulling": "Insurer not pulling its files",
    "rejection_jump": "Rejection rate jump",
    "export_late": "Export late",
}


def build_message(
    alerts: list[dict[str, Any]], sender: str, recipients: tuple[str, ...], now: dt.datetime
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    first = alerts[0]
    more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    msg["Subject"] = f"[EDI hub] {TITLES[first['kind']]}: {first['key']}{more}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("alert", parseaddr(sender)[1].rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    lines = [f"{len(alerts)} new alert(s) on the EDI hub:", ""]
    for a in alerts:
        opened = a["opened_at"].astimezone(MONACO)
        lines += [f"- {TITLES[a['kind']]} [{a['kind']}:{a['key']}], since {opened:%Y-%m-%d %H:%M}",
                  f"  {a['summary']}"]  # fmt: skip
        if a["detail"].get("log_url"):
            lines.append(f"  Log: {a['detail']['log_url']}")
    lines += ["", "Open alerts: Airflow UI, Browse > Alerts.", f"What to do: {RUNBOOK}", ""]
    msg.set_content("\n".join(lines))
    return msg


def _owed(
    alerts: list[dict[str, Any]], recipients: tuple[str, ...]
) -> dict[tuple[int, ...], list[str]]:
    """The recipients still owed alerts, by the alerts they are owed: one message each set."""
    owed: dict[tuple[int, ...], list[str]] = {}
    for recipient in recipients:
        ids = tuple(a["id"] for a in alerts if recipient not in a["delivered_to"])
        if ids:
            owed.setdefault(ids, []).append(recipient)
    return owed


def send_pending(
    dsn: str,
    smtp: SmtpSettings,
    settings: AlertSettings,
    now: dt.datetime,
    quiet: dt.timedelta | None = None,
) -> dict[str, Any]:
    """E-mail the open alerts not yet e-mailed, each recipient only what it has not accepted
    (one message per set of alerts: after a refusal, the retry goes to whoever refused).
    Mailings take turns; with ``quiet`` (a failure callback), nothing is sent while another
    mailing is under way or if an alert e-mail went out less than ``quiet`` ago: the next
    digest carries the burst. A refused or failed recipient keeps the alerts' error, and the
    next call tries it again. Returns what every recipient now has, and whether it deferred."""
    with connect(dsn) as conn, conn, conn.cursor() as cur:
        if not store.lock_mail(cur, wait=quiet is None):
            return {"emailed": [], "error": None, "deferred": True}
        if quiet is not None and (last := store.last_sent(cur)) and now - last < quiet:
            return {"emailed": [], "error": None, "deferred": True}
        alerts = store.pending_mail(cur)
        by_id = {a["id"]: a for a in alerts}
        errors: dict[int, str | None] = dict.fromkeys(by_id)
        failures: list[str] = []
        relay = Relay(smtp)
        try:
            for ids, recipients in _owed(alerts, settings.recipients).items():
                message = build_message([by_id[i] for i in ids], smtp.sender,
                                        settings.recipients, now)  # fmt: skip
                for recipient in recipients:
                    try:
                        relay.send(message, recipient)
                    except Exception as exc:  # the relay's refusal or absence: retried
                        error = f"{recipient}: {type(exc).__name__}: {exc}"
                        log.error("alert e-mail failed: %s", error)
                        failures.append(error)
                        errors.update((i, "; ".join(filter(None, (errors[i], error))))
                                      for i in ids)  # fmt: skip
                    else:
                        store.record_delivery(cur, list(ids), recipient, now,
                                              message["Message-ID"])  # fmt: skip
        finally:
            relay.close()
        if errors:
            store.mark_mailed(cur, errors, now)
    return {
        "emailed": [f"{a['kind']}:{a['key']}" for a in alerts if errors[a["id"]] is None],
        "error": "; ".join(failures) or None,
        "deferred": False,
    }
