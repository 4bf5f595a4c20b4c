"""Statements to the insured who chose e-mail: SMTP, with retries, bounces and a paper fallback.

``send_due`` takes every pending e-mail delivery that is due, one row at a time under a row
lock (``FOR UPDATE SKIP LOCKED``: two runs at once split the work, never send a statement
twice), sends it on the batch's one SMTP connection and commits that row before the next, so a
crash resends nothing already recorded as sent. Only the message in flight at a crash can go
twice, with the same Message-ID (derived from the statement number), which tells a reader and
the relay that it is the same message.

A failure is never dropped: a transient one (server unreachable, time-out, 4xx) is retried
with an exponential, capped backoff; a permanent refusal (5xx to the recipient or to the
message: a bounce), or the last allowed attempt, turns the delivery into a paper one
(channel 'paper', ``fell_back_at``, the error kept) that the next print batch carries. Every
failure is logged with the statement number and listed in the ``DeliveryReport``.

Bounces that a relay accepts first and reports later (a delivery status notification to the
From address) are not read here: the relay's refusal at RCPT or DATA is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Literal

from edihub.load import db
from edihub.notify.render import Statement, euros, french_date, load_statement, render_statement

log = logging.getLogger(__name__)

Outcome = Literal["sent", "retrying", "fell_back"]


# ---------------------------------------------------------------- settings


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how statements are mailed, and how failures are retried.

    ``ssl``: implicit TLS from the first byte (SMTPS, port 465); ``starttls``: upgrade a plain
    connection (port 587), and refuse to send if the server cannot. A statement's PDF is health
    data: only the loopback catcher of the embedded default runs without either.
    Retries wait ``retry_seconds`` × 2^(attempt-1), at most ``retry_cap_seconds``; the
    ``max_attempts``-th failure sends the statement to paper.
    """

    host: str
    port: int
    sender: str  # the From address
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    retry_seconds: int = 300
    retry_cap_seconds: int = 4 * 3600

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SMTP settings: no host")
        if "@" not in parseaddr(self.sender)[1]:
            raise ValueError(f"SMTP settings: the From address {self.sender!r} is not an address")
        if self.max_attempts < 1:
            raise ValueError("SMTP settings: max_attempts must be at least 1")

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        return timedelta(
            seconds=min(self.retry_seconds * 2 ** max(attempts - 1, 0), self.retry_cap_seconds)
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """EDIHUB_SMTP_HOST, _PORT, _FROM, _STARTTLS (default on), _SSL (default off), _USER,
        _PASSWORD, _TIMEOUT, _MAX_ATTEMPTS, _RETRY_SECONDS, _RETRY_CAP_SECONDS."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(f"EDIHUB_SMTP_{name}") or None

        host, sender = get("HOST"), get("FROM")
        if not host or not sender:
            raise ValueError("EDIHUB_SMTP_HOST and EDIHUB_SMTP_FROM must be set to send e-mail")
        use_ssl = _flag(get("SSL"), False)
        starttls = _flag(get("STARTTLS"), True) and not use_ssl
        return cls(
            host=host,
            port=int(get("PORT") or _default_port(use_ssl, starttls)),
            sender=sender,
            starttls=starttls,
            ssl=use_ssl,
            username=get("USER"),
            password=get("PASSWORD"),
            timeout_seconds=float(get("TIMEOUT") or 30),
            max_attempts=int(get("MAX_ATTEMPTS") or 8),
            retry_seconds=int(get("RETRY_SECONDS") or 300),
            retry_cap_seconds=int(get("RETRY_CAP_SECONDS") or 4 * 3600),
        )


def _default_port(use_ssl: bool, starttls: bool) -> int:
    return 465 if use_ssl else 587 if starttls else 25


def smtp_settings_from_connection(conn: Any) -> SmtpSettings:
    """Settings from an Airflow SMTP connection (``smtp_default``), read as the SMTP provider
    reads it: ``host``, ``port``, ``login``, ``password``; extra ``from_email``, ``disable_ssl``
    (SMTPS unless true), ``disable_tls`` (STARTTLS unless true), ``timeout``; and the hub's
    own extras ``max_attempts``, ``retry_seconds``, ``retry_cap_seconds``."""
    extra = dict(getattr(conn, "extra_dejson", None) or {})
    use_ssl = not _flag(extra.get("disable_ssl"), False)
    starttls = not use_ssl and not _flag(extra.get("disable_tls"), False)
    sender = extra.get("from_email")
    if not sender:
        raise ValueError("the SMTP connection has no from_email extra: statements need a From")
    return SmtpSettings(
        host=conn.host or "",
        port=int(conn.port or _default_port(use_ssl, starttls)),
        sender=sender,
        starttls=starttls,
        ssl=use_ssl,
        username=conn.login or None,
        password=conn.password or None,
        timeout_seconds=float(extra.get("timeout", 30)),
        max_attempts=int(extra.get("max_attempts", 8)),
        retry_seconds=int(extra.get("retry_seconds", 300)),
        retry_cap_seconds=int(extra.get("retry_cap_seconds", 4 * 3600)),
    )


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class DeliveryOutcome:
    statement_number: str
    outcome: Outcome
    attempts: int
    reason: str | None = None  # the SMTP reply or error, for retrying and fell_back
    next_attempt_at: datetime | None = None


@dataclass
class DeliveryReport:
    """What one ``send_due`` run did, statement by statement."""

    sent: list[DeliveryOutcome] = field(default_factory=list)
    retrying: list[DeliveryOutcome] = field(default_factory=list)
    fell_back: list[DeliveryOutcome] = field(default_factory=list)

    def add(self, outcome: DeliveryOutcome) -> None:
        getattr(self, outcome.outcome).append(outcome)

    def summary(self) -> str:
        return (
            f"{len(self.sent)} sent, {len(self.retrying)} to retry,"
            f" {len(self.fell_back)} fell back to paper"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (an Airflow task's return value)."""

        def rows(items: list[DeliveryOutcome]) -> list[dict[str, Any]]:
            return [
                {
                    **asdict(o),
                    "next_attempt_at": o.next_attempt_at.isoformat() if o.next_attempt_at else None,
                }
                for o in items
            ]

        return {
            "sent": rows(self.sent),
            "retrying": rows(self.retrying),
            "fell_back": rows(self.fell_back),
            "summary": self.summary(),
        }


# ---------------------------------------------------------------- message

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


def _safe(statement_number: str) -> str:
    """The statement number as it may appear in a Message-ID and a file name."""
    return _UNSAFE_ID.sub("_", statement_number)


def message_id(statement_number: str, sender: str) -> str:
    """The same for every attempt at the same statement, so a resent message is recognisable."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "edihub.invalid"
    return f"<releve.{_safe(statement_number)}@{domain}>"


def attachment_name(statement_number: str) -> str:
    return f"releve-{_safe(statement_number)}.pdf"


def build_message(statement: Statement, pdf: bytes, sender: str, now: datetime) -> EmailMessage:
    """The e-mail of one statement: a short text with the number and the totals only (no care,
    code or practitioner in the body: those stay in the attached PDF)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = statement.email or ""
    msg["Subject"] = f"Votre relevé de prestations n° {statement.statement_number}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(statement.statement_number, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the funds
    msg.set_content(
        "Madame, Monsieur,\n\n"
        f"Votre relevé de prestations n° {statement.statement_number}, émis le"
        f" {french_date(statement.issued_on)}, est joint à ce message (PDF).\n\n"
        f"Montant des soins : {euros(statement.total_billed)}\n"
        f"Remboursé par la caisse : {euros(statement.total_reimbursed)},"
        f" versé le {french_date(statement.payment_date)}\n"
        f"Reste à votre charge : {euros(statement.total_patient_share)}\n\n"
        "Ce message est envoyé automatiquement : merci de ne pas y répondre.\n"
        "Les Caisses Sociales de Monaco\n"
    )
    msg.add_attachment(
        pdf,
        maintype="application",
        subtype="pdf",
        filename=attachment_name(statement.statement_number),
    )
    return msg


# ---------------------------------------------------------------- SMTP


class _Refused(Exception):
    """A send that failed; ``permanent``: the recipient or the message was refused (a
    bounce), so retrying cannot help."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {message}".strip()


def _classify(exc: Exception) -> _Refused:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return _Refused(f"recipient refused: {_reply(code, text)}", code >= 500)
    if isinstance(exc, smtplib.SMTPDataError):
        return _Refused(
            f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}", exc.smtp_code >= 500
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # Our From was refused: the relay's configuration, not the insured's address.
        return _Refused(f"sender refused: {_reply(exc.smtp_code, exc.smtp_error)}", False)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _Refused(f"SMTP error: {_reply(exc.smtp_code, exc.smtp_error)}", False)
    return _Refused(f"SMTP server unreachable or gone: {type(exc).__name__}: {exc}", False)


class Relay:
    """The batch's one SMTP connection, opened on first use. Once the server cannot be
    reached, the rest of the batch is not tried against it again: each due statement is
    recorded as retrying with the same reason."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None
        self.unreachable: str | None = None

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if s.ssl:
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        try:
            client.ehlo()
            if s.starttls:
                client.starttls(context=context)  # raises if the server cannot: never in clear
                client.ehlo()
            if s.username:
                client.login(s.username, s.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def send(self, msg: EmailMessage, recipient: str) -> None:
        if self.unreachable:
            raise _Refused(self.unreachable, False)
        if self.client is None:
            try:
                self.client = self._open()
            except (OSError, smtplib.SMTPException) as exc:
                self.unreachable = _classify(exc).reason
                raise _Refused(self.unreachable, False) from exc
        try:
            self.client.send_message(msg, from_addr=self.settings.sender, to_addrs=[recipient])
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPDataError,
            smtplib.SMTPSenderRefused,
        ) as exc:
            raise _classify(exc) from exc  # the session itself is still usable
        except (OSError, smtplib.SMTPException) as exc:
            self.close()  # a broken session: the next message opens a new one
            raise _classify(exc) from exc

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.client.quit()
            with contextlib.suppress(OSError):
                self.client.close()
            self.client = None


# ---------------------------------------------------------------- the batch

_NEXT_DUE = """
SELECT d.statement_id, d.attempts, s.statement_number
  FROM edi.statement_delivery d
  JOIN edi.statement s USING (statement_id)
 WHERE d.channel = 'email' AND d.state = 'pending'
   AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= %s)
   AND d.statement_id <> ALL(%s)
 ORDER BY d.next_attempt_at NULLS FIRST, d.statement_id
 LIMIT 1
   FOR UPDATE OF d SKIP LOCKED
"""


def send_due(
    dsn: str, smtp: SmtpSettings, now: datetime, *, limit: int | None = None
) -> DeliveryReport:
    """Send every pending e-mail delivery due at ``now`` (timezone-aware); at most ``limit``
    statements if given. Returns what became of each."""
    if now.tzinfo is None:
        raise ValueError("send_due needs a timezone-aware now (next_attempt_at is timestamptz)")
    report = DeliveryReport()
    tried: list[int] = []  # each statement at most once per run, whatever its backoff
    relay = Relay(smtp)
    try:
        with db.connect(dsn) as conn:
            while limit is None or len(tried) < limit:
                with conn.cursor() as cur:
                    cur.execute(_NEXT_DUE, (now, tried))
                    row = cur.fetchone()
                if row is None:
                    conn.rollback()
                    break
                statement_id, attempts, number = row
                tried.append(statement_id)
                outcome = _deliver(conn, relay, smtp, now, statement_id, attempts, number)
                conn.commit()  # this statement's outcome is kept before the next is tried
                report.add(outcome)
    finally:
        relay.close()
    if tried:
        log.info("statement e-mails at %s: %s", now.isoformat(), report.summary())
    return report


def _deliver(
    conn: Any,
    relay: Relay,
    smtp: SmtpSettings,
    now: datetime,
    statement_id: int,
    attempts: int,
    number: str,
) -> DeliveryOutcome:
    attempts += 1
    msg_id = message_id(number, smtp.sender)
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT prepare")  # a failed read must not lose the row lock
    try:
        statement = load_statement(conn, statement_id)
        msg = build_message(statement, render_statement(statement), smtp.sender, now)
    except Exception as exc:  # retried, reported, and in the end printed like any failure
        with conn.cursor() as cur:
            cur.execute("ROLLBACK TO SAVEPOINT prepare")
        log.exception("statement %s: could not be prepared for e-mail", number)
        refused = _Refused(f"could not be prepared: {type(exc).__name__}: {exc}", False)
        return _failed(conn, smtp, now, statement_id, number, attempts, None, refused)
    try:
        if not statement.email or "@" not in statement.email:
            raise _Refused("the statement has no e-mail address", True)
        relay.send(msg, statement.email)
    except _Refused as refused:
        return _failed(conn, smtp, now, statement_id, number, attempts, msg_id, refused)
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE edi.statement_delivery SET state = 'sent', attempts = %s,"
            " next_attempt_at = NULL, message_id = %s, delivered_at = %s"
            " WHERE statement_id = %s",
            (attempts, msg_id, now, statement_id),
        )
    log.info("statement %s: e-mailed as %s (attempt %d)", number, msg_id, attempts)
    return DeliveryOutcome(number, "sent", attempts)


def _failed(
    conn: Any,
    smtp: SmtpSettings,
    now: datetime,
    statement_id: int,
    number: str,
    attempts: int,
    msg_id: str | None,
    refused: _Refused,
) -> DeliveryOutcome:
    if refused.permanent or attempts >= smtp.max_attempts:
        why = "bounced" if refused.permanent else f"failed {attempts} times"
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE edi.statement_delivery SET channel = 'paper', state = 'pending',"
                " attempts = %s, next_attempt_at = NULL, last_error = %s, fell_back_at = %s,"
                " message_id = COALESCE(%s, message_id) WHERE statement_id = %s",
                (attempts, refused.reason, now, msg_id, statement_id),
            )
        log.error(
            "statement %s: e-mail %s (%s); falls back to the next paper print batch",
            number,
            why,
            refused.reason,
        )
        return DeliveryOutcome(number, "fell_back", attempts, f"{why}: {refused.reason}")
    retry_at = now + smtp.backoff(attempts)
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE edi.statement_delivery SET attempts = %s, next_attempt_at = %s,"
            " last_error = %s, message_id = COALESCE(%s, message_id) WHERE statement_id = %s",
            (attempts, retry_at, refused.reason, msg_id, statement_id),
        )
    log.warning(
        "statement %s: e-mail attempt %d of %d failed (%s); retry at %s",
        number,
        attempts,
        smtp.max_attempts,
        refused.reason,
        retry_at.isoformat(),
    )
    return DeliveryOutcome(number, "retrying", attempts, refused.reason, retry_at)
