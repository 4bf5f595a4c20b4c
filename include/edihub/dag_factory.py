"""One collect DAG per inbound feed, all built here: a new feed is an entry in FEEDS.

Imports only the Airflow SDK at module level (DAG files are parsed every 30 s); each task
imports the hub's code when it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Metadata, task, task_group

from edihub.alerts.tasks import task_failed, task_succeeded
from edihub.feeds import FEEDS

# Every DAG of the hub: transport and database errors are transient, retried with backoff.
# A task that fails for good opens an alert and e-mails the integration team; its next
# success closes the alert. No retry callback: a retry is the backoff doing its job. No
# deadline alerts either: in Airflow 3.3.2 they crash dag.test() (apache/airflow#73428) and
# may stop firing after re-serialization (#72471); the alerts DAG checks lateness from the
# database instead (stack-notes §2).
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "integration",
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": task_failed,
    "on_success_callback": task_succeeded,
}

# The only tags a DAG may carry (tests/test_dag_policy.py): a new family is added here.
TAGS: frozenset[str] = frozenset(
    {"inbound", "statements", "exports", "alerts", "retention"} | {f"feed:{f}" for f in FEEDS}
)

DOC = """
### collect_{feed}: {what}

Every five minutes, for each partner's `/inbound/{feed}/` folder on the SFTP server:

1. **migrate_database**: apply pending hub migrations (a no-op once applied); then
   **finish_interrupted**: archive and acknowledge the files whose earlier run died after
   their outcome was committed
2. **list_files**: files ready to take (complete uploads only: no `.part`, old enough, stable)
3. per batch of files (up to `EDIHUB_FILES_PER_TASK`, a large file alone), **process_files**:
   fetch → validate → load → archive → acknowledge, each file in turn; a file that fails a
   step does not stop the others, and the retry redoes only what is not done
4. **report**: the run's outcome, published as the `edi_{feed}_loaded` asset event

Each file ends *loaded*, *loaded_with_errors*, *rejected*, *quarantined* or *duplicate*
(table `edi.inbound_file`), and its sender finds an acknowledgment in `/outbound/acks/`.
Content errors never fail a task; a failed task means the database or the SFTP server was
unreachable, and it is retried with backoff. Format contract: `formats/{feed}/`; data
contract: `contracts/{feed}/`; logic: `edihub.collect`.

Owner: integration engineering. Runbook: docs/operations.md#collect.
"""


def loaded_asset(feed: str) -> Asset:
    return Asset(name=f"edi_{feed}_loaded", uri=f"postgres://hub-db:5432/edihub/edi/{feed}")


def collect_dag(feed: str) -> DAG:
    asset = loaded_asset(feed)
    with DAG(
        dag_id=f"collect_{feed}",
        schedule=timedelta(minutes=5),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,  # one collector per feed; the database guards exactly-once anyway
        default_args=DEFAULT_ARGS,
        tags=[f"feed:{feed}", "inbound"],
        doc_md=DOC.format(feed=feed, what=FEEDS[feed]),
    ) as dag:

        @task
        def migrate_database() -> list[str]:
            from edihub import orchestration

            return orchestration.migrate()

        @task
        def finish_interrupted() -> list[int]:
            from edihub import orchestration

            return orchestration.finish_interrupted(feed)

        @task
        def list_files() -> list[list[dict[str, Any]]]:
            from edihub import orchestration

            return orchestration.list_files(feed)

        @task
        def fetch(batch: list[dict[str, Any]]) -> list[int]:
            from edihub import orchestration

            return orchestration.fetch(batch)

        @task
        def validate(file_ids: list[int]) -> list[int]:
            from edihub import orchestration

            return orchestration.validate(file_ids)

        @task
        def load(file_ids: list[int]) -> list[int]:
            from edihub import orchestration

            return orchestration.load(file_ids)

        @task
        def archive(file_ids: list[int]) -> list[int]:
            from edihub import orchestration

            return orchestration.archive(file_ids)

        @task
        def acknowledge(file_ids: list[int]) -> list[dict[str, Any]]:
            from edihub import orchestration

            return orchestration.acknowledge(file_ids)

        @task_group
        def process_files(batch: list[dict[str, Any]]) -> Any:
            return acknowledge(archive(load(validate(fetch(batch)))))

        @task(outlets=[asset], trigger_rule="all_done")
        def report(listed: list[list[dict[str, Any]]], outcomes: Any) -> Any:
            from edihub import orchestration

            batches = orchestration.batch_outcomes(listed, outcomes)
            yield Metadata(asset, orchestration.report(feed, batches))

        batches = list_files()
        migrate_database() >> finish_interrupted() >> batches
        report(batches, process_files.expand(batch=batches))
    return dag
