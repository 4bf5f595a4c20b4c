"""The audit of every download by a partner account, from either SFTP server the hub supports.

A partner reads what the hub delivered into its ``/outbound/`` folders: an insurer its
statement exports and their manifests (``export.download``), a sender its acknowledgments
(``ack.download``), an employer its payslips or the mail room its print batch
(``outbound.download``). Each read of a file, from its open to its close, is one
``edi.audit_event``: actor the SFTP account, subject the path as the account sees it, detail
``{"insurer_id" | "sender", "file_name", "bytes"}`` (the bytes actually read: a file read in
part is not a file delivered). The hub's own service account sees the whole tree, never a
path under ``/outbound/``, so its reads (an export checked before it is rewritten) are not
partners' downloads.

- The embedded server (``edihub.sftp.server``) calls ``DownloadRecorder`` when a partner
  closes a file it read: the event is in the database when the close returns.
- OpenSSH's ``internal-sftp -l INFO`` logs each session's account and each close with the
  bytes read. It logs through syslog, which a chrooted account reaches only through a
  ``/dev/log`` socket inside its chroot (``sftp-server(8)``): the syslog daemon listens there
  (rsyslog ``$AddUnixListenSocket``, syslog-ng ``unix-dgram()``) and writes the file
  ``EDIHUB_SFTP_LOG`` names. ``ingest_log`` turns that file into events, idempotently: a
  cursor (``edi.sftp_log_cursor``) advances in the transaction that records what it read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edihub import audit
from edihub.load.db import connect
from edihub.sftp import layout

log = logging.getLogger(__name__)

LOG_VARIABLE = "EDIHUB_SFTP_LOG"
MANIFEST_SUFFIX = ".manifest.json"
_OUTBOUND = "/outbound/"
_ACKS = layout.PARTNER_VIEW_ACKS + "/"
_STATEMENTS = layout.PARTNER_VIEW_STATEMENTS + "/"

# A syslog file line: RFC 3339 time (rsyslog's default file format) or the traditional
# "Mmm dd hh:mm:ss"; the host (absent when written by a local socket reader); tag[pid].
_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)"
    r" (?:\S+ )?(?P<tag>internal-sftp|sftp-server)\[(?P<pid>\d+)\]: (?P<message>.*)"
)
_SESSION = re.compile(r"session (?P<event>opened|closed) for local user (?P<user>\S+) from .*")
_CLOSE = re.compile(r'close "(?P<path>.*)" bytes read (?P<read>\d+) written (?P<written>\d+)')
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Download:
    """One file read by a partner account, as an audit event."""

    account: str
    path: str  # as the account sees it, normalised
    nbytes: int

    @property
    def action(self) -> str:
        if self.path.startswith(_STATEMENTS):
            return "export.download"
        return "ack.download" if self.path.startswith(_ACKS) else "outbound.download"

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.path)


def partner_download(account: str, path: str, nbytes: int) -> Download | None:
    """The download a partner's read of ``path`` is, or None (not a hub delivery)."""
    seen = posixpath.normpath(posixpath.join("/", path))
    if not seen.startswith(_OUTBOUND):
        return None
    return Download(account, seen, nbytes)


def _insurer_of(cur: Any, download: Download) -> str:
    """The insurer whose export (or manifest) this is; its registry entry, else the account."""
    export_name = download.file_name.removesuffix(MANIFEST_SUFFIX)
    cur.execute(
        "SELECT insurer_id FROM edi.export_file WHERE sftp_account = %s AND file_name = %s"
        " UNION ALL SELECT insurer_id FROM edi.registry_insurer WHERE sftp_account = %s"
        " LIMIT 1",
        (download.account, export_name, download.account),
    )
    row = cur.fetchone()
    return str(row[0]) if row else download.account


def record(cur: Any, download: Download, logged_at: dt.datetime | None = None) -> int:
    """The download's audit event, with ``cur`` (in the caller's transaction)."""
    party = "insurer_id" if download.action == "export.download" else "sender"
    detail: dict[str, Any] = {
        party: _insurer_of(cur, download) if party == "insurer_id" else download.account,
        "file_name": download.file_name,
        "bytes": download.nbytes,
    }
    if logged_at is not None:  # read from a log later: when the download happened
        detail["logged_at"] = logged_at.isoformat()
    return audit.record(cur, download.account, download.action, download.path, detail)


class DownloadRecorder:
    """What the embedded server calls on each partner's close of a file it read."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def __call__(self, account: str, path: str, nbytes: int) -> None:
        download = partner_download(account, path, nbytes)
        if download is None:
            return
        with connect(self.dsn) as conn, conn.cursor() as cur:
            record(cur, download)
            conn.commit()


# ---------------------------------------------------------------- OpenSSH's log


@dataclass(frozen=True)
class IngestResult:
    log_path: str
    lines: int
    downloads: int


def _logged_at(text: str, now: dt.datetime) -> dt.datetime:
    if text[:4].isdigit():
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    # The traditional format has no year nor zone: the syslog host's local time, this year
    # unless that is ahead of now (a line of 31 December read on 1 January).
    local = dt.datetime.strptime(f"{now.year} {text}", "%Y %b %d %H:%M:%S").astimezone()
    return local.replace(year=now.year - 1) if local > now + dt.timedelta(days=1) else local


def parse_lines(
    lines: list[str], sessions: dict[str, str], accounts: Mapping[str, str], now: dt.datetime
) -> Iterator[tuple[Download, dt.datetime]]:
    """The partners' downloads in these log lines; ``sessions`` (pid -> account) is read and
    updated as sessions open and close."""
    for line in lines:
        match = _LINE.fullmatch(line.rstrip("\r\n"))
        if match is None:
            continue
        pid, message = match["pid"], match["message"]
        if session := _SESSION.fullmatch(message):
            if session["event"] == "opened":
                sessions[pid] = accounts.get(session["user"], session["user"])
            else:
                sessions.pop(pid, None)
            continue
        close = _CLOSE.fullmatch(message)
        if close is None or pid not in sessions or int(close["written"]):
            continue
        download = partner_download(sessions[pid], close["path"], int(close["read"]))
        if download is not None:
            yield download, _logged_at(match["time"], now)


def _read_from(path: Path, offset: int) -> tuple[list[str], int]:
    """The complete lines from ``offset`` on (a line being written waits for the next run)
    and the offset after the last of them."""
    lines: list[str] = []
    with path.open("rb") as fh:
        fh.seek(offset)
        rest = b""
        while block := fh.read(_CHUNK):
            data = rest + block
            complete, newline, rest = data.rpartition(b"\n")
            if newline:
                lines += complete.decode("utf-8", "backslashreplace").split("\n")
                offset += len(complete) + 1
            else:
                rest = data
    return lines, offset


def ingest_log(
    dsn: str,
    log_path: Path,
    accounts: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Record the downloads OpenSSH logged in ``log_path`` since the last run.

    ``accounts``: system user -> SFTP account, where the system's user names differ from the
    accounts (by default the generated sshd configuration names each user as its account).
    A file rotated since the last run (another inode at the path) is finished from
    ``<log_path>.1`` if that is the file the cursor was in, then the new file is read from
    its start."""
    now = now or dt.datetime.now(dt.UTC)
    key = str(log_path)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO edi.sftp_log_cursor (log_path, inode, read_to) VALUES (%s, 0, 0)"
            " ON CONFLICT (log_path) DO NOTHING",
            (key,),
        )
        cur.execute(
            "SELECT inode, read_to, sessions FROM edi.sftp_log_cursor WHERE log_path = %s"
            " FOR UPDATE",  # one reader at a time; the next finds the cursor moved on
            (key,),
        )
        inode, offset, sessions = cur.fetchone()
        current = os.stat(log_path)
        lines: list[str] = []
        rotated = Path(f"{log_path}.1")
        if inode and inode != current.st_ino:
            if rotated.exists() and os.stat(rotated).st_ino == inode:
                lines, _ = _read_from(rotated, offset)
            else:
                log.warning("%s was replaced and its former file is gone: read afresh", key)
            offset = 0
        elif offset > current.st_size:  # truncated in place (copytruncate)
            offset = 0
        more, offset = _read_from(log_path, offset)
        lines += more
        downloads = 0
        for download, logged_at in parse_lines(lines, sessions, accounts or {}, now):
            record(cur, download, logged_at)
            downloads += 1
        cur.execute(
            "UPDATE edi.sftp_log_cursor SET inode = %s, read_to = %s, sessions = %s,"
            " read_at = now() WHERE log_path = %s",
            (current.st_ino, offset, json.dumps(sessions), key),
        )
        conn.commit()
    log.info("%s: %d lines read, %d downloads recorded", key, len(lines), downloads)
    return IngestResult(key, len(lines), downloads)


def configured_log() -> Path | None:
    """The OpenSSH sftp log to ingest (``EDIHUB_SFTP_LOG``), or None (the embedded server
    records its downloads itself)."""
    value = os.environ.get(LOG_VARIABLE, "").strip()
    return Path(value) if value else None
