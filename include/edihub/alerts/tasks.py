"""What Airflow calls: the failure and success callbacks of every task (in
``dag_factory.DEFAULT_ARGS``) and the alerts DAG's tasks.

Imported when a DAG file is parsed: only the standard library at module level.

A task's failure (after its last retry: a retry is the backoff doing its job, not news)
opens a ``task_failed`` alert keyed by DAG, task and, for a mapped task with a readable map
index, that index (an insurer), and e-mails it at once unless an alert e-mail went out in
the last ``EDIHUB_ALERT_MAIL_MINUTES``: a burst (52 insurers' exports failing together) is one
e-mail of its first failures, then the alerts DAG's next ``email_alerts`` (or the first
failure after the quiet period) mails the rest in one. The same key's next success closes
it. A mapped task without one (a collect batch) shares one key: a sibling's success in a
later run closes it, as the failure is then gone.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
KIND = "task_failed"


def task_key(ti: Any) -> str:
    index = getattr(ti, "rendered_map_index", None)
    return f"{ti.dag_id}.{ti.task_id}" + (f"[{index}]" if index else "")


def email_alerts(quiet: bool = False) -> dict[str, Any]:
    """E-mail the open alerts not yet e-mailed (the alerts DAG's last task, every run); with
    ``quiet``, only if no alert e-mail went out in the last EDIHUB_ALERT_MAIL_MINUTES."""
    import datetime as dt

    from edihub import clock
    from edihub.alerts.mail import send_pending
    from edihub.alerts.settings import AlertSettings
    from edihub.orchestration import database_dsn, smtp_settings

    settings = AlertSettings.from_env()
    wait = dt.timedelta(minutes=settings.mail_minutes) if quiet else None
    return send_pending(database_dsn(), smtp_settings(), settings, clock.now(), wait)


def task_failed(context: Any) -> None:
    """on_failure_callback: record the failure as an alert and e-mail the team (at once, or
    in the burst's digest)."""
    from edihub import clock
    from edihub.alerts import store
    from edihub.load.db import connect
    from edihub.orchestration import database_dsn

    ti = context["ti"]
    error = context.get("exception")
    finding = store.Finding(
        key=task_key(ti),
        summary=f"{task_key(ti)} failed in run {ti.run_id} (try {ti.try_number}):"
        f" {type(error).__name__ if error else 'error'}: {str(error or '')[:300]}",
        detail={"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
                "map_index": ti.map_index, "try_number": ti.try_number,
                "error": str(error or "")[:2000], "log_url": getattr(ti, "log_url", None)},
    )  # fmt: skip
    with connect(database_dsn()) as conn, conn, conn.cursor() as cur:
        opened = store.raise_alert(cur, KIND, finding, clock.now())
    # Every failure, opening or not, may be the first after a quiet period with a burst's
    # alerts still unsent.
    sent = email_alerts(quiet=True)
    log.info("alert %s for %s; e-mailing: %s", "opened" if opened else "seen", finding.key, sent)


def task_succeeded(context: Any) -> None:
    """on_success_callback: close the task's open failure alert, if any."""
    from edihub import clock
    from edihub.alerts import store
    from edihub.load.db import connect
    from edihub.orchestration import database_dsn

    ti = context["ti"]
    with connect(database_dsn()) as conn, conn, conn.cursor() as cur:
        reason = f"succeeded in run {ti.run_id}"
        if store.close_alert(cur, KIND, task_key(ti), clock.now(), reason):
            log.info("alert for %s closed: %s", task_key(ti), reason)


def run_check(name: str) -> dict[str, list[str]]:
    """One check of the alerts DAG, applied to the alerts table."""
    from edihub import clock
    from edihub.alerts import store
    from edihub.alerts.checks import CHECKS
    from edihub.alerts.settings import AlertSettings
    from edihub.orchestration import database_dsn

    dsn, now = database_dsn(), clock.now()
    done = store.apply(dsn, name, CHECKS[name](dsn, AlertSettings.from_env(), now), now)
    log.info("check %s: %s", name, done.as_dict())
    return done.as_dict()
