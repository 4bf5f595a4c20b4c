"""Statements to the insured: e-mail over real SMTP to the local catcher (retries, bounces, a
killed run, two runs at once), the mail room's print batch over real SFTP (embedded and
OpenSSH), and the PDF itself (deterministic, corrections that read clearly)."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import pytest

from edihub.config import Settings
from edihub.notify import (
    DeliveryReport,
    SmtpSettings,
    build_print_batch,
    send_due,
    smtp_settings_from_connection,
    statement_pdf,
)
from edihub.notify.catcher import MailCatcher
from edihub.notify.paper import batch_paths
from edihub.notify.render import MONACO, StatementInconsistent
from edihub.sftp import layout
from tests.fixtures.notify import (
    ISSUED,
    MAILROOM,
    Care,
    deliveries,
    insert_statement,
    pdf_text,
    query,
)

NOW = datetime(2026, 11, 30, 18, 0, tzinfo=MONACO)
SENDER = "Caisses Sociales de Monaco <releves@example.org>"


@pytest.fixture
def smtp(catcher: MailCatcher) -> SmtpSettings:
    return catcher.smtp_settings(
        SENDER, max_attempts=3, retry_seconds=60, retry_cap_seconds=100, timeout_seconds=10
    )


def numbers(outcomes: list[Any]) -> list[str]:
    return sorted(o.statement_number for o in outcomes)


def attachment(message: EmailMessage) -> tuple[str | None, bytes]:
    [part] = list(message.iter_attachments())
    return part.get_filename(), part.get_content()


# ---------------------------------------------------------------- e-mail


def test_statement_is_emailed_with_its_pdf(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    insert_statement(dsn, "R2026-000001", email="emilie.dupont@example.org")
    insert_statement(dsn, "R2026-000002", channel="paper")

    report = send_due(dsn, smtp, NOW)

    assert numbers(report.sent) == ["R2026-000001"]
    assert (report.retrying, report.fell_back) == ([], [])
    [message] = catcher.messages()
    assert message["To"] == "emilie.dupont@example.org"
    assert message["Delivered-To"] == "emilie.dupont@example.org"  # the SMTP envelope
    assert message["From"] == SENDER
    assert message["Subject"] == "Votre relevé de prestations n° R2026-000001"
    body = message.get_body(("plain",)).get_content()
    assert "R2026-000001" in body
    assert "42,34\u00a0€" in body  # spent: 30,00 € + 12,34 €
    assert "32,02\u00a0€" in body  # reimbursed: 24,00 € + 8,02 €
    # Least data in the body: no code, practitioner or prescription of the care.
    for health_detail in ("3400936789012", "PH000001", "P10001", "ORD-0042"):
        assert health_detail not in body
    name, pdf = attachment(message)
    assert name == "releve-R2026-000001.pdf"
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "R2026-000001" in text
    assert "CIP 3400936789012" in text
    assert "24,00\u00a0€" in text

    row = deliveries(dsn)["R2026-000001"]
    assert (row["state"], row["attempts"], row["delivered_at"]) == ("sent", 1, NOW)
    assert row["message_id"] == message["Message-ID"] == "<releve.R2026-000001@example.org>"
    assert deliveries(dsn)["R2026-000002"]["state"] == "pending"  # paper is not e-mailed


def test_a_second_run_sends_nothing_again(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    for i in range(3):
        insert_statement(dsn, f"R2026-00001{i}")
    assert len(send_due(dsn, smtp, NOW).sent) == 3

    again = send_due(dsn, smtp, NOW + timedelta(days=1))

    assert (again.sent, again.retrying, again.fell_back) == ([], [], [])
    assert len(catcher.messages()) == 3


def _other_sessions(dsn: str) -> int:
    return query(
        dsn,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )[0][0]


def test_a_run_killed_mid_batch_resends_nothing_already_sent(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    for i in range(1, 4):
        insert_statement(dsn, f"R2026-00002{i}")
    catcher.hold_after(1)  # the first message goes through, the second hangs in DATA
    env = {
        **os.environ,
        "EDIHUB_SMTP_HOST": catcher.host,
        "EDIHUB_SMTP_PORT": str(catcher.port),
        "EDIHUB_SMTP_FROM": SENDER,
        "EDIHUB_SMTP_STARTTLS": "false",
    }
    code = (
        "import sys; from datetime import datetime;"
        " from edihub.notify import SmtpSettings, send_due;"
        " send_due(sys.argv[1], SmtpSettings.from_env(), datetime.fromisoformat(sys.argv[2]))"
    )
    run = subprocess.Popen([sys.executable, "-c", code, dsn, NOW.isoformat()], env=env)
    try:
        assert catcher.holding.wait(60), "the killed run never reached its second message"
    finally:
        run.kill()
        run.wait(30)
    catcher.release()
    deadline = time.monotonic() + 20
    while _other_sessions(dsn) and time.monotonic() < deadline:  # its row lock goes with it
        time.sleep(0.05)

    report = send_due(dsn, smtp, NOW)

    first = catcher.messages()[0]["Subject"].rsplit(" ", 1)[1]
    assert first == "R2026-000021"
    assert numbers(report.sent) == ["R2026-000022", "R2026-000023"]
    subjects = [m["Subject"] for m in catcher.messages()]
    assert len(subjects) == len(set(subjects)) == 3
    assert {n: (r["state"], r["attempts"]) for n, r in deliveries(dsn).items()} == {
        "R2026-000021": ("sent", 1),
        "R2026-000022": ("sent", 1),
        "R2026-000023": ("sent", 1),
    }


def test_two_runs_at_once_send_each_statement_once(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    for i in range(10):
        insert_statement(dsn, f"R2026-0000{30 + i}")
    catcher.delay_seconds = 0.05  # both runs are mid-send at the same time
    reports: list[DeliveryReport] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        reports.append(send_due(dsn, smtp, NOW))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert all(len(r.sent) > 0 for r in reports), "one run did all the work: no overlap"
    assert sorted(n for r in reports for n in numbers(r.sent)) == [
        f"R2026-0000{30 + i}" for i in range(10)
    ]
    ids = [m["Message-ID"] for m in catcher.messages()]
    assert len(ids) == len(set(ids)) == 10


def test_server_down_is_retried_later_then_sent(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    insert_statement(dsn, "R2026-000041")
    insert_statement(dsn, "R2026-000042")
    catcher.stop()

    down = send_due(dsn, smtp, NOW)

    assert numbers(down.retrying) == ["R2026-000041", "R2026-000042"]
    assert all("unreachable" in o.reason and "Connection refused" in o.reason
               for o in down.retrying)  # fmt: skip
    for row in deliveries(dsn).values():
        assert (row["state"], row["channel"], row["attempts"]) == ("pending", "email", 1)
        assert row["next_attempt_at"] == NOW + timedelta(seconds=60)
        assert "Connection refused" in row["last_error"]
    # Not yet due: nothing is tried, even with the server back.
    catcher.start()
    early = send_due(dsn, smtp, NOW + timedelta(seconds=59))
    assert (early.sent, early.retrying) == ([], [])

    back = send_due(dsn, smtp, NOW + timedelta(seconds=60))

    assert numbers(back.sent) == ["R2026-000041", "R2026-000042"]
    assert [r["attempts"] for r in deliveries(dsn).values()] == [2, 2]
    assert len(catcher.messages()) == 2


def test_temporary_refusal_is_retried_with_a_growing_wait(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    insert_statement(dsn, "R2026-000051", email="full.mailbox@example.org")
    catcher.refuse("full.mailbox@example.org", code=452)

    first = send_due(dsn, smtp, NOW)
    second = send_due(dsn, smtp, NOW + timedelta(seconds=60))

    [once], [twice] = first.retrying, second.retrying
    assert once.reason.startswith("recipient refused: 452")
    assert once.next_attempt_at == NOW + timedelta(seconds=60)
    assert twice.next_attempt_at == NOW + timedelta(seconds=60 + 100)  # 120 s, capped at 100
    assert catcher.messages() == []


def test_bounce_falls_back_to_paper_and_goes_into_the_next_print_batch(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings, sftp_server: Any
) -> None:
    insert_statement(dsn, "R2026-000061", email="gone@example.org")
    insert_statement(dsn, "R2026-000062")
    catcher.refuse("gone@example.org")  # 550

    report = send_due(dsn, smtp, NOW)

    assert numbers(report.sent) == ["R2026-000062"]
    [bounce] = report.fell_back
    assert bounce.statement_number == "R2026-000061"
    assert bounce.reason.startswith("bounced: recipient refused: 550")
    row = deliveries(dsn)["R2026-000061"]
    assert (row["channel"], row["state"], row["attempts"]) == ("paper", "pending", 1)
    assert row["fell_back_at"] == NOW and row["next_attempt_at"] is None
    assert "550" in row["last_error"]
    assert send_due(dsn, smtp, NOW + timedelta(days=1)).fell_back == []  # no second bounce

    sftp_server.add_partner(MAILROOM)
    with sftp_server.connect(sftp_server.hub) as sftp:
        batch = build_print_batch(dsn, sftp, ISSUED, MAILROOM)

    assert batch is not None
    assert [s.statement_number for s in batch.statements] == ["R2026-000061"]
    assert deliveries(dsn)["R2026-000061"]["state"] == "printed"
    pdf = sftp_server.local(batch.pdf_path).read_bytes()
    assert "courriel non remis" in pdf_text(pdf)


def test_the_last_allowed_attempt_sends_it_to_paper(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    insert_statement(dsn, "R2026-000071")
    catcher.stop()

    at = NOW
    outcomes = []
    for _ in range(3):  # max_attempts=3
        report = send_due(dsn, smtp, at)
        outcomes.append((len(report.retrying), len(report.fell_back)))
        at += timedelta(hours=1)

    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    row = deliveries(dsn)["R2026-000071"]
    assert (row["channel"], row["state"], row["attempts"]) == ("paper", "pending", 3)
    assert row["fell_back_at"] == NOW + timedelta(hours=2)
    assert "Connection refused" in row["last_error"]
    assert send_due(dsn, smtp, at).retrying == []  # paper now: e-mail leaves it alone


def test_a_statement_that_cannot_be_prepared_is_reported_not_sent(
    dsn: str, catcher: MailCatcher, smtp: SmtpSettings
) -> None:
    insert_statement(dsn, "R2026-000081", total_billed_offset=100)
    insert_statement(dsn, "R2026-000082")

    report = send_due(dsn, smtp, NOW)

    assert numbers(report.sent) == ["R2026-000082"]
    [broken] = report.retrying
    assert broken.statement_number == "R2026-000081"
    assert "R2026-000081: total_billed" in broken.reason
    assert deliveries(dsn)["R2026-000081"]["attempts"] == 1


# ---------------------------------------------------------------- paper


def _mailroom_files(sftp_server: Any, day: str) -> dict[str, bytes]:
    """The print folder as the mail room reads it, through its own (chrooted) account."""
    folder = f"/outbound/print/{day}"
    with sftp_server.connect(sftp_server.partners[MAILROOM]) as sftp:
        files = {}
        for name in sorted(sftp.listdir(folder)):
            with sftp.open(f"{folder}/{name}", "rb") as fh:
                files[name] = fh.read()
        return files


def test_print_batch_puts_the_days_paper_statements_in_postal_order(
    dsn: str, sftp_server: Any
) -> None:
    sftp_server.add_partner(MAILROOM)
    for number, address, name in (
        ("R2026-000103", "3 rue Grimaldi, 98000 MONACO", ("Jean", "Martin")),
        ("R2026-000101", "8 avenue de Verdun, 06240 BEAUSOLEIL", ("Anna", "Rossi")),
        ("R2026-000102", "1 rue Grimaldi, 98000 MONACO", ("Luc", "Bernard")),
    ):
        insert_statement(dsn, number, channel="paper", address=address, name=name)
    insert_statement(dsn, "R2026-000104", channel="paper", address=None)
    insert_statement(dsn, "R2026-000105", channel="paper", issued_on=ISSUED + timedelta(days=1))
    insert_statement(dsn, "R2026-000106")  # e-mail: not printed
    many = tuple(Care(1000 + i) for i in range(60))
    insert_statement(dsn, "R2026-000107", channel="paper", cares=many,
                     address="2 rue Grimaldi, 98000 MONACO")  # fmt: skip

    with sftp_server.connect(sftp_server.hub) as sftp:
        batch = build_print_batch(dsn, sftp, ISSUED, MAILROOM)

    assert batch is not None and batch.new and batch.uploaded
    day = ISSUED.isoformat()
    assert (batch.pdf_path, batch.index_path) == batch_paths(MAILROOM, ISSUED)
    assert batch.pdf_path == f"/partners/{MAILROOM}/outbound/print/{day}/statements-{day}.pdf"
    files = _mailroom_files(sftp_server, day)
    assert sorted(files) == [f"statements-{day}.csv", f"statements-{day}.pdf"]
    pdf = files[f"statements-{day}.pdf"]
    assert pdf.startswith(b"%PDF-")
    index = list(csv.reader(io.StringIO(files[f"statements-{day}.csv"].decode("utf-8"))))
    assert index == [
        ["statement_number", "name", "postal_address", "first_page", "pages"],
        ["R2026-000101", "Anna Rossi", "8 avenue de Verdun, 06240 BEAUSOLEIL", "1", "1"],
        ["R2026-000102", "Luc Bernard", "1 rue Grimaldi, 98000 MONACO", "2", "1"],
        ["R2026-000107", "Émilie Dupont", "2 rue Grimaldi, 98000 MONACO", "3", "2"],
        ["R2026-000103", "Jean Martin", "3 rue Grimaldi, 98000 MONACO", "5", "1"],
        ["R2026-000104", "Émilie Dupont", "", "6", "1"],
    ]
    assert batch.unaddressed == ("R2026-000104",)
    assert batch.page_count == pdf.count(b"/Type /Page\n") == 6
    text = pdf_text(pdf)
    assert text.index("R2026-000101") < text.index("R2026-000102") < text.index("R2026-000103")
    assert "page 2/2" in text and "R2026-000105" not in text and "R2026-000106" not in text

    assert query(dsn, "SELECT print_day, path, sha256, statement_count FROM edi.print_batch") == [
        (ISSUED, batch.pdf_path, hashlib.sha256(pdf).hexdigest(), 5)
    ]
    states = {n: (r["state"], r["print_day"]) for n, r in deliveries(dsn).items()}
    assert states == {
        "R2026-000101": ("printed", ISSUED),
        "R2026-000102": ("printed", ISSUED),
        "R2026-000103": ("printed", ISSUED),
        "R2026-000104": ("printed", ISSUED),
        "R2026-000105": ("pending", None),  # issued the day after: tomorrow's batch
        "R2026-000106": ("pending", None),
        "R2026-000107": ("printed", ISSUED),
    }


def test_print_batch_rerun_changes_nothing_and_restores_a_missing_file(
    dsn: str, sftp_server: Any
) -> None:
    sftp_server.add_partner(MAILROOM)
    insert_statement(dsn, "R2026-000201", channel="paper")
    insert_statement(
        dsn, "R2026-000202", channel="paper", address="5 quai Antoine Ier, 98000 MONACO"
    )
    with sftp_server.connect(sftp_server.hub) as sftp:
        first = build_print_batch(dsn, sftp, ISSUED, MAILROOM)
    assert first is not None
    pdf_file = sftp_server.local(first.pdf_path)
    original, stat = pdf_file.read_bytes(), pdf_file.stat()
    insert_statement(dsn, "R2026-000203", channel="paper")  # arrives after the batch
    before = deliveries(dsn)

    with sftp_server.connect(sftp_server.hub) as sftp:
        rerun = build_print_batch(dsn, sftp, ISSUED, MAILROOM)

    assert rerun is not None and not rerun.new and not rerun.uploaded
    assert (rerun.sha256, rerun.statements) == (first.sha256, first.statements)
    assert pdf_file.stat().st_mtime_ns == stat.st_mtime_ns and pdf_file.stat().st_ino == stat.st_ino
    assert deliveries(dsn) == before  # R2026-000203 waits for the next day's batch
    assert query(dsn, "SELECT count(*) FROM edi.print_batch") == [(1,)]

    pdf_file.unlink()
    with sftp_server.connect(sftp_server.hub) as sftp:
        restored = build_print_batch(dsn, sftp, ISSUED, MAILROOM)

    assert restored is not None and restored.uploaded and not restored.new
    assert pdf_file.read_bytes() == original
    assert deliveries(dsn) == before

    with sftp_server.connect(sftp_server.hub) as sftp:
        tomorrow = build_print_batch(dsn, sftp, ISSUED + timedelta(days=1), MAILROOM)
    assert tomorrow is not None
    assert [s.statement_number for s in tomorrow.statements] == ["R2026-000203"]


def test_nothing_to_print_gives_no_batch(dsn: str, sftp_server: Any) -> None:
    sftp_server.add_partner(MAILROOM)
    insert_statement(dsn, "R2026-000301")  # e-mail only
    with sftp_server.connect(sftp_server.hub) as sftp:
        assert build_print_batch(dsn, sftp, ISSUED, MAILROOM) is None
    assert query(dsn, "SELECT count(*) FROM edi.print_batch") == [(0,)]
    assert not sftp_server.local(layout.print_dir(MAILROOM, ISSUED.isoformat())).exists()


def test_an_inconsistent_statement_is_left_out_of_the_batch_and_named(
    dsn: str, embedded_sftp: Any
) -> None:
    embedded_sftp.add_partner(MAILROOM)
    insert_statement(dsn, "R2026-000401", channel="paper", total_billed_offset=-1)
    insert_statement(dsn, "R2026-000402", channel="paper")
    with embedded_sftp.connect(embedded_sftp.hub) as sftp:
        batch = build_print_batch(dsn, sftp, ISSUED, MAILROOM)
    assert batch is not None
    assert [s.statement_number for s in batch.statements] == ["R2026-000402"]
    [(number, why)] = batch.not_printed
    assert number == "R2026-000401" and "total_billed" in why
    assert deliveries(dsn)["R2026-000401"]["state"] == "pending"


# ---------------------------------------------------------------- the PDF


def test_render_is_deterministic_and_corrections_name_what_they_correct(dsn: str) -> None:
    first = insert_statement(dsn, "R2026-000501", channel="paper")
    later = insert_statement(
        dsn,
        "R2026-000601",
        channel="paper",
        issued_on=ISSUED + timedelta(days=7),
        # The consultation re-priced at 100 % (an exemption that came late).
        corrects=(first, 1, Care(3000, Decimal("100.00"))),
        cares=(),
        registration="000501",  # the same insured, a week later
    )

    pdf = statement_pdf(dsn, later)

    assert pdf == statement_pdf(dsn, later)  # same statement, same bytes
    assert b"/CreationDate (D:20261207000000+01'00')" in pdf  # the issue date, not the clock
    text = pdf_text(pdf)
    assert "Correction du relevé n° R2026-000501, ligne 1 : annulation" in text
    assert "Correction du relevé n° R2026-000501, ligne 1 : nouveau calcul" in text
    assert "-24,00\u00a0€" in text and "-30,00\u00a0€" in text  # the reversal, negated
    assert "100\u00a0%" in text and "30,00\u00a0€" in text
    assert "Net versé le 09/12/2026" in text
    assert statement_pdf(dsn, first) != pdf


def test_a_statement_whose_totals_disagree_is_refused_by_name(dsn: str) -> None:
    broken = insert_statement(dsn, "R2026-000701", total_billed_offset=5)
    with pytest.raises(StatementInconsistent, match="statement R2026-000701: total_billed"):
        statement_pdf(dsn, broken)


# ---------------------------------------------------------------- settings


def test_smtp_settings_from_the_environment() -> None:
    settings = SmtpSettings.from_env(
        {
            "EDIHUB_SMTP_HOST": "relay.example.org",
            "EDIHUB_SMTP_FROM": SENDER,
            "EDIHUB_SMTP_USER": "hub",
            "EDIHUB_SMTP_PASSWORD": "not-a-real-one",
            "EDIHUB_SMTP_MAX_ATTEMPTS": "5",
        }
    )
    assert (settings.host, settings.port, settings.starttls, settings.ssl) == (
        "relay.example.org", 587, True, False,
    )  # fmt: skip
    assert (settings.username, settings.max_attempts) == ("hub", 5)
    assert "not-a-real-one" not in repr(settings)
    plain = SmtpSettings.from_env(
        {"EDIHUB_SMTP_HOST": "127.0.0.1", "EDIHUB_SMTP_PORT": "2525",
         "EDIHUB_SMTP_FROM": SENDER, "EDIHUB_SMTP_STARTTLS": "false"}
    )  # fmt: skip
    assert (plain.port, plain.starttls) == (2525, False)
    with pytest.raises(ValueError, match="EDIHUB_SMTP_HOST"):
        SmtpSettings.from_env({"EDIHUB_SMTP_FROM": SENDER})
    assert [settings.backoff(n).total_seconds() for n in (1, 2, 3, 7, 8)] == [
        300, 600, 1200, 14400, 14400,
    ]  # fmt: skip


class _Connection:
    """The fields of an Airflow SMTP connection, as the provider's hook reads them."""

    def __init__(self, **fields: Any) -> None:
        self.extra_dejson = fields.pop("extra", {})
        self.host, self.port = fields.get("host"), fields.get("port")
        self.login, self.password = fields.get("login"), fields.get("password")


def test_smtp_settings_from_an_airflow_connection() -> None:
    default = smtp_settings_from_connection(
        _Connection(host="relay.example.org", login="hub", password="x",
                    extra={"from_email": SENDER})
    )  # fmt: skip
    assert (default.port, default.ssl, default.starttls) == (465, True, False)  # SMTPS
    starttls = smtp_settings_from_connection(
        _Connection(host="relay.example.org", port=587,
                    extra={"from_email": SENDER, "disable_ssl": True, "max_attempts": 4})
    )  # fmt: skip
    assert (starttls.port, starttls.ssl, starttls.starttls, starttls.max_attempts) == (
        587, False, True, 4,
    )  # fmt: skip
    with pytest.raises(ValueError, match="from_email"):
        smtp_settings_from_connection(_Connection(host="relay.example.org"))


def test_mailroom_account_defaults_to_the_first_paper_sender(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EDIHUB_MAILROOM_ACCOUNT", raising=False)
    monkeypatch.setenv("EDIHUB_PAPER_SENDERS", "CSMGUICHET,CSMSAISIE")
    assert Settings.from_env().mailroom_account == "CSMGUICHET"
    monkeypatch.setenv("EDIHUB_MAILROOM_ACCOUNT", "CSMCOURRIER")
    assert Settings.from_env().mailroom_account == "CSMCOURRIER"
