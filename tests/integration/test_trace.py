"""What happened to file X: ``edihub trace`` and the File journey page, on a file received over
SFTP, loaded with errors, acknowledged, priced onto statements and exported to an insurer."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from fastapi.testclient import TestClient

from edihub import audit, cli
from edihub.statements import MONACO, build_statements, monaco_today
from edihub.ui.files_app import app as files_app
from edihub.ui.trace_app import app
from tests.fixtures.exports import Exports
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.hub import make_hub

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "edihub_plugin.py"


def execute(dsn: str, statement: str, *args: Any) -> None:
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn, conn.cursor() as cur:
        cur.execute(statement, args)


def trace_json(capsys: pytest.CaptureFixture[str], query: str) -> list[dict[str, Any]]:
    capsys.readouterr()  # what came before (the auth manager prints its password)
    assert cli.main(["trace", query, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def logged_in(airflow_db: None) -> Iterator[tuple[TestClient, TestClient]]:
    """The journey page and the Inbound files page, as a viewer."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    create_auth_manager().init()
    for each in (app, files_app):
        each.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(
            username="engineer", role="viewer"
        )
    try:
        with TestClient(app) as journey, TestClient(files_app) as files:
            yield journey, files
    finally:
        app.dependency_overrides.clear()
        files_app.dependency_overrides.clear()


@pytest.mark.parametrize("sftp_server", ["embedded"], indirect=True)
def test_a_files_journey_from_its_name_to_the_insurers_export(
    exports: Exports,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logged_in: tuple[TestClient, TestClient],
) -> None:
    dsn = exports.dsn
    monkeypatch.setenv("EDIHUB_DATABASE_URL", dsn)
    hub = make_hub(exports.server, PRACTITIONER, dsn, tmp_path / "hub", "fse")
    for folder in ("a", "b"):  # two sendings of one name
        (tmp_path / folder).mkdir()
    sheets = [sheet(i) for i in range(1, 6)] + [sheet(6, registration_number="9999")]
    hub.send(fse_file(tmp_path / "a" / "F<1>.xml", sheets))
    [first] = hub.collect()
    today = monaco_today()
    build_statements(dsn, now=dt.datetime.combine(today, dt.time(12), MONACO), close_today=True)
    published = exports.publish("INS01", today)
    # The same name again, refused this time (an unknown practitioner): a second attempt.
    hub.send(fse_file(tmp_path / "b" / "F<1>.xml", [sheet(1, practitioner_id="P99999")], batch="2"))
    [second] = hub.collect()
    [(ack_path, sha256)] = hub.query(
        "SELECT ack_path, sha256 FROM edi.inbound_file WHERE id = %s", first
    )
    ack_name = ack_path.rsplit("/", 1)[1]
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn, conn.cursor() as cur:
        # The shapes the download recorder and the reprocess command write.
        audit.record(cur, hub.partner.username, "ack.download", f"/outbound/acks/{ack_name}",
                     {"sender": PRACTITIONER, "file_name": ack_name, "bytes": 900})  # fmt: skip
        audit.record(cur, "jdupont", "file.reprocess", str(first), {"new_file_id": second})
    execute(dsn, "ALTER TABLE edi.inbound_file ADD COLUMN IF NOT EXISTS original_file_id bigint")
    execute(dsn, "UPDATE edi.inbound_file SET original_file_id = %s WHERE id = %s", first, second)

    newest, oldest = trace_json(capsys, "F<1>.xml")
    assert (newest["file"]["id"], oldest["file"]["id"]) == (second, first)
    assert newest["file"]["state"] == "rejected" and newest["reprocess_of"] == first
    assert newest["tables"] == {} and newest["exports"] == []
    f = oldest["file"]
    assert (f["state"], f["sender"], f["sha256"], f["records_loaded"]) == (
        "loaded_with_errors", PRACTITIONER, sha256, 5)  # fmt: skip
    assert f["size_bytes"] == (tmp_path / "a" / "F<1>.xml").stat().st_size
    assert [(e["record_no"], e["rule"]) for e in oldest["errors"]][:1] == [(6, "FSE-R07")]
    assert ("FSE-R07", 1) in {(r["rule"], r["failed"]) for r in oldest["rules"]}
    assert oldest["tables"] == {"edi.fse_act": 10, "edi.fse_care_sheet": 5}
    assert f["archive_path"].startswith("/archive/") and f["ack_path"] == ack_path
    assert [d["actor"] for d in oldest["ack_downloads"]] == [hub.partner.username]
    assert oldest["claim_lines"] == 10
    # 123456 (INS01's member: sheets 1, 3, 4) and 654321 (INS02's: sheets 2, 5), one statement
    # each; INS01's file carries 123456's six acts.
    assert {(s["lines"], s["insurer_id"]) for s in oldest["statements"]} == {
        (6, "INS01"), (4, "INS02")}  # fmt: skip
    [export] = oldest["exports"]
    assert (export["insurer_id"], export["sequence"], export["lines"]) == ("INS01", 1, 6)
    assert export["file_name"] == published.path.rsplit("/", 1)[1]
    assert [a["action"] for a in oldest["audit"]] == ["file.reprocess"]
    assert oldest["reprocessed_as"] == [second]
    # By sha256 and by id: that file alone.
    assert [j["file"]["id"] for j in trace_json(capsys, sha256.upper())] == [first]
    assert [j["file"]["id"] for j in trace_json(capsys, str(second))] == [second]

    capsys.readouterr()
    assert cli.main(["trace", "F<1>.xml"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 files match 'F<1>.xml', newest first")
    for line in (f"fse-{first}  F<1>.xml  (loaded_with_errors)", "FSE-R07",
                 "edi.fse_act 10 rows, edi.fse_care_sheet 5 rows", f"acknowledged   {ack_name}",
                 f"downloaded by {hub.partner.username}",
                 f"INS01 #1 {export['file_name']}", "file.reprocess", "by jdupont",
                 f"reprocessed as #{second}", f"reprocess of #{first}"):  # fmt: skip
        assert line in text, line
    assert text.index(f"fse-{second} ") < text.index(f"fse-{first} ")

    journey_page, files_page = logged_in
    page = journey_page.get("/trace", params={"q": "F<1>.xml"})
    assert page.status_code == 200
    assert "F&lt;1&gt;.xml" in page.text and "F<1>.xml" not in page.text  # escaped
    assert export["file_name"] in page.text and f"reprocessed as #{second}" in page.text
    assert journey_page.get(f"/api/trace/{first}").json()["exports"][0]["lines"] == 6
    assert journey_page.get(f"/trace/{second}").text.count("<h2>") == 1
    assert journey_page.get("/trace", params={"q": "nothing.xml"}).status_code == 404
    assert journey_page.get("/api/trace/999999").status_code == 404
    # Reached from the Inbound files page's view of the file.
    assert f'href="../../edihub-trace/trace/{first}"' in files_page.get(f"/files/{first}").text

    # Before migration 0015 (no original_file_id column) the journey is there, unlinked.
    execute(dsn, "ALTER TABLE edi.inbound_file DROP COLUMN original_file_id CASCADE")
    [alone] = trace_json(capsys, str(first))
    assert (alone["reprocess_of"], alone["reprocessed_as"]) == (None, [])
    assert cli.main(["trace", "nothing.xml"]) == 1


@pytest.mark.parametrize("path", ["/trace?q=x", "/trace/1", "/api/trace/1"])
def test_anonymous_requests_are_refused(path: str) -> None:
    with TestClient(app) as client:
        assert client.get(path).status_code == 401


def test_the_plugin_mounts_the_page_in_the_ui() -> None:
    plugin = runpy.run_path(str(PLUGIN))["EdiHubPlugin"]
    assert {m["url_prefix"]: m["app"] for m in plugin.fastapi_apps}["/edihub-trace"] is app
    [view] = [v for v in plugin.external_views if v["name"] == "File journey"]
    assert view["href"] == "edihub-trace/trace"
