"""The integration team's e-mail of new alerts: one message per batch of newly opened alerts,
over the relay statements go through (``edihub.notify.mail``), sent once per alert."""

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


def send_pending(
    dsn: str, smtp: SmtpSettings, settings: AlertSettings, now: dt.datetime
) -> dict[str, Any]:
    """E-mail every open alert not yet e-mailed, in one message; on failure the alerts keep
    their error and the next call tries again. Returns what was sent."""
    with connect(dsn) as conn, conn, conn.cursor() as cur:
        alerts = store.pending_mail(cur)
        if not alerts:
            return {"emailed": [], "error": None}
        ids = [a["id"] for a in alerts]
        message = build_message(alerts, smtp.sender, settings.recipients, now)
        relay, error = Relay(smtp), None
        try:
            for recipient in settings.recipients:
                relay.send(message, recipient)
        except Exception as exc:  # the relay's refusal or absence: retried by the next run
            error = f"{type(exc).__name__}: {exc}"
            log.error("alert e-mail to %s failed: %s", settings.recipients, error)
        finally:
            relay.close()
        store.mark_mailed(cur, ids, now, error)
    keys = [f"{a['kind']}:{a['key']}" for a in alerts]
    return {"emailed": [] if error else keys, "error": error}
