"""Statements to the insured: e-mail (SMTP, retries, bounces, paper fallback) and the mail
room's daily paper print batch. What the ``notify_insured`` DAG calls:

- ``send_due(dsn, smtp_settings, now)``: the due e-mails, one SMTP connection per run;
- ``build_print_batch(dsn, sftp, day, mailroom_account)``: that day's print batch;
- ``SmtpSettings.from_env()`` or ``smtp_settings_from_connection(conn)`` for the relay.

The local SMTP catcher of the embedded default is ``edihub.notify.catcher.MailCatcher``
(not imported here: a DAG run never needs the SMTP server side).
"""

from edihub.notify.mail import (
    DeliveryOutcome,
    DeliveryReport,
    SmtpSettings,
    send_due,
    smtp_settings_from_connection,
)
from edihub.notify.paper import PrintBatch, PrintBatchMismatch, PrintedStatement, build_print_batch
from edihub.notify.render import Statement, load_statement, render_statement, statement_pdf

__all__ = [
    "DeliveryOutcome",
    "DeliveryReport",
    "PrintBatch",
    "PrintBatchMismatch",
    "PrintedStatement",
    "SmtpSettings",
    "Statement",
    "build_print_batch",
    "load_statement",
    "render_statement",
    "send_due",
    "smtp_settings_from_connection",
    "statement_pdf",
]
