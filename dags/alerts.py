"""alerts: every 15 minutes, the checks of edihub.alerts.checks, then the e-mail of new alerts.

The logic is in edihub.alerts; this file only lays out the tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, task

from edihub.alerts import CHECKS
from edihub.dag_factory import DEFAULT_ARGS

with DAG(
    dag_id="alerts",
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="Europe/Monaco"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["alerts"],
    doc_md="""
### alerts

1. **migrate_database**: apply pending hub migrations (a no-op once applied).
2. one task per check, each on its own (one failing does not stop the others); each opens
   an alert for a condition newly seen, refreshes the open one, closes it when it clears
   (table `edi.alert`, one open alert per condition):
   - **check_sender_silent**: a sender that sends on most days sent nothing today by the
     configured hour (`EDIHUB_ALERT_SENDER_HOUR`, Monaco time);
   - **check_insurer_not_pulling**: an insurer has not downloaded a file published more
     than `EDIHUB_ALERT_PULL_DAYS` days ago (the `export.download` audit events);
   - **check_rejection_jump**: a feed's share of rejected files today jumped against its
     last 28 days (over a minimum number of files);
   - **check_export_late**: an insurer's file not published
     `EDIHUB_ALERT_EXPORT_LATE_MINUTES` after its due time.
3. **email_alerts**: one e-mail to `EDIHUB_ALERT_EMAILS` with the alerts opened and not yet
   e-mailed (a failed task's alert is e-mailed at once by its callback, a burst's others
   wait for this digest; it also retries the recipients the relay refused), through the
   `edi_smtp` connection.

The open alerts: Airflow UI, Browse → Alerts.
Owner: integration engineering. Runbook: docs/operations.md#alerts.
""",
):

    @task
    def migrate_database() -> list[str]:
        from edihub import orchestration

        return orchestration.migrate()

    @task(trigger_rule="all_done")
    def email_alerts() -> dict[str, Any]:
        from edihub.alerts.tasks import email_alerts as send

        return send()

    def check(name: str) -> Any:
        @task(task_id=f"check_{name}")
        def run() -> dict[str, list[str]]:
            from edihub.alerts.tasks import run_check

            return run_check(name)

        return run()

    migrate_database() >> [check(name) for name in CHECKS] >> email_alerts()
