"""Alerts on the real PostgreSQL and the SMTP catcher: each check opens one alert per
condition, keeps it open (no second e-mail) while the condition holds, and closes it when it
clears; a task that fails for good under Airflow opens an alert its callback e-mails at once,
and its next success closes it; the Alerts page shows them behind Airflow's login."""

from __future__ import annotations

import datetime as dt
import json
import runpy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from fastapi.testclient import TestClient

from edihub.alerts import CHECKS, store
from edihub.alerts.checks import CHECKS as CHECK_FUNCTIONS
from edihub.alerts.mail import send_pending
from edihub.alerts.settings import AlertSettings
from edihub.alerts.tasks import task_failed
from edihub.audit import HUB_ACTOR, record
from edihub.clock import MONACO
from edihub.load.db import connect
from edihub.notify.catcher import MailCatcher
from edihub.ui.alerts_app import app as alerts_app
from tests.fixtures.airflow import airflow_connections

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "edihub_plugin.py"
TODAY = dt.date(2026, 11, 30)
SETTINGS = AlertSettings(recipients=("integration@example.mc", "oncall@example.mc"))
TEAM = "EDI hub <alerts@example.mc>"


def at(hour: int, minute: int = 0, day: dt.date = TODAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), MONACO)


def execute(dsn: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn, conn, conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall() if cur.description else []


def inbound(dsn: str, sender: str, received: dt.datetime, state: str = "loaded",
            feed: str = "fse") -> int:  # fmt: skip
    name = f"{sender}-{received:%Y%m%d%H%M%S%f}-{state}"
    [(file_id,)] = execute(
        dsn,
        "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path, remote_path_raw,"
        " size_bytes, state, received_at) VALUES (%s, %s, %s, %s, %s, 0, %s, %s) RETURNING id",
        feed, sender, name, f"/inbound/{feed}/{name}", name.encode(), state, received,
    )  # fmt: skip
    return int(file_id)


def published(dsn: str, insurer: str, day: dt.date, when: dt.datetime) -> str:
    name = f"CSM_{insurer}_{day:%Y%m%d}_000001.csv"
    execute(
        dsn,
        "INSERT INTO edi.export_file (insurer_id, export_day, sequence, format, sftp_account,"
        " file_name, row_count, total_billed, total_reimbursed, total_patient_share, state,"
        " published_at) VALUES (%s, %s, (SELECT count(*) + 1 FROM edi.export_file"
        " WHERE insurer_id = %s), 'csv', %s, %s, 0, 0, 0, 0, 'published', %s)",
        insurer, day, insurer, insurer.lower(), name, when,
    )  # fmt: skip
    return name


def downloaded(dsn: str, insurer: str, name: str) -> None:
    """As the download audit records it (edihub.sftp): actor the account, subject the path."""
    with connect(dsn) as conn, conn, conn.cursor() as cur:
        record(cur, insurer.lower(), "export.download", f"/outbound/statements/{name}",
               {"insurer_id": insurer, "file_name": name, "bytes": 1234})  # fmt: skip


def check(dsn: str, kind: str, now: dt.datetime, settings: AlertSettings = SETTINGS) -> Any:
    return store.apply(dsn, kind, CHECK_FUNCTIONS[kind](dsn, settings, now), now).as_dict()


def alerts(dsn: str) -> list[tuple[Any, ...]]:
    return execute(
        dsn, "SELECT kind, key, closed_at IS NULL, seen_count, close_reason FROM edi.alert"
        " ORDER BY id",
    )  # fmt: skip


def test_every_check_the_dag_runs_is_defined() -> None:
    assert set(CHECKS) == set(CHECK_FUNCTIONS)


def test_a_daily_sender_gone_quiet_is_alerted_once_and_cleared_by_its_file(dsn: str) -> None:
    for n in range(1, 29):
        day = TODAY - dt.timedelta(days=n)
        if n not in (3, 9, 17):  # 25 days of 28: a daily sender (>= 80 %)
            inbound(dsn, "P10001", at(8, day=day))
        if n <= 21:  # 21 of 28 (75 %): not daily, never alerted
            inbound(dsn, "P20002", at(8, day=day))
        inbound(dsn, "P30003", at(8, day=day))  # every day, and today too
        if n % 7:  # every day but Mondays (today): 24 of 28 days, not expected today
            inbound(dsn, "P40004", at(8, day=day))
    inbound(dsn, "P30003", at(7))
    assert check(dsn, "sender_silent", at(9, 59))["opened"] == []  # before the hour
    assert check(dsn, "sender_silent", at(10, 0))["opened"] == ["P10001"]
    assert check(dsn, "sender_silent", at(10, 15)) == {
        "opened": [], "refreshed": ["P10001"], "closed": [],
    }  # fmt: skip
    [(summary,)] = execute(dsn, "SELECT summary FROM edi.alert")
    assert "P10001 (fse) sent nothing today by 10:00; it sent on 25 of the last 28" in summary
    inbound(dsn, "P10001", at(11))
    assert check(dsn, "sender_silent", at(11, 15))["closed"] == ["P10001"]
    assert alerts(dsn) == [("sender_silent", "P10001", False, 2, "sent 1 file(s) on 2026-11-30")]
    # The opening and the closing are in the audit trail, as the hub's own work.
    assert execute(
        dsn, "SELECT actor, action, subject FROM edi.audit_event WHERE action LIKE 'alert.%%'"
        " ORDER BY id",
    ) == [(HUB_ACTOR, "alert.open", "sender_silent:P10001"),
          (HUB_ACTOR, "alert.close", "sender_silent:P10001")]  # fmt: skip


def test_a_feeds_rejection_jump_needs_its_volume(dsn: str) -> None:
    for n in range(1, 21):  # 20 past files of each feed, 1 rejected: 5 %
        day = TODAY - dt.timedelta(days=n)
        for feed in ("fse", "pharmacy"):
            inbound(dsn, f"S{n}", at(8, day=day), "rejected" if n == 1 else "loaded", feed)
    for i in range(10):  # fse today: 4 of 10 rejected or quarantined (40 %)
        state = ("rejected", "quarantined", "rejected", "rejected")[i] if i < 4 else "loaded"
        inbound(dsn, "P10001", at(8, i), state)
    for i in range(3):  # pharmacy today: 2 of 3 rejected, under the minimum volume
        inbound(dsn, "PH01", at(8, i), "rejected" if i else "loaded", "pharmacy")
    inbound(dsn, "P10001", at(8, 30), "duplicate")  # says nothing of the content
    assert check(dsn, "rejection_jump", at(9))["opened"] == ["fse"]
    [(summary, detail)] = execute(dsn, "SELECT summary, detail FROM edi.alert")
    assert summary == "fse: 4 of 10 files rejected today (40%), against 5% over the last 28 days"
    assert detail["today_total"] == 10
    # 30 more good files: 4 of 40 (10 %) is within 20 points of 5 %.
    for i in range(30):
        inbound(dsn, "P10001", at(9, i))
    assert check(dsn, "rejection_jump", at(10))["closed"] == ["fse"]


def test_an_insurer_that_does_not_pull_its_files(dsn: str) -> None:
    now = at(12)
    old = published(dsn, "INS01", TODAY - dt.timedelta(days=5), now - dt.timedelta(days=4))
    for insurer in ("INS02", "INS03"):
        name = published(dsn, insurer, TODAY - dt.timedelta(days=5), now - dt.timedelta(days=4))
        if insurer == "INS02":
            downloaded(dsn, insurer, name)
    published(dsn, "INS03", TODAY - dt.timedelta(days=1), now - dt.timedelta(hours=5))  # recent
    published(dsn, "INS04", TODAY - dt.timedelta(days=60), now - dt.timedelta(days=59))  # gone
    done = check(dsn, "insurer_not_pulling", now)
    assert done["opened"] == ["INS01", "INS03"]
    [(detail,)] = execute(dsn, "SELECT detail FROM edi.alert WHERE key = 'INS01'")
    assert [f["file_name"] for f in detail["files"]] == [old]
    downloaded(dsn, "INS01", old)
    assert check(dsn, "insurer_not_pulling", now + dt.timedelta(minutes=15)) == {
        "opened": [], "refreshed": ["INS03"], "closed": ["INS01"],
    }  # fmt: skip


def test_an_export_late_past_its_deadline(dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    registry_insurers(dsn, ("INS01", "active", "06:00"), ("INS02", "active", "09:30"),
                      ("INS03", "paused", "06:00"))  # fmt: skip
    # Statements issued from yesterday on: older days never had a file due.
    execute(dsn, "INSERT INTO edi.statement_day VALUES (%s, 0, 0)", yesterday)
    assert check(dsn, "export_late", at(6, 59))["opened"] == []  # within the grace
    assert check(dsn, "export_late", at(7, 0))["opened"] == [f"INS01/{yesterday}"]
    assert check(dsn, "export_late", at(10, 30)) == {
        "opened": [f"INS02/{yesterday}"], "refreshed": [f"INS01/{yesterday}"], "closed": [],
    }  # fmt: skip
    published(dsn, "INS01", yesterday, at(10, 40))
    assert check(dsn, "export_late", at(10, 45))["closed"] == [f"INS01/{yesterday}"]
    # The day after: the day before yesterday is still counted (its statements were issued).
    execute(dsn, "INSERT INTO edi.statement_day VALUES (%s, 0, 0)", TODAY)
    done = check(dsn, "export_late", at(7, 0, TODAY + dt.timedelta(days=1)))
    assert done["opened"] == [f"INS01/{TODAY}"]
    assert done["refreshed"] == [f"INS02/{yesterday}"]


def test_new_alerts_are_mailed_once_and_a_retry_goes_only_to_who_refused(
    dsn: str, catcher: MailCatcher
) -> None:
    smtp = catcher.smtp_settings(TEAM, timeout_seconds=5)
    for key in ("P10001", "P20002"):
        quiet(dsn, key, at(10))
    catcher.refuse("oncall@example.mc", code=451)
    failed = send_pending(dsn, smtp, SETTINGS, at(10))
    assert failed["emailed"] == [] and failed["error"].startswith("oncall@example.mc: ")
    assert "451" in failed["error"]
    quiet(dsn, "P30003", at(10, 5))  # opened between the refusal and the retry
    catcher.accept_all()
    sent = send_pending(dsn, smtp, SETTINGS, at(10, 15))
    assert sent["emailed"] == [f"sender_silent:P{n}" for n in ("10001", "20002", "30003")]
    assert sent["error"] is None
    assert send_pending(dsn, smtp, SETTINGS, at(10, 30))["emailed"] == []  # once
    # Each recipient got each alert once: the integration team the first two, then only the
    # new one; on-call, who refused, all three in the retry.
    got = [(m["Delivered-To"], m["Subject"]) for m in catcher.messages()]
    assert got == [
        ("integration@example.mc", "[EDI hub] Daily sender silent: P10001 (+1 more)"),
        ("integration@example.mc", "[EDI hub] Daily sender silent: P30003"),
        ("oncall@example.mc", "[EDI hub] Daily sender silent: P10001 (+2 more)"),
    ]  # fmt: skip
    assert "P20002 is quiet" in catcher.messages()[-1].get_content()
    assert execute(
        dsn, "SELECT key, email_attempts, email_error, emailed_at FROM edi.alert ORDER BY id"
    ) == [("P10001", 2, None, at(10, 15)), ("P20002", 2, None, at(10, 15)),
          ("P30003", 1, None, at(10, 15))]  # fmt: skip


def test_a_burst_of_failures_is_one_email_at_once_then_one_digest(
    dsn: str, catcher: MailCatcher
) -> None:
    """52 insurers' exports failing together, their callbacks mailing concurrently as Celery
    workers would: the first mailing goes at once, the others see it and defer; the alerts
    DAG's digest carries the rest; a failure after the quiet period goes at once again."""
    smtp = catcher.smtp_settings(TEAM, timeout_seconds=5)
    team = AlertSettings(recipients=("integration@example.mc",))
    five = dt.timedelta(minutes=team.mail_minutes)

    def fails(insurer: str, now: dt.datetime) -> dict[str, Any]:
        with connect(dsn) as conn, conn, conn.cursor() as cur:
            finding = store.Finding(f"exports.export_insurer[{insurer}]", f"{insurer} failed")
            store.raise_alert(cur, "task_failed", finding, now)
        return send_pending(dsn, smtp, team, now, quiet=five)

    insurers = [f"INS{n:02d}" for n in range(1, 53)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        burst = list(pool.map(fails, insurers, [at(6)] * len(insurers)))
    assert sum(not r["deferred"] for r in burst) == 1
    [first] = catcher.messages()
    mailed_first = sum(len(r["emailed"]) for r in burst)
    digest = send_pending(dsn, smtp, team, at(6, 15))  # the alerts DAG: never deferred
    assert len(digest["emailed"]) == 52 - mailed_first
    assert fails("INS53", at(6, 19))["deferred"]  # 4 minutes after the digest
    assert fails("INS54", at(6, 20))["emailed"] == [
        "task_failed:exports.export_insurer[INS53]", "task_failed:exports.export_insurer[INS54]",
    ]  # fmt: skip
    messages = catcher.messages()
    assert len(messages) == 3
    assert f"(+{51 - mailed_first} more)" in messages[1]["Subject"]
    assert first["Subject"].startswith("[EDI hub] Task failed: exports.export_insurer[INS")
    [(alerts_mailed, deliveries)] = execute(
        dsn, "SELECT count(*) FILTER (WHERE emailed_at IS NOT NULL),"
        " (SELECT count(*) FROM edi.alert_delivery) FROM edi.alert",
    )  # fmt: skip
    assert (alerts_mailed, deliveries) == (54, 54)


def quiet(dsn: str, sender: str, now: dt.datetime) -> None:
    with connect(dsn) as conn, conn, conn.cursor() as cur:
        store.raise_alert(cur, "sender_silent", store.Finding(sender, f"{sender} is quiet"), now)


def registry_insurers(dsn: str, *insurers: tuple[str, str, str]) -> None:
    """Insurers (id, status, export_time) as a registry snapshot leaves them."""
    file_id = inbound(dsn, "csm-core", at(1, day=TODAY - dt.timedelta(days=10)))
    for n, (insurer, status, time) in enumerate(insurers, start=1):
        execute(
            dsn,
            "INSERT INTO edi.registry_insurer (file_id, sender, record_no, insurer_id, name,"
            " convention_signed_on, status, sftp_account, export_format, export_time,"
            " unchanged_since) VALUES (%s, 'csm-core', %s, %s, 'M', '2014-01-01', %s, %s,"
            " 'csv', %s, '2026-01-01')",
            file_id, n, insurer, status, insurer.lower(), time,
        )  # fmt: skip


@pytest.mark.airflow
def test_under_airflow_a_task_failing_for_good_opens_an_alert_mailed_once_closed_by_success(
    dagbag: Any,
    dsn: str,
    embedded_sftp: Any,
    catcher: MailCatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The alerts DAG's export check run by Airflow (dag.test) with the hub's DEFAULT_ARGS:
    a registry row it cannot read fails it for good; its failure callback opens one alert and
    e-mails it, once however often it fails; fixed, the next run's success callback closes
    it."""
    for name, value in airflow_connections(dsn, embedded_sftp).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_EDI_SMTP", json.dumps({
        "conn_type": "smtp", "host": catcher.host, "port": catcher.port,
        "extra": {"from_email": TEAM, "disable_ssl": True, "disable_tls": True},
    }))  # fmt: skip
    monkeypatch.setenv("EDIHUB_ALERT_EMAILS", "integration@example.mc")
    registry_insurers(dsn, ("INS01", "paused", "6h"))  # not HH:MM; paused: never late
    dag = dagbag.dags["alerts"].partial_subset("check_export_late", include_upstream=False)
    [check_task] = dag.tasks
    monkeypatch.setattr(check_task, "retries", 0)  # fail now, not after the backoff

    failed = dag.test()
    assert failed.state == "failed"
    # The same failure again (the callback as the next failed run calls it): no new mail.
    [ti] = failed.get_task_instances()
    task_failed({"ti": ti, "exception": ValueError("still unreadable")})
    key = "alerts.check_export_late"
    assert [a[:4] for a in alerts(dsn)] == [("task_failed", key, True, 2)]
    [message] = catcher.wait_for(1)
    assert message["Subject"] == f"[EDI hub] Task failed: {key}"
    assert "ValueError" in message.get_content()

    execute(dsn, "UPDATE edi.registry_insurer SET export_time = '06:00'")
    assert dag.test().state == "success"
    [(_, _, is_open, _, reason)] = alerts(dsn)
    assert not is_open and reason.startswith("succeeded in run manual__")
    assert len(catcher.messages()) == 1


def test_the_plugin_puts_the_page_in_the_browse_menu() -> None:
    plugin = runpy.run_path(str(PLUGIN))["EdiHubPlugin"]
    mounted = {m["url_prefix"]: m["app"] for m in plugin.fastapi_apps}
    assert mounted["/edihub-alerts"] is alerts_app
    [view] = [v for v in plugin.external_views if v["name"] == "Alerts"]
    assert (view["href"], view["category"]) == ("edihub-alerts/alerts", "browse")  # relative


@pytest.mark.airflow
def test_the_alerts_page_shows_open_and_closed_alerts_behind_the_login(
    airflow_db: None, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's own check of the UI's token (its auth manager, its revoked tokens)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from edihub import clock

    monkeypatch.setenv("EDIHUB_DATABASE_URL", dsn)
    now = clock.now()
    with connect(dsn) as conn, conn, conn.cursor() as cur:
        store.raise_alert(cur, "export_late", store.Finding("INS01/2026-11-29", "late <b>"), now)
        store.raise_alert(cur, "rejection_jump", store.Finding("fse", "fse jumped"), now)
        store.close_alert(cur, "rejection_jump", "fse", now, "back within bounds")
    assert TestClient(alerts_app).get("/alerts").status_code == 401
    manager = create_auth_manager()
    manager.init()
    viewer = TestClient(alerts_app)  # the UI's cookie, as the page's iframe sends it
    viewer.cookies.set(
        "_token", manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))
    )
    page = viewer.get("/alerts")
    assert page.status_code == 200
    rows = lxml.html.fromstring(page.text).xpath("//tr[@data-key]")
    assert [(r.get("data-kind"), r.get("data-key"), r.get("data-state")) for r in rows] == [
        ("export_late", "INS01/2026-11-29", "open"), ("rejection_jump", "fse", "closed"),
    ]  # fmt: skip
    assert "late &lt;b&gt;" in page.text  # escaped
    data = viewer.get("/alerts.json").json()
    assert [a["key"] for a in data["open"]] == ["INS01/2026-11-29"]
    assert data["closed"][0]["close_reason"] == "back within bounds"
