"""The inbound-files pages inside the Airflow UI: refused without a login, useful with one;
a rejected file reprocessed by an operator, on the real PostgreSQL and SFTP server."""

from __future__ import annotations

import runpy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from fastapi.testclient import TestClient

from edihub import audit
from edihub.load.db import connect
from edihub.ui.common import form_token
from edihub.ui.files_app import FORM_PURPOSE, app
from tests.fixtures.airflow import airflow_connections
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.hub import Hub, make_hub
from tests.fixtures.registry import NEWCOMER, learn_newcomer, seed_registry

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "edihub_plugin.py"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def login(airflow_db: None) -> Iterator[Callable[[str, str], TestClient]]:
    """The page as Airflow's user ``name`` with a simple-auth-manager ``role`` sees it; the
    real auth manager decides what that role may do."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    create_auth_manager().init()

    def as_user(name: str, role: str) -> TestClient:
        user = SimpleAuthManagerUser(username=name, role=role)
        app.dependency_overrides[get_user] = lambda: user
        return TestClient(app)

    try:
        yield as_user
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def logged_in(login: Callable[[str, str], TestClient]) -> TestClient:
    return login("engineer", "viewer")


@pytest.fixture
def rejected(
    embedded_sftp: Any, dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Hub, int]:
    """A file rejected whole (its practitioner unknown to the registry), and the API server's
    settings: the hub database, its state folder, the ``edi_sftp`` connection."""
    for name, value in airflow_connections(dsn, embedded_sftp).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EDIHUB_DATABASE_URL", dsn)
    seed_registry(dsn, tmp_path)
    hub = make_hub(embedded_sftp, NEWCOMER, dsn, tmp_path / "state", "fse")
    monkeypatch.setenv("EDIHUB_STATE_DIR", str(hub.settings.state_dir))
    sheets = [sheet(i, practitioner_id=NEWCOMER) for i in (1, 2)]
    hub.send(fse_file(tmp_path / "F1.xml", sheets, NEWCOMER))
    [file_id] = hub.collect()
    assert hub.files()[0][1] == "rejected"
    return hub, file_id


def _form(page: str) -> dict[str, Any] | None:
    """The file view's action form: its target, token and button, if it has one."""
    forms = lxml.html.fromstring(page).xpath("//form[@method='post']")
    if not forms:
        return None
    [form] = forms
    return {"action": form.get("action"), "token": form.xpath(".//input[@name='token']/@value")[0],
            "button": form.xpath("string(.//button)")}  # fmt: skip


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


def test_a_viewer_sees_no_button_and_may_not_reprocess(
    login: Callable[[str, str], TestClient], rejected: tuple[Hub, int]
) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    hub, file_id = rejected
    viewer = login("auditor", "viewer")
    page = viewer.get(f"/files/{file_id}")
    assert page.status_code == 200 and "rejected" in page.text
    assert _form(page.text) is None
    # Not even with the token the page would give them, from our own page.
    token = form_token(SimpleAuthManagerUser(username="auditor", role="viewer"), FORM_PURPOSE)
    for action in ("reprocess", "release"):
        refused = viewer.post(f"/files/{file_id}/{action}", data={"token": token},
                              headers={"origin": "http://testserver"})  # fmt: skip
        assert refused.status_code == 403, refused.text
    assert [f[1] for f in hub.files()] == ["rejected"]


def test_an_operator_reprocesses_a_rejected_file_after_the_registry_learns_its_practitioner(
    login: Callable[[str, str], TestClient], rejected: tuple[Hub, int]
) -> None:
    hub, file_id = rejected
    op = login("ops.jdoe", "op")
    form = _form(op.get(f"/files/{file_id}").text)
    assert form is not None and form["button"] == "Reprocess"
    target = f"/files/{form['action']}"
    assert target == f"/files/{file_id}/reprocess"
    forged = op.post(target, data={"token": "0" * 64}, headers={"origin": "http://testserver"})
    assert forged.status_code == 403
    learn_newcomer(hub.dsn, hub.settings)

    done = op.post(target, data={"token": form["token"], "reason": "P10002 registered"},
                   headers={"origin": "http://testserver"})  # fmt: skip
    assert done.status_code == 200, done.text
    [(attempt_id, state)] = hub.query(
        "SELECT id, state FROM edi.inbound_file WHERE original_file_id = %s", file_id
    )
    assert state == "loaded"
    outcome = lxml.html.fromstring(done.text)
    assert outcome.xpath("string(//*[@id='outcome']//b)") == "loaded"
    # Relative to the action's URL (files/ID/reprocess): the attempt's own view.
    assert outcome.xpath("//a[@id='attempt']/@href") == [f"../{attempt_id}"]
    with connect(hub.dsn) as conn, conn.cursor() as cur:
        [event] = audit.events(cur, action="file.reprocess")
    assert (event["actor"], event["subject"], event["detail"]) == (
        "ops.jdoe",
        str(file_id),
        {"new_file_id": attempt_id, "reason": "P10002 registered"},
    )
    # The original's view links the attempt and offers no second try, which is refused.
    again = op.get(f"/files/{file_id}")
    assert _form(again.text) is None and f'href="{attempt_id}"' in again.text
    refused = op.post(target, data={"token": form["token"]})
    assert refused.status_code == 409 and f"fse-{attempt_id}, which is loaded" in refused.text
