"""export_insurers: each complementary insurer's daily file, on its own schedule.

One DAG mapped over the insurers rather than one DAG per insurer: the schedules, formats and
pauses live in the registry (edi.registry_insurer), which a DAG file must not query at parse
time; every 15 minutes this DAG asks which insurers' files are due (Monaco time) and maps one
task per insurer, named by its id, so one insurer's failure (a full disk, a broken folder)
fails only its own task and retries it, never the other 51.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, get_current_context, task

from edihub.dag_factory import DEFAULT_ARGS

with DAG(
    dag_id="export_insurers",
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="Europe/Monaco"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["exports"],
    params={"insurer_id": "", "day": ""},
    doc_md="""
### export_insurers

1. **due_exports**: the insurers whose file for a day is due (their `export_time` on the
   next day, Monaco time) and not yet published, up to 7 days back; or, when the run's conf
   is `{"insurer_id": "INS01", "day": "2026-11-30"}`, that insurer and day only (a rerun
   gives the same bytes; the "Insurer exports" page triggers it); `{"day": ...}` alone: every
   insurer's file of that day, now.
2. per insurer, **export_insurer**: plan, render, publish the file and its manifest into the
   insurer's `/outbound/statements/`, day by day.

Owner: integration engineering. Runbook: docs/operations.md#exports.
""",
):

    @task
    def due_exports(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from edihub import orchestration

        return orchestration.due_exports(params or {})

    @task(map_index_template="{{ insurer_id }}")
    def export_insurer(insurer_id: str, days: list[str]) -> list[dict[str, Any]]:
        from edihub import orchestration

        get_current_context()["insurer_id"] = insurer_id  # type: ignore[typeddict-unknown-key]
        return orchestration.export_insurer(insurer_id, days)

    export_insurer.expand_kwargs(due_exports())
