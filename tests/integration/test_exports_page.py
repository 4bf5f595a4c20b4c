"""The insurer exports page, served by Airflow's own API server: refused without a login,
each insurer's days as the export code left them, and a rerun of one insurer and one day that
only a user allowed to trigger export_insurers can ask for, and only from the page itself."""

from __future__ import annotations

import datetime as dt
import runpy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from fastapi.testclient import TestClient

from edihub.exports import export_status
from edihub.sftp.layout import statements_dir
from edihub.statements import monaco_today
from edihub.ui.common import form_token
from edihub.ui.exports_app import RERUN_FORM
from edihub.ui.exports_app import app as exports_app
from tests.fixtures.exports import Exports, day_of_care

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "edihub_plugin.py"
PAGE = "/edihub-exports/exports"
JSON, RERUN = f"{PAGE}.json", f"{PAGE}/rerun"
OURS = {"origin": "http://testserver"}  # what a browser sends from our own page


@pytest.fixture(scope="module")
def api_server(airflow_db: None, dagbag: Any) -> Any:
    """Airflow's API server (plugins from plugins/), with export_insurers deployed from dags/."""
    from airflow.api_fastapi.app import create_app
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db

    assert "export_insurers" in dagbag.dags, f"dags/ has no export_insurers: {dagbag.import_errors}"
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(dagbag, "dags-folder", None)
    return create_app(apps="core")


@pytest.fixture
def login(api_server: Any) -> Callable[[str, str], TestClient]:
    """A browser logged into Airflow as ``name`` with a simple-auth-manager ``role``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def as_user(name: str, role: str) -> TestClient:
        client = TestClient(api_server)
        user = SimpleAuthManagerUser(username=name, role=role)
        client.cookies.set("_token", get_auth_manager().generate_jwt(user))  # the UI's cookie
        return client

    return as_user


@pytest.fixture
def yesterday(exports: Exports, monkeypatch: pytest.MonkeyPatch) -> dt.date:
    """Yesterday's files, due this morning: INS01's upload failed (its folder is a file on the
    server), INS02 and INS03 published, INS04 paused."""
    monkeypatch.setenv("EDIHUB_DATABASE_URL", exports.dsn)
    day = monaco_today() - dt.timedelta(days=1)
    day_of_care(exports, day)
    folder = exports.server.local(statements_dir("ins01"))
    shutil.rmtree(folder)
    folder.write_bytes(b"")
    with pytest.raises(OSError):
        exports.publish("INS01", day)
    exports.publish("INS02", day)
    exports.publish("INS03", day)
    return day


def _cells(page: str) -> dict[tuple[str, str], Any]:
    doc = lxml.html.fromstring(page)
    return {(td.get("data-insurer"), td.get("data-day")): td for td in doc.xpath("//td[@data-day]")}


def _text(element: Any) -> str:
    return " ".join(element.text_content().split())


def _runs() -> list[Any]:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "export_insurers").all()
        session.expunge_all()
        return runs


def test_the_plugin_mounts_the_page_beside_the_files_pages() -> None:
    plugin = runpy.run_path(str(PLUGIN))["EdiHubPlugin"]
    mounted = {m["url_prefix"]: m["app"] for m in plugin.fastapi_apps}
    assert mounted["/edihub-exports"] is exports_app
    [view] = [v for v in plugin.external_views if v["name"] == "Insurer exports"]
    assert view["href"] == PAGE.lstrip("/")  # relative: works behind a base_url


@pytest.mark.parametrize(("method", "path"), [("GET", PAGE), ("GET", JSON), ("POST", RERUN)])
def test_anonymous_requests_are_refused(api_server: Any, method: str, path: str) -> None:
    data = {"insurer_id": "INS01", "day": "2026-01-01", "token": "x"} if method == "POST" else None
    assert TestClient(api_server).request(method, path, data=data).status_code == 401


def test_the_engineer_sees_each_insurers_days_and_the_json_agrees(
    login: Callable[[str, str], TestClient], exports: Exports, yesterday: dt.date
) -> None:
    engineer = login("engineer", "user")
    page = engineer.get(PAGE)
    assert page.status_code == 200
    cells = _cells(page.text)
    day = yesterday.isoformat()
    assert {iid: td.get("data-status") for (iid, d), td in cells.items() if d == day} == {
        "INS01": "failed", "INS02": "published", "INS03": "published", "INS04": "paused",
    }  # fmt: skip
    # 123456's statement (with their beneficiary's care: 6 lines) for INS01, 654321's for INS02.
    assert _text(cells[("INS02", day)]).startswith("published 1 statement · 4 rows #000001 · sent ")
    assert "0 statements · 0 rows #000001 · sent" in _text(cells[("INS03", day)])
    failed = cells[("INS01", day)]
    assert "NotADirectoryError" in failed.get("title")  # the error, on hover and in a detail
    assert "NotADirectoryError" in _text(failed.xpath(".//details")[0])
    assert "due 06:00" in _text(failed)  # Monaco time: 05:00 or 04:00 UTC
    # Reruns are offered where a run can publish; not for the paused insurer.
    assert failed.xpath(".//form//button") and cells[("INS02", day)].xpath(".//form")
    assert not any(td.xpath(".//form") for (iid, _), td in cells.items() if iid == "INS04")
    # Nor for a late day whose statements were never issued: publish would refuse it.
    unissued = cells[("INS02", (yesterday - dt.timedelta(days=2)).isoformat())]
    assert unissued.get("data-status") == "late" and not unissued.xpath(".//form")
    assert "statements not issued" in _text(unissued)
    summary = _text(lxml.html.fromstring(page.text).xpath("//p[@class='summary']")[0])
    assert "2 published 0 late 1 failed 1 paused" in summary

    monitoring = engineer.get(JSON).json()
    assert monitoring["due_today"] | {"day": day} == {
        "day": day, "published": 2, "failed": 1, "late": 0, "due": 0, "waiting": 0,
        "paused": 1, "no convention": 0,
    }  # fmt: skip
    shown = {(iid, d): td.get("data-status") for (iid, d), td in cells.items()}
    assert {(s["insurer_id"], s["day"]): s["status"] for s in monitoring["statuses"]} == shown
    now = dt.datetime.now(dt.UTC)
    assert [(s["insurer_id"], s["day"], s["status"], s["statements"], s["rows"], s["sequence"])
            for s in monitoring["statuses"]] == [
        (s.insurer_id, s.day.isoformat(), s.status, s.statements, s.rows, s.sequence)
        for s in export_status(exports.dsn, now)
    ]  # fmt: skip
    assert len(shown) == 4 * 7

    only_failed = _cells(engineer.get(PAGE, params={"status": "failed"}).text)
    assert {iid for iid, _ in only_failed} == {"INS01"}
    assert [s["insurer_id"] for s in engineer.get(JSON, params={"status": "failed"}).json()[
        "statuses"]] == ["INS01"]  # fmt: skip


def test_a_rerun_queues_export_insurers_for_that_insurer_and_day_as_the_engineer(
    login: Callable[[str, str], TestClient], yesterday: dt.date
) -> None:
    engineer = login("engineer", "user")
    form = _cells(engineer.get(PAGE).text)[("INS01", yesterday.isoformat())].xpath(".//form")[0]
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}
    assert (form.get("method"), form.get("action")) == ("post", "exports/rerun")
    before = {r.run_id for r in _runs()}

    done = engineer.post(RERUN, data=fields, headers=OURS)
    assert done.status_code == 200, done.text
    [run] = [r for r in _runs() if r.run_id not in before]
    assert run.run_id in done.text and "open the run in Airflow" in done.text
    assert run.conf == {"insurer_id": "INS01", "day": yesterday.isoformat()}
    assert (run.run_type, run.triggered_by.value, run.triggering_user_name, run.state) == (
        "manual", "ui", "engineer", "queued")  # fmt: skip

    from airflow.models import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        [logged] = session.query(Log).filter(Log.run_id == run.run_id).all()
        assert (logged.event, logged.owner, logged.dag_id) == (
            "trigger_dag_run", "engineer", "export_insurers")  # fmt: skip


def test_reruns_are_refused_to_viewers_forged_forms_and_days_a_run_cannot_publish(
    login: Callable[[str, str], TestClient], yesterday: dt.date
) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    day = yesterday.isoformat()
    unissued = (yesterday - dt.timedelta(days=2)).isoformat()
    viewer = login("auditor", "viewer")
    page = viewer.get(PAGE)
    assert page.status_code == 200 and "<form" not in page.text  # sees, cannot rerun
    # Even with the token the page would give them: Airflow's own check of the trigger refuses.
    their_token = form_token(SimpleAuthManagerUser(username="auditor", role="viewer"), RERUN_FORM)
    forced = viewer.post(RERUN, data={"insurer_id": "INS01", "day": day, "token": their_token},
                         headers=OURS)  # fmt: skip
    assert forced.status_code == 403 and "Insurer exports page" not in forced.text

    engineer = login("engineer", "user")
    form = _cells(engineer.get(PAGE).text)[("INS01", day)].xpath(".//form")[0]
    token = form.xpath(".//input[@name='token']")[0].get("value")
    before = len(_runs())
    refused = {
        "no token": ({"insurer_id": "INS01", "day": day}, OURS),
        "another user's token": ({"insurer_id": "INS01", "day": day, "token": "0" * 64}, OURS),
        "another site's page": (
            {"insurer_id": "INS01", "day": day, "token": token}, {"origin": "https://evil.example"}),
        "paused insurer": ({"insurer_id": "INS04", "day": day, "token": token}, OURS),
        "statements not issued": ({"insurer_id": "INS02", "day": unissued, "token": token}, OURS),
        "unknown insurer": ({"insurer_id": "INS99", "day": day, "token": token}, OURS),
        "outside the window": ({"insurer_id": "INS01", "day": "2020-01-01", "token": token}, OURS),
        "not a day": ({"insurer_id": "INS01", "day": "yesterday", "token": token}, OURS),
    }  # fmt: skip
    codes = {why: engineer.post(RERUN, data=data, headers=headers).status_code
             for why, (data, headers) in refused.items()}  # fmt: skip
    assert codes == {
        "no token": 403, "another user's token": 403, "another site's page": 403,
        "paused insurer": 409, "statements not issued": 409, "unknown insurer": 404,
        "outside the window": 404, "not a day": 400,
    }  # fmt: skip
    assert engineer.get(RERUN).status_code == 405  # POST only
    assert len(_runs()) == before
    # The same form, from our page, goes through: the refusals above were the forgeries'.
    assert engineer.post(RERUN, data={"insurer_id": "INS01", "day": day, "token": token},
                         headers=OURS).status_code == 200  # fmt: skip
