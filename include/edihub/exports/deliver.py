"""Publish one insurer's file for one day into its SFTP folder.

Order of effects, which "same bytes, never rewritten" rests on:
  plan      the file's lines, number, format and options recorded (committed) before any
            byte is written
  render    from that record only
  upload    file under a temporary name then renamed, then its manifest the same way: a
            manifest on the server means its file is complete
  record    state published, sha256, size
A rerun after a crash at any point renders the same bytes; a file already on the server is
checked, never overwritten; a different one there is an alarm, not something to fix quietly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import posixpath
from dataclasses import dataclass
from typing import Any

import paramiko
import psycopg2.extras

from edihub import clock, overrides
from edihub.config import Settings
from edihub.exports import files, ledger
from edihub.exports.schedule import export_refusal
from edihub.faults import crash_point
from edihub.load.db import connect
from edihub.sftp.client import put_atomic
from edihub.sftp.layout import statements_dir
from edihub.validation import DatabaseLookup

log = logging.getLogger(__name__)


class ExportRefused(Exception):
    """The registry does not allow this export (unknown insurer, paused, no convention)."""


class PublishedFileDiffers(Exception):
    """The server holds another file under this export's name: never overwritten."""


@dataclass(frozen=True)
class Published:
    insurer_id: str
    export_day: dt.date
    sequence: int
    path: str
    rows: int
    sha256: str
    uploaded: bool  # False: the same bytes were already on the server


def _insurer(cur: Any, insurer_id: str) -> dict[str, Any]:
    with cur.connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as dict_cur:
        dict_cur.execute(
            "SELECT insurer_id, status, sftp_account, export_format, export_time,"
            " convention_signed_on FROM edi.registry_insurer WHERE insurer_id = %s",
            (insurer_id,),
        )
        row = dict_cur.fetchone()
    if row is None:
        raise ExportRefused(f"insurer {insurer_id} is not in the registry")
    return dict(row)


def _options(conn: Any, insurer_id: str, fmt: str) -> overrides.ExportOptions:
    """The insurer's own options (contracts/overrides) of the moment, for a file planned now:
    one planned before keeps those recorded with it."""
    found = overrides.load(Settings.from_env().contracts_dir / overrides.OVERRIDES)
    return overrides.export_options(found.export(DatabaseLookup(conn), insurer_id, fmt).values)


def _remote_sha256(sftp: paramiko.SFTPClient, path: str) -> str | None:
    try:
        with sftp.open(path, "rb") as fh:
            fh.prefetch()
            digest = hashlib.sha256()
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            return digest.hexdigest()
    except FileNotFoundError:
        return None


def _upload(sftp: paramiko.SFTPClient, data: bytes, path: str) -> bool:
    """Put ``data`` at ``path`` unless the same bytes are there; True if it was written."""
    found = _remote_sha256(sftp, path)
    if found is None:
        put_atomic(sftp, data, path)
        return True
    if found != hashlib.sha256(data).hexdigest():
        raise PublishedFileDiffers(f"{path} holds other bytes (sha256 {found}); not overwritten")
    return False


def _record_failure(dsn: str, export_id: int, error: BaseException) -> None:
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE edi.export_file SET attempts = attempts + 1, last_error = %s,"
            " last_attempt_at = %s WHERE export_id = %s",
            (f"{type(error).__name__}: {error}"[:2000], clock.now(), export_id),
        )
        conn.commit()


def publish(dsn: str, sftp: paramiko.SFTPClient, insurer_id: str, day: dt.date) -> Published:
    with connect(dsn) as conn, conn.cursor() as cur:
        insurer = _insurer(cur, insurer_id)
        found = ledger.plan_of(cur, insurer_id, day)
        if found is None:
            refusal = export_refusal(insurer, day)
            if refusal:
                raise ExportRefused(refusal)
            cur.execute("SELECT 1 FROM edi.statement_day WHERE issued_on = %s", (day,))
            if cur.fetchone() is None:
                raise ExportRefused(f"the statements of {day} are not issued yet")
            options = _options(conn, insurer_id, insurer["export_format"])
            found = ledger.plan(cur, insurer, day, options)
        conn.commit()
        planned = found
        rows = ledger.rows(cur, planned.export_id)
    try:
        contract = files.export_contract()
        header = files.Header(insurer_id, planned.sequence, day, planned.fmt)
        data = files.render(contract, header, rows, planned.options)
        sha256 = hashlib.sha256(data).hexdigest()
        if planned.sha256 and planned.sha256 != sha256:
            raise PublishedFileDiffers(
                f"{planned.file_name} rendered to sha256 {sha256}, published as {planned.sha256}"
            )
        folder = statements_dir(planned.sftp_account)
        path = posixpath.join(folder, planned.file_name)
        uploaded = _upload(sftp, data, path)
        _upload(sftp, files.manifest(header, planned.file_name, data, rows),
                path + ".manifest.json")  # fmt: skip
        crash_point("exports.after_rename")
    except Exception as error:
        log.error("export %s of %s for %s failed: %s", planned.sequence, insurer_id, day, error)
        _record_failure(dsn, planned.export_id, error)
        raise
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE edi.export_file SET state = 'published', sha256 = %(sha256)s,"
            " size_bytes = %(size)s,"
            " published_at = coalesce(published_at, %(now)s), attempts = attempts + 1,"
            " last_error = NULL, last_attempt_at = %(now)s WHERE export_id = %(id)s",
            {"sha256": sha256, "size": len(data), "now": clock.now(), "id": planned.export_id},
        )
        conn.commit()
    log.info("export %s of %s for %s: %d rows, %s", planned.sequence, insurer_id, day,
             rows.num_rows, "published" if uploaded else "already on the server")  # fmt: skip
    return Published(insurer_id, day, planned.sequence, path, rows.num_rows, sha256, uploaded)
