"""The mail room's daily print batch: every paper statement due, in one PDF, in postal order.

Paper deliveries are the statements of insured who did not choose e-mail, and the e-mails
that bounced or failed for good (``mail.py`` turned them into paper ones). ``build_print_batch``
takes those of statements issued on or before the day, renders them into one PDF (each
statement on its own pages) with an index CSV beside it, uploads both into the mail-room
account's ``/outbound/print/<day>/``, and only then, in one transaction, marks the deliveries
printed and records the batch (``edi.print_batch``, with the PDF's sha256).

Postal order: by the address's last part (postcode and town), then the whole address, then
the statement number; statements without an address come last and are reported, for the mail
room to look up. A day has one batch: a rerun re-renders it (rendering is deterministic),
uploads the files again only if one is missing, and changes nothing else.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import posixpath
from dataclasses import dataclass
from datetime import date
from typing import Any

import paramiko

from edihub import clock
from edihub.load import db
from edihub.notify.render import (
    Statement,
    StatementInconsistent,
    StatementNotFound,
    address_lines,
    french_date,
    load_statements,
    render_batch,
)
from edihub.sftp import layout
from edihub.sftp.client import put_atomic

log = logging.getLogger(__name__)

# Serialises batch builders of the same day (a rerun racing a scheduled run): "prin", day.
_LOCK_CLASS = 0x7072_696E
INDEX_COLUMNS = ("statement_number", "name", "postal_address", "first_page", "pages")


class PrintBatchMismatch(RuntimeError):
    """A day's recorded batch cannot be produced again byte for byte (the renderer changed
    since), so a missing file is not replaced by a different one."""


@dataclass(frozen=True)
class PrintedStatement:
    statement_number: str
    name: str
    postal_address: str
    first_page: int
    pages: int


@dataclass(frozen=True)
class PrintBatch:
    print_day: date
    pdf_path: str
    index_path: str
    sha256: str
    statements: tuple[PrintedStatement, ...]
    new: bool  # built by this call; False: the day's batch existed already
    uploaded: bool  # this call wrote the files to the server
    unaddressed: tuple[str, ...] = ()  # printed, but with no postal address to post them to
    not_printed: tuple[tuple[str, str], ...] = ()  # (statement number, why): left pending

    @property
    def statement_count(self) -> int:
        return len(self.statements)

    @property
    def page_count(self) -> int:
        return sum(s.pages for s in self.statements)


def batch_paths(mailroom_account: str, day: date) -> tuple[str, str]:
    """The PDF's and the index's paths, as the hub's account sees them."""
    folder = layout.print_dir(mailroom_account, day.isoformat())
    stem = f"statements-{day.isoformat()}"
    return posixpath.join(folder, f"{stem}.pdf"), posixpath.join(folder, f"{stem}.csv")


def postal_order(statement: Statement) -> tuple[bool, str, str, str]:
    parts = address_lines(statement.postal_address)
    town = parts[-1].casefold() if parts else ""
    return (
        not parts,
        town,
        (statement.postal_address or "").casefold(),
        statement.statement_number,
    )


def _index_csv(printed: tuple[PrintedStatement, ...]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(INDEX_COLUMNS)
    for p in printed:
        writer.writerow([p.statement_number, p.name, p.postal_address, p.first_page, p.pages])
    return out.getvalue().encode("utf-8")


def _render(
    statements: list[Statement], day: date
) -> tuple[bytes, bytes, tuple[PrintedStatement, ...]]:
    ordered = sorted(statements, key=postal_order)
    pdf, pages = render_batch(
        ordered, day, f"Relevés de prestations à imprimer du {french_date(day)}"
    )
    printed, first = [], 1
    for statement, count in zip(ordered, pages, strict=True):
        printed.append(
            PrintedStatement(
                statement.statement_number,
                statement.name,
                statement.postal_address or "",
                first,
                count,
            )
        )
        first += count
    rows = tuple(printed)
    return pdf, _index_csv(rows), rows


def _load(conn: Any, ids: list[int]) -> tuple[list[Statement], list[tuple[int, str, str]]]:
    """The statements to print, and those that cannot be (id, number, why): one inconsistent
    statement must not hold back the day's batch."""
    try:
        return load_statements(conn, ids), []
    except (StatementInconsistent, StatementNotFound):
        pass
    good, bad = [], []
    for statement_id in ids:
        try:
            good.extend(load_statements(conn, [statement_id]))
        except (StatementInconsistent, StatementNotFound) as exc:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT statement_number FROM edi.statement WHERE statement_id = %s",
                    (statement_id,),
                )
                row = cur.fetchone()
            bad.append((statement_id, row[0] if row else f"id {statement_id}", str(exc)))
    return good, bad


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def build_print_batch(
    dsn: str, sftp: paramiko.SFTPClient, day: date, mailroom_account: str
) -> PrintBatch | None:
    """The print batch of ``day`` in ``/partners/<mailroom_account>/outbound/print/<day>/``;
    None when there is nothing to print and no batch for that day yet."""
    pdf_path, index_path = batch_paths(mailroom_account, day)
    with db.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, day.toordinal()))
            cur.execute("SELECT path, sha256 FROM edi.print_batch WHERE print_day = %s", (day,))
            existing = cur.fetchone()
        if existing:
            batch = _existing(conn, sftp, day, existing[0], existing[1])
            conn.rollback()
            return batch
        with conn.cursor() as cur:
            cur.execute(
                "SELECT d.statement_id FROM edi.statement_delivery d"
                " JOIN edi.statement s USING (statement_id)"
                " WHERE d.channel = 'paper' AND d.state = 'pending' AND s.issued_on <= %s"
                " ORDER BY d.statement_id FOR UPDATE OF d SKIP LOCKED",
                (day,),
            )
            ids = [row[0] for row in cur.fetchall()]
        statements, bad = _load(conn, ids)
        for _, number, why in bad:
            log.error("statement %s: left out of the print batch of %s: %s", number, day, why)
        if not statements:
            conn.rollback()
            return None
        pdf, index, printed = _render(statements, day)
        put_atomic(sftp, index, index_path)
        put_atomic(sftp, pdf, pdf_path)  # last: a PDF in the folder has its index beside it
        digest = hashlib.sha256(pdf).hexdigest()
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE edi.statement_delivery SET state = 'printed', print_day = %s,"
                " delivered_at = %s WHERE statement_id = ANY(%s)",
                (day, clock.now(), [s.statement_id for s in statements]),
            )
            cur.execute(
                "INSERT INTO edi.print_batch (print_day, path, sha256, statement_count)"
                " VALUES (%s, %s, %s, %s)",
                (day, pdf_path, digest, len(printed)),
            )
        conn.commit()
    unaddressed = tuple(p.statement_number for p in printed if not p.postal_address)
    for number in unaddressed:
        log.warning("statement %s: printed on %s with no postal address to post it to", number, day)
    batch = PrintBatch(
        day,
        pdf_path,
        index_path,
        digest,
        printed,
        True,
        True,
        unaddressed,
        tuple((number, why) for _, number, why in bad),
    )
    log.info(
        "print batch of %s: %d statements, %d pages in %s (sha256 %s)",
        day,
        batch.statement_count,
        batch.page_count,
        pdf_path,
        digest,
    )
    return batch


def _existing(
    conn: Any, sftp: paramiko.SFTPClient, day: date, pdf_path: str, recorded_sha: str
) -> PrintBatch:
    """The day's batch as recorded; its files uploaded again only where one is missing."""
    index_path = pdf_path.removesuffix(".pdf") + ".csv"  # beside the recorded PDF
    with conn.cursor() as cur:
        cur.execute(
            "SELECT statement_id FROM edi.statement_delivery WHERE print_day = %s"
            " AND state = 'printed' ORDER BY statement_id",
            (day,),
        )
        ids = [row[0] for row in cur.fetchall()]
    pdf, index, printed = _render(load_statements(conn, ids), day)
    digest = hashlib.sha256(pdf).hexdigest()
    missing = [p for p in (index_path, pdf_path) if not _exists(sftp, p)]
    if missing and digest != recorded_sha:
        raise PrintBatchMismatch(
            f"print batch of {day}: {', '.join(missing)} missing, and rendering it again gives"
            f" sha256 {digest}, not the recorded {recorded_sha}; not replaced"
        )
    if digest != recorded_sha:
        log.warning(
            "print batch of %s: renders differently now (sha256 %s, recorded %s);"
            " the files on the server are kept",
            day,
            digest,
            recorded_sha,
        )
    for path in missing:
        put_atomic(sftp, index if path == index_path else pdf, path)
        log.warning("print batch of %s: %s was missing, uploaded again", day, path)
    unaddressed = tuple(p.statement_number for p in printed if not p.postal_address)
    return PrintBatch(
        day, pdf_path, index_path, recorded_sha, printed, False, bool(missing), unaddressed
    )
