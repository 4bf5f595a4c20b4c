"""The inbound-files pages inside the Airflow UI: refused without a login, useful with one."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edihub.ui.files_app import app
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.hub import make_hub
from tests.fixtures.registry import seed_registry

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "edihub_plugin.py"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def logged_in(airflow_db: None) -> Iterator[TestClient]:
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    create_auth_manager().init()
    app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(
        username="engineer", role="viewer"
    )
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        app.dependency_overrides.clear()


def test_the_plugin_mounts_the_pages_in_the_ui() -> None:
    plugin = runpy.run_path(str(PLUGIN))["EdiHubPlugin"]
    mounted = {m["url_prefix"]: m["app"] for m in plugin.fastapi_apps}
    assert mounted["/edihub"] is app
    [view] = [v for v in plugin.external_views if v["name"] == "Inbound files"]
    assert not view["href"].startswith("/")


@pytest.mark.parametrize("path", ["/files", "/files/1", "/api/files/1"])
def test_anonymous_requests_are_refused(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401


def test_an_engineer_sees_each_file_its_rules_and_errors(
    logged_in: TestClient,
    embedded_sftp: Any,
    dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDIHUB_DATABASE_URL", dsn)
    seed_registry(dsn, tmp_path)
    hub = make_hub(embedded_sftp, PRACTITIONER, dsn, tmp_path / "state", "fse")
    hub.send(fse_file(tmp_path / "F<1>.xml", [sheet(1), sheet(2, registration_number="9999")]))
    [file_id] = hub.collect()

    listing = logged_in.get("/files")
    assert listing.status_code == 200
    assert "loaded_with_errors" in listing.text
    assert "F&lt;1&gt;.xml" in listing.text  # partner-supplied text is escaped

    detail = logged_in.get(f"/api/files/{file_id}").json()
    assert detail["file"]["state"] == "loaded_with_errors"
    rules = {(r["rule"], r["failed"]) for r in detail["results"]}
    assert ("FSE-R07", 1) in rules and ("FSE-R04", 0) in rules
    # an insured unknown to the registry has no valid card either
    assert [(e["record_no"], e["rule"]) for e in detail["errors"]] == [
        (2, "FSE-R07"),
        (2, "FSE-R10"),
    ]
    page = logged_in.get(f"/files/{file_id}")
    assert page.status_code == 200 and "FSE-R07" in page.text
    assert logged_in.get("/files/999999").status_code == 404
