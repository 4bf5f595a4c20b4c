"""Policy for DAG files: they import, they are thin, and they say who owns them."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edihub.config import Settings
from edihub.contracts.engine import DataContract
from edihub.feeds import FEEDS
from edihub.formats.contract import feed_formats

DAGS = Path(__file__).resolve().parents[1] / "dags"

pytestmark = pytest.mark.airflow


def test_every_dag_file_imports(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert {f"collect_{feed}" for feed in FEEDS} <= set(dagbag.dags)


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_every_feed_has_its_contracts(feed: str) -> None:
    settings = Settings.from_env()
    for fmt in feed_formats(settings.formats_dir, feed):
        contract = DataContract.load(fmt.contract_dir(settings.contracts_dir))
        tables = {fmt.record.table, "file"} | (
            {fmt.record.children.table} if fmt.record.children else set()
        )
        assert tables == set(contract.suites), fmt.label


def test_dags_have_owner_docs_tags_and_retries(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and "Owner" in dag.doc_md, dag_id
        assert dag.tags, dag_id
        for task in dag.tasks:
            assert task.owner == "integration", (dag_id, task.task_id)
            assert task.retries >= 1, (dag_id, task.task_id)


def test_collect_fse_reads_like_its_flow(dagbag: Any) -> None:
    dag = dagbag.dags["collect_fse"]
    chain = ["fetch", "validate", "load", "archive", "acknowledge"]
    for upstream, downstream in itertools.pairwise(chain):
        task = dag.get_task(f"process_files.{upstream}")
        assert f"process_files.{downstream}" in task.downstream_task_ids
    assert dag.max_active_runs == 1


def test_dag_files_import_nothing_heavy_at_parse_time() -> None:
    """The DAG processor re-parses every 30 s: GX, pandas, pyarrow stay inside the tasks."""
    code = (
        "import sys, runpy\n"
        f"for f in {sorted(str(p) for p in DAGS.glob('*.py'))!r}: runpy.run_path(f)\n"
        "heavy = [m for m in ('great_expectations', 'pandas', 'pyarrow', 'edihub.collect')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
