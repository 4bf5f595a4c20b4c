"""Test-wide set-up: a scratch state folder, and the real-server fixtures as plugins."""

from __future__ import annotations

import os
import tempfile

# Before anything imports airflow or edihub.config: keep every run's state out of the repo.
_STATE = tempfile.mkdtemp(prefix="edihub-test-state-")
os.environ.setdefault("EDIHUB_STATE_DIR", _STATE)
os.environ.setdefault("XDG_RUNTIME_DIR", _STATE)

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.sftp"]
