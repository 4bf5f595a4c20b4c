"""Policy over every DAG in dags/ (whatever DAGs there are: the DagBag's, not a list): they
import, have an owner, carry only known tags, link their runbook, route failures to the
alerts, and look up no Variable or Connection when parsed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied
from airflow.secrets import BaseSecretsBackend

from edihub.alerts.tasks import task_failed
from edihub.dag_factory import TAGS

DAGS = Path(__file__).resolve().parents[1] / "dags"
REPO = DAGS.parent
# The sections of docs/operations.md a DAG's doc may send the engineer to: those it defines.
RUNBOOK_ANCHORS = set(
    re.findall(r'<a id="([a-z0-9-]+)"></a>', (REPO / "docs" / "operations.md").read_text())
)
RUNBOOK = re.compile(r"Runbook: docs/operations\.md#([a-z0-9-]+)\.?$", re.M)

pytestmark = pytest.mark.airflow


def violations(dag: Any) -> list[str]:
    """What a DAG breaks of the policy (nothing: an empty list)."""
    found = []
    if not dag.tags or not set(dag.tags) <= TAGS:
        found.append(f"tags {sorted(dag.tags)} not all in dag_factory.TAGS")
    links = RUNBOOK.findall(dag.doc_md or "")
    if len(links) != 1 or links[0] not in RUNBOOK_ANCHORS:
        found.append(f"runbook links {links}: want one of {sorted(RUNBOOK_ANCHORS)}")
    for task in dag.tasks:
        if task.owner in ("", "airflow"):  # "airflow": Airflow's default, nobody's
            found.append(f"{task.task_id}: no owner")
        callbacks = task.on_failure_callback
        # A mapped task keeps the callable as given, an operator a list.
        if task_failed not in (callbacks if isinstance(callbacks, list) else [callbacks]):
            found.append(f"{task.task_id}: failure not routed to the alerts")
    return found


def test_every_dag_file_imports(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.dags


def test_every_dag_meets_the_policy(dagbag: Any) -> None:
    assert {dag_id: violations(dag) for dag_id, dag in dagbag.dags.items()} == {
        dag_id: [] for dag_id in dagbag.dags
    }


def test_the_policy_catches_a_dag_that_breaks_it(tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "careless.py").write_text(
        "from airflow.sdk import DAG, task\n"
        "from edihub.dag_factory import DEFAULT_ARGS\n"
        "with DAG('careless', tags=['feed:fse', 'misc'],\n"
        "         doc_md='Runbook: docs/operations.md#nowhere.'):\n"
        "    @task(owner='airflow', on_failure_callback=[])\n"
        "    def orphan() -> None: ...\n"
        "    @task(owner='integration', on_failure_callback=DEFAULT_ARGS['on_failure_callback'])\n"
        "    def fine() -> None: ...\n"
        "    orphan() >> fine()\n"
    )
    [dag] = DagBag(dag_folder=tmp_path / "careless.py").dags.values()
    assert violations(dag) == [
        "tags ['feed:fse', 'misc'] not all in dag_factory.TAGS",
        f"runbook links ['nowhere']: want one of {sorted(RUNBOOK_ANCHORS)}",
        "orphan: no owner",
        "orphan: failure not routed to the alerts",
    ]


# ---------------------------------------------------------------- no lookups at parse time

LOOKUPS: list[str] = []


class LookupRecorder(BaseSecretsBackend):
    """The first secrets backend of a parse (AIRFLOW__SECRETS__BACKEND): records every
    Connection or Variable asked for, then refuses it (the refusal stops Airflow from
    asking the next backend; the record catches a DAG file that swallows the refusal)."""

    def get_conn_value(self, conn_id: str) -> str | None:
        LOOKUPS.append(f"connection {conn_id}")
        raise AirflowSecretsBackendAccessDenied(f"connection {conn_id} looked up at parse time")

    def get_variable(self, key: str) -> str | None:
        LOOKUPS.append(f"variable {key}")
        raise AirflowSecretsBackendAccessDenied(f"variable {key} looked up at parse time")


_PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from tests import test_dag_policy as policy
found = {}
for path in sys.argv[1:]:
    policy.LOOKUPS.clear()
    bag = DagBag(dag_folder=path)
    found[path] = {"dags": sorted(bag.dags), "lookups": list(policy.LOOKUPS)}
print(json.dumps(found))
"""


def parse_time_lookups(files: list[Path]) -> dict[str, dict[str, list[str]]]:
    """Each DAG file parsed by Airflow in a fresh process whose first secrets backend
    records and refuses every lookup."""
    env = {
        **os.environ,
        "AIRFLOW__SECRETS__BACKEND": f"{__name__}.LookupRecorder",
        "PYTHONPATH": f"{REPO}:{REPO / 'include'}",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, *map(str, files)],
        capture_output=True, text=True, check=True, cwd=REPO, env=env, timeout=120,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_no_dag_file_looks_up_a_variable_or_connection_when_parsed(tmp_path: Path) -> None:
    """Proved on two DAG files that do (one swallowing the refusal): the same parse must
    catch them and find nothing in dags/."""
    sneaky = {
        "variable_dag.py": "from airflow.sdk import DAG, Variable\n"
        "with DAG('uses_variable', tags=[Variable.get('team', default='x')]):\n    pass\n",
        "connection_dag.py": "from airflow.sdk import DAG, BaseHook\n"
        "try:\n    host = BaseHook.get_connection('edi_sftp').host\n"
        "except Exception:\n    host = 'fallback'\n"
        "with DAG('uses_connection', doc_md=host):\n    pass\n",
    }  # fmt: skip
    for name, text in sneaky.items():
        (tmp_path / name).write_text(text)
    real = sorted(DAGS.glob("*.py"))
    found = parse_time_lookups([*real, *(tmp_path / name for name in sneaky)])
    assert found[str(tmp_path / "variable_dag.py")]["lookups"] == ["variable team"]
    assert found[str(tmp_path / "connection_dag.py")] == {
        "dags": ["uses_connection"], "lookups": ["connection edi_sftp"],
    }  # fmt: skip
    assert {str(p): found[str(p)]["lookups"] for p in real} == {str(p): [] for p in real}
    assert all(found[str(p)]["dags"] for p in real)
