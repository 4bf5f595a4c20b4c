"""retention: the download audit from OpenSSH's log, then the purges of edihub.retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, task

from edihub.dag_factory import DEFAULT_ARGS

with DAG(
    dag_id="retention",
    # Hourly: an export leaves the server within the hour its grace period ends.
    schedule=CronTriggerTimetable("40 * * * *", timezone="Europe/Monaco"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["retention"],
    params={"dry_run": False},
    doc_md="""
### retention

1. **ingest_sftp_log**: with OpenSSH as the SFTP server, its sftp log (`EDIHUB_SFTP_LOG`)
   since the last run, into the audit trail: each partner's download an `export.download`,
   `ack.download` or `outbound.download` event (the embedded server records its own).
   Idempotent: a cursor advances with the events it recorded.
2. **purge**: the next months' partitions of the audit trail and of the message store
   (rows waiting in a DEFAULT partition moved into their month); then everything past its
   period (`EDIHUB_RETAIN_*_DAYS`): insurers' exports and manifests downloaded and past their
   grace period, or past their maximum age; the inbound archive's day folders and landing
   copies; the relay's e-mail copies and the statements' e-mail addresses; crashed steps'
   leftovers; the oldest months of the audit trail and of the message store (files' records,
   errors and rule results), as partitions dropped. Each purge is a `retention.purge` audit
   event. The run's conf `{"dry_run": true}` only lists what would go.

Logic: `edihub.retention`, `edihub.sftp.downloads`.

Owner: integration engineering. Runbook: docs/operations.md#retention
""",
):

    @task
    def ingest_sftp_log() -> dict[str, Any] | None:
        from edihub import orchestration

        return orchestration.ingest_sftp_log()

    @task
    def purge(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from edihub import orchestration

        return orchestration.retention_run(dry_run=bool((params or {}).get("dry_run")))

    # The downloads first: an export downloaded since the last run counts as downloaded.
    ingest_sftp_log() >> purge()
