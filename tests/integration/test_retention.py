"""Retention on the real PostgreSQL and both SFTP servers: an insurer's export leaves its folder
once downloaded whole and past its grace period, or at its maximum age; the inbound archive,
landing copies, e-mail copies and leftovers go after their periods; the audit trail loses
whole months (partition drops). Every purge is audited; a dry run changes nothing; a second
run finds nothing more."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from edihub import audit, cli, clock, reprocess, retention, trace
from edihub.config import Settings
from edihub.load import db
from edihub.notify import send_due
from edihub.notify.catcher import MailCatcher
from edihub.pharmacy_writer import write_pharmacy_file
from edihub.retention import RetentionPolicy
from edihub.sftp import layout
from edihub.statements import monaco_today
from tests.fixtures.exports import Exports, day_of_care
from tests.fixtures.hub import make_hub
from tests.fixtures.notify import insert_statement
from tests.fixtures.pharmacy import PHARMACY, invoice
from tests.fixtures.registry import seed_registry
from tests.fixtures.sftp import EmbeddedTestServer
from tests.integration.test_downloads import download_audit

DAY = 86_400


def execute(dsn: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(statement, args)
        rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows


def purged(dsn: str) -> list[tuple[Any, ...]]:
    return execute(
        dsn,
        "SELECT actor, detail->>'kind', subject FROM edi.audit_event"
        " WHERE action = 'retention.purge' ORDER BY id",
    )


def kinds(report: retention.RetentionReport) -> list[tuple[str, str]]:
    return [(p.kind, p.subject) for p in report.purges]


def test_an_export_leaves_the_server_once_downloaded_and_past_grace_or_at_its_maximum_age(
    exports: Exports, tmp_path: Path
) -> None:
    today = monaco_today()
    day_of_care(exports, today)
    policy = RetentionPolicy(export_grace_days=3, export_max_days=30)
    with download_audit(exports.server, exports.dsn, tmp_path) as downloads:
        for insurer in ("ins01", "ins02"):
            downloads.watch(layout.partner_root(insurer))
        first, second = (exports.publish(i, today) for i in ("INS01", "INS02"))
        assert sorted(exports.pulled("INS01")) == [
            os.path.basename(first.path),
            os.path.basename(first.path) + ".manifest.json",
        ]  # downloaded whole, with its manifest
        with exports.server.connect(exports.accounts["INS02"]) as sftp:
            sftp.open(second.path.split("/ins02", 1)[1]).read(5)  # in part only
        downloads.collect(closes=3)

    def run(dry_run: bool = False) -> retention.RetentionReport:
        with exports.server.connect(exports.server.hub) as sftp:
            return retention.run(exports.dsn, sftp, exports.settings, policy, dry_run=dry_run)

    assert [p for p in run().purges if p.kind == "export"] == []  # downloaded just now
    execute(exports.dsn, "UPDATE edi.audit_event SET at = at - interval '4 days'"
            " WHERE action = 'export.download'")  # fmt: skip
    assert kinds(run(dry_run=True)) == [
        ("export", first.path + ".manifest.json"),
        ("export", first.path),
    ]
    assert exports.server.local(first.path).exists() and purged(exports.dsn) == []
    assert kinds(run()) == [("export", first.path + ".manifest.json"), ("export", first.path)]
    assert exports.pulled("INS01") == {}
    assert len(exports.pulled("INS02")) == 2  # read in part: not delivered, kept
    execute(exports.dsn, "UPDATE edi.export_file SET published_at = published_at"
            " - interval '31 days' WHERE insurer_id = 'INS02'")  # fmt: skip
    report = run()
    assert kinds(report) == [("export", second.path + ".manifest.json"), ("export", second.path)]
    assert "maximum age" in report.purges[0].reason
    assert exports.pulled("INS02") == {}
    assert run().purges == []
    assert purged(exports.dsn) == [
        (audit.HUB_ACTOR, "export", path)
        for path in (first.path + ".manifest.json", first.path,
                     second.path + ".manifest.json", second.path)
    ]  # fmt: skip
    # INS01 lost its file: put back, it is on the server anew; its old download and purge
    # do not count, and it leaves again at its maximum age from the republication.
    with exports.server.connect(exports.server.hub) as sftp:
        reprocess.republish(sftp, exports.dsn, "INS01", today, "lost by the insurer")
    assert exports.server.local(first.path).exists()  # looked at, not downloaded
    assert run().purges == []
    execute(exports.dsn, "UPDATE edi.audit_event SET at = at - interval '31 days'")
    execute(exports.dsn, "UPDATE edi.export_file SET published_at = published_at"
            " - interval '31 days'")  # fmt: skip
    report = run()
    assert kinds(report) == [("export", first.path + ".manifest.json"), ("export", first.path)]
    assert "maximum age" in report.purges[0].reason
    assert not exports.server.local(first.path).exists()


def _aged(path: Path, days: float, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


def test_the_archive_landing_copies_mail_and_leftovers_go_after_their_periods(
    dsn: str,
    embedded_sftp: EmbeddedTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = dataclasses.replace(Settings.from_env(), state_dir=tmp_path / "state")
    landing, state = settings.landing_dir, settings.state_dir
    policy = RetentionPolicy()  # 10 years for raw files, 90 days for e-mails, 2 for leftovers
    long_ago = clock.now() - dt.timedelta(days=policy.inbound_days + 10)
    # Raw copies on disk for 11 years: one received only then, one received again lately.
    old, resent, recent = ("aa" + "1" * 62, "bb" + "2" * 62, "cc" + "3" * 62)
    for sha256 in (old, resent, recent):
        _aged(landing / sha256[:2] / sha256, 10 if sha256 == recent else 4000)
    rows = [(old, long_ago, "loaded"), (resent, long_ago, "rejected"),
            (resent, clock.now(), "loaded"), (recent, clock.now(), "received")]  # fmt: skip
    ids = [
        execute(
            dsn,
            "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path,"
            " remote_path_raw, size_bytes, sha256, received_at, state)"
            " VALUES ('fse', 'PRACT1', 'f.xml', %s, %s, 1, %s, %s, %s) RETURNING id",
            f"/f{n}.xml", f"/f{n}.xml".encode(), sha256, received, state,
        )[0][0]
        for n, (sha256, received, state) in enumerate(rows)
    ]  # fmt: skip
    _aged(landing / ".fetch-crashed.tmp", 3)
    _aged(landing / ".fetch-running.tmp", 0)
    for file_id, days in ((ids[0], 3), (ids[3], 3), (ids[2], 0)):  # ids[3] is still to load
        _aged(state / "work" / str(file_id) / "verdict.json", days)
        _aged(state / "work" / str(file_id), days)
    _aged(state / "mail" / "000001.eml", 100)
    _aged(state / "mail" / "000002.eml", 1)
    cutoff_day = long_ago.date()
    archive = embedded_sftp.root / "archive" / "PRACT1" / "fse"
    _aged(archive / cutoff_day.isoformat() / f"{ids[0]}.loaded.aaaa", 0, b"<fse/>")
    _aged(archive / clock.now().date().isoformat() / f"{ids[2]}.loaded.bbbb", 0)

    def run(dry_run: bool = False) -> retention.RetentionReport:
        with embedded_sftp.connect(embedded_sftp.hub) as sftp:
            return retention.run(dsn, sftp, settings, policy, dry_run=dry_run)

    expected = [
        ("archive", f"/archive/PRACT1/fse/{cutoff_day}"),
        ("temp", "state:landing/.fetch-crashed.tmp"),
        ("landing", f"state:landing/aa/{old}"),
        ("work", f"state:work/{ids[0]}"),
        ("mail", "state:mail/000001.eml"),
    ]
    before = sorted(p for p in tmp_path.rglob("*"))
    hub = embedded_sftp.hub
    for name, value in (("DATABASE_URL", dsn), ("STATE_DIR", str(state)),
                        ("SFTP_HOST", hub.host), ("SFTP_PORT", str(hub.port)),
                        ("SFTP_USER", hub.username), ("SFTP_KEY_FILE", str(hub.private_key_path)),
                        ("SFTP_HOST_KEY", hub.host_key)):  # fmt: skip
        monkeypatch.setenv(f"EDIHUB_{name}", value)
    assert cli.main(["retention", "run", "--dry-run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[2:4] for line in printed[:-1]] == [list(e) for e in expected]
    assert printed[-1] == "retention: would purge 1 archive, 1 landing, 1 mail, 1 temp, 1 work"
    assert sorted(p for p in tmp_path.rglob("*")) == before and purged(dsn) == []
    report = run()
    assert kinds(report) == expected
    assert report.purges[0].detail == {"files": 1, "bytes": 6}
    assert report.purges[2].detail == {"file_ids": [ids[0]]}
    assert not (archive / cutoff_day.isoformat()).exists()
    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {n for n in left if not n.startswith("sftp-keys/")} == {
        f"state/landing/bb/{resent}",
        f"state/landing/cc/{recent}",
        "state/landing/.fetch-running.tmp",
        f"state/work/{ids[3]}/verdict.json",
        f"state/work/{ids[2]}/verdict.json",
        "state/mail/000002.eml",
        f"sftp-root/archive/PRACT1/fse/{clock.now().date()}/{ids[2]}.loaded.bbbb",
    }
    assert [(actor, kind) for actor, kind, _ in purged(dsn)] == [
        (audit.HUB_ACTOR, kind) for kind, _ in expected
    ]
    assert run().purges == []


def test_the_audit_trail_is_partitioned_by_month_and_loses_whole_months(
    empty_dsn: str, tmp_path: Path
) -> None:
    """0017 moves 0014's events into monthly partitions, ids kept; the default partition
    catches an event no partition was made for, until its month's partition is made."""
    db.migrate(empty_dsn, upto="0014_audit")
    execute(
        empty_dsn,
        "INSERT INTO edi.audit_event (at, actor, action, subject) VALUES"
        " (now() - interval '11 years', 'alice', 'partner.add', 'OLD'),"
        " (now(), 'bob', 'partner.add', 'NEW')",
    )
    db.migrate(empty_dsn)
    assert execute(
        empty_dsn,
        "SELECT id, tableoid::regclass::text"
        " = 'edi.audit_event_' || to_char(at AT TIME ZONE 'UTC', 'YYYYMM')"
        " FROM edi.audit_event ORDER BY id",
    ) == [(1, True), (2, True)]
    with contextlib.closing(psycopg2.connect(empty_dsn)) as conn, conn.cursor() as cur:
        assert audit.record(cur, "carol", "partner.add", "NEXT") == 3
        cur.execute(
            "INSERT INTO edi.audit_event (at, actor, action, subject)"
            " VALUES (now() + interval '6 months', 'dave', 'partner.add', 'AHEAD')"
        )
        conn.commit()
    assert execute(empty_dsn, "SELECT subject FROM edi.audit_event_default") == [("AHEAD",)]
    made = retention.ensure_partitions(empty_dsn, months_ahead=7)
    # The 4th to 7th months from now (the migrations made 3 ahead), for each monthly table.
    assert len([name for name in made if name.startswith("edi.audit_event_")]) == 4
    with contextlib.closing(psycopg2.connect(empty_dsn)) as conn, conn.cursor() as cur:
        assert len(made) == 4 * (1 + len(retention.message_store(cur)))
    assert execute(empty_dsn, "SELECT count(*) FROM edi.audit_event_default") == [(0,)]
    settings = dataclasses.replace(Settings.from_env(), state_dir=tmp_path / "state")
    report = retention.run(empty_dsn, None, settings, RetentionPolicy())
    [dropped] = report.purges
    assert (dropped.kind, dropped.detail) == ("audit", {"rows": 1})
    assert dropped.subject.startswith("edi.audit_event_")
    assert report.skipped == ["exports and inbound archive: no SFTP session"]
    assert execute(empty_dsn, "SELECT subject FROM edi.audit_event ORDER BY id") == [
        ("NEW",), ("NEXT",), ("AHEAD",), (dropped.subject,),
    ]  # fmt: skip
    assert execute(empty_dsn, "SELECT to_regclass(%s)", dropped.subject) == [(None,)]
    assert retention.run(empty_dsn, None, settings, RetentionPolicy()).purges == []


def test_periods_come_from_the_environment_and_must_make_sense() -> None:
    env = {"EDIHUB_RETAIN_AUDIT_DAYS": "400", "EDIHUB_RETAIN_EXPORT_GRACE_DAYS": " "}
    assert RetentionPolicy.from_env(env) == RetentionPolicy(audit_days=400)
    with pytest.raises(ValueError, match="shorter than export_grace_days"):
        RetentionPolicy.from_env({"EDIHUB_RETAIN_EXPORT_MAX_DAYS": "2"})
    with pytest.raises(ValueError, match="temp_days must be at least 1"):
        RetentionPolicy(temp_days=0)


def _partition_of(dsn: str, table: str, file_id: int) -> list[tuple[Any, ...]]:
    return execute(
        dsn, f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE file_id = %s", file_id
    )


def test_the_message_store_loses_whole_months_of_receipt(
    sftp_server: Any, dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's records, lines, errors and rule results are filed under its month of receipt
    (rows of a month without its partition wait in the DEFAULT one until the retention run
    makes it). Past the inbound period the month goes, one partition per table; the file's row
    stays, marked, and its journey says so."""
    seed_registry(dsn, tmp_path)
    hub = make_hub(sftp_server, PHARMACY, dsn, tmp_path / "state", "pharmacy")

    def send(name: str, batch: str, shift_days: int) -> int:
        monkeypatch.setenv(clock.SHIFT_VARIABLE, str(shift_days))
        day = clock.monaco_today()
        first = 10 * int(batch)
        invoices = [invoice(first + i, dispensing_date=day - dt.timedelta(days=1)) for i in (1, 2)]
        invoices.append(invoice(first + 3, prescriber_id="P99999"))  # refused: an error row
        write_pharmacy_file(tmp_path / name, PHARMACY, batch, invoices, day)
        hub.send(tmp_path / name)
        [file_id] = hub.collect()
        monkeypatch.delenv(clock.SHIFT_VARIABLE)
        return file_id

    old = send("PH_old.txt", "00000001", -400)  # a month the migrations made no partition for
    new = send("PH_new.txt", "00000002", 0)
    assert [state for _, state, *_ in hub.files()] == ["loaded_with_errors"] * 2
    assert _partition_of(dsn, "edi.pharmacy_invoice", old) == [("edi.pharmacy_invoice_default",)]
    old_month = execute(dsn, "SELECT edi.receipt_month(received_at) FROM edi.inbound_file"
                        " WHERE id = %s", old)[0][0]  # fmt: skip
    stored = {t: execute(dsn, f"SELECT count(*) FROM {t} WHERE file_id = %s", old)[0][0]
              for t in ("edi.pharmacy_invoice", "edi.pharmacy_invoice_line", "edi.file_error",
                        "edi.validation_result")}  # fmt: skip
    assert stored["edi.pharmacy_invoice"] == 2 and stored["edi.file_error"] > 0

    settings = dataclasses.replace(hub.settings, state_dir=tmp_path / "state")
    policy = RetentionPolicy()
    # The run's day: the inbound period over for the old file's month, not for the new one's.
    now = dt.datetime.combine(
        old_month + dt.timedelta(days=45), dt.time(12), dt.UTC
    ) + dt.timedelta(days=policy.inbound_days)

    def run(dry_run: bool = False) -> retention.RetentionReport:
        return retention.run(dsn, None, settings, policy, dry_run=dry_run, now=now)

    subject = f"received_month:{old_month:%Y-%m}"
    [listed] = [p for p in run(dry_run=True).purges if p.kind == "records"]
    assert (listed.subject, listed.detail["files"]) == (subject, 1)
    assert {t: n for t, n in listed.detail["rows"].items() if n} == stored
    assert _partition_of(dsn, "edi.pharmacy_invoice", old) == [("edi.pharmacy_invoice_default",)]

    report = run()
    month = f"{old_month:%Y%m}"
    assert f"edi.pharmacy_invoice_{month}" in report.partitions_created  # its rows moved in
    [dropped] = [p for p in report.purges if p.kind == "records"]
    assert dropped.subject == subject
    assert {t: n for t, n in dropped.detail["rows"].items() if n} == stored
    for table in stored:
        assert execute(dsn, f"SELECT count(*) FROM {table} WHERE file_id = %s", old) == [(0,)]
        assert execute(dsn, "SELECT to_regclass(%s)", f"{table}_{month}") == [(None,)]
        assert execute(dsn, f"SELECT count(*) FROM {table} WHERE file_id = %s", new)[0][0] > 0
    assert execute(dsn, "SELECT id, data_purged_at IS NOT NULL, state FROM edi.inbound_file"
                   " WHERE feed = 'pharmacy' ORDER BY id") == [
        (old, True, "loaded_with_errors"), (new, False, "loaded_with_errors"),
    ]  # fmt: skip
    assert ("records", subject) in [(kind, s) for _, kind, s in purged(dsn)]
    [journey] = trace.trace(dsn, "PH_old.txt")
    assert "purged" in [step for _, step, _ in trace.timeline(journey)]
    assert [p for p in run().purges if p.kind == "records"] == []


def test_an_email_address_goes_once_its_statement_is_delivered_and_the_mail_period_over(
    dsn: str, catcher: MailCatcher, tmp_path: Path
) -> None:
    sent_at = dt.datetime(2026, 11, 30, 18, 0, tzinfo=dt.UTC)
    for number in ("R2026-000001", "R2026-000002"):
        insert_statement(dsn, number, email=f"{number.lower()}@example.org")
    smtp = catcher.smtp_settings("Caisses Sociales de Monaco <releves@example.org>")
    assert len(send_due(dsn, smtp, sent_at).sent) == 2
    insert_statement(dsn, "R2026-000003", email="not.yet@example.org")  # still to send
    settings = dataclasses.replace(Settings.from_env(), state_dir=tmp_path / "state")
    policy = RetentionPolicy(mail_days=90)

    def run(days_later: int, dry_run: bool = False) -> list[retention.Purge]:
        now = sent_at + dt.timedelta(days=days_later)
        report = retention.run(dsn, None, settings, policy, dry_run=dry_run, now=now)
        return [p for p in report.purges if p.kind == "email"]

    emails = "SELECT statement_number, email, email_purged_at IS NOT NULL FROM edi.statement"
    before = execute(dsn, emails + " ORDER BY 1")
    assert run(89) == []
    [listed] = run(91, dry_run=True)
    assert listed.detail["statements"] == 2 and execute(dsn, emails + " ORDER BY 1") == before
    [purge] = run(91)
    assert (purge.subject, purge.detail["statements"]) == ("edi.statement.email", 2)
    assert execute(dsn, emails + " ORDER BY 1") == [
        ("R2026-000001", None, True),
        ("R2026-000002", None, True),
        ("R2026-000003", "not.yet@example.org", False),
    ]
    assert run(91) == []
