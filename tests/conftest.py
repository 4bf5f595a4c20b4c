"""Test-wide set-up: a scratch state folder, and the real-server fixtures as plugins."""

from __future__ import annotations

import os
import tempfile

# Before anything imports airflow or edihub.config: keep every run's state out of the repo.
_STATE = tempfile.mkdtemp(prefix="edihub-test-state-")
os.environ.setdefault("EDIHUB_STATE_DIR", _STATE)
os.environ.setdefault("XDG_RUNTIME_DIR", _STATE)
# Airflow in-process (DagBag, dag.test): its own metadata DB in the scratch folder.
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["AIRFLOW_HOME"] = os.path.join(_STATE, "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_REPO, "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = os.path.join(_REPO, "plugins")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
    f"sqlite:///{os.path.join(_STATE, 'airflow', 'airflow.db')}"
)
os.makedirs(os.environ["AIRFLOW_HOME"], exist_ok=True)

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.sftp",
    "tests.fixtures.airflow",
    "tests.fixtures.funds",
    "tests.fixtures.exports",
    "tests.fixtures.kpi",
    "tests.fixtures.notify",
]
