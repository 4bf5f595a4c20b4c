"""build_statements and notify_insured: from loaded claims to what the insured receive.

build_statements runs when a collect DAG loaded care sheets or pharmacy invoices, and after
midnight (Monaco) to issue the day just over; notify_insured follows each issue, and every
15 minutes retries e-mails whose backoff has elapsed. The logic: edihub.statements,
edihub.notify; the tasks: edihub.orchestration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Metadata, task

from edihub.dag_factory import DEFAULT_ARGS, loaded_asset

STATEMENTS_ISSUED = Asset(
    name="edi_statements_issued", uri="postgres://hub-db:5432/edihub/edi/statement"
)

with DAG(
    dag_id="build_statements",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("15 0 * * *", timezone="Europe/Monaco"),
        assets=loaded_asset("fse") | loaded_asset("pharmacy"),
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["statements"],
    params={"close_today": False},
    doc_md="""
### build_statements

1. **price_and_issue**: price every loaded act and pharmacy line not priced yet (rates of
   `include/edihub/reference/reimbursement_rates.csv`, exemptions in force on the date of
   care), price again the lines a late exemption now covers, then issue the statements of
   the last closed day (yesterday; today if the run's conf says `{"close_today": true}`):
   one per insured, routed to e-mail or paper, copied to the insurer with consent.

A failure names the lines without a rate in force (rule RATE-01): fix the reference, rerun.
Owner: integration engineering. Runbook: docs/operations.md#statements.
""",
):

    @task(outlets=[STATEMENTS_ISSUED])
    def price_and_issue(params: dict[str, Any] | None = None) -> Any:
        from edihub import orchestration

        close_today = bool((params or {}).get("close_today"))
        yield Metadata(STATEMENTS_ISSUED, orchestration.build_statements(close_today))

    price_and_issue()


with DAG(
    dag_id="notify_insured",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/15 * * * *", timezone="Europe/Monaco"),
        assets=STATEMENTS_ISSUED,
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["statements"],
    doc_md="""
### notify_insured

1. **send_emails**: every statement e-mail due (new, or whose retry backoff elapsed) through
   the `edi_smtp` connection, each with its statement as a PDF; a bounce, or the last
   attempt failing, sends the statement to paper instead (kept in `edi.statement_delivery`).
2. **print_batch**: the mail room's PDF of the last issued day's paper statements, in the
   paper account's `/outbound/print/<day>/` (once per day; reruns change nothing).

Owner: integration engineering. Runbook: docs/operations.md#notify.
""",
):

    @task
    def send_emails() -> dict[str, Any]:
        from edihub import orchestration

        return orchestration.send_statement_emails()

    @task
    def print_batch() -> dict[str, Any] | None:
        from edihub import orchestration

        return orchestration.print_batch()

    send_emails() >> print_batch()
