"""The download audit on the real PostgreSQL and both SFTP servers: the embedded server records
each partner's read as it is closed; OpenSSH's internal-sftp logs it through syslog (a socket
in the chroot, as sftp-server(8) requires), and the hub reads that log into the same events,
once, whatever was read before, rotated or half written."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from edihub.sftp import downloads, layout
from edihub.sftp.downloads import DownloadRecorder, ingest_log
from tests.fixtures.sftp import SftpTestServer

EXPORT = "CSM_INS01_20261130_000001.csv"


class SyslogStandIn:
    """The syslog daemon's part: a ``/dev/log`` socket in each partner's chroot, the messages
    written to one file in rsyslog's default format (RFC 3339 time, host, tag[pid]: text)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def listen(self, chroot: Path) -> None:
        dev = chroot / "dev"
        dev.mkdir(mode=0o755, exist_ok=True)  # root's, as sshd wants every chroot level
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(dev / "log"))
        os.chmod(dev / "log", 0o666)  # the partner's process writes to it
        self._sockets.append(sock)

    def _serve(self) -> None:
        with self.log_path.open("a", encoding="utf-8") as out:
            while not self._stop.is_set():
                ready = select.select(list(self._sockets), [], [], 0.05)[0] if self._sockets else []
                if not ready:
                    time.sleep(0.01)
                for sock in ready:
                    # "<38>Dec  1 19:18:21 internal-sftp[7148]: text": the priority and the
                    # sender's time give way to the receiver's, as rsyslog writes it.
                    datagram = sock.recv(65536).decode("utf-8", "backslashreplace")
                    text = datagram.split(">", 1)[1][16:]
                    stamp = dt.datetime.now(dt.UTC).isoformat()
                    out.write(f"{stamp} testhost {text.rstrip()}\n")
                    out.flush()

    def wait_for(self, text: str, count: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.log_path.exists() and self.log_path.read_text().count(text) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"{count} x {text!r} not logged:\n{self.log_path.read_text()}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self._sockets:
            sock.close()


class DownloadAudit:
    """Downloads on either server, recorded as the hub records them there."""

    def __init__(self, server: SftpTestServer, dsn: str, folder: Path) -> None:
        self.server, self.dsn = server, dsn
        self.syslog: SyslogStandIn | None = None
        if server.kind == "embedded":
            server.server.on_download = DownloadRecorder(dsn)  # type: ignore[attr-defined]
        else:
            self.syslog = SyslogStandIn(folder / "sftp.log")

    def watch(self, chroot: str) -> None:
        """Before the first session chrooted there (internal-sftp opens /dev/log at its
        start); ``chroot`` as the hub's account sees it."""
        if self.syslog is not None:
            self.syslog.listen(self.server.local(chroot))

    def collect(self, closes: int) -> downloads.IngestResult | None:
        """OpenSSH: once ``closes`` closes are logged, read the log (the embedded server has
        recorded them already)."""
        if self.syslog is None:
            return None
        self.syslog.wait_for(' close "', closes)
        users = self.server.daemon.users  # type: ignore[attr-defined]
        accounts = {user: partner for partner, user in users.items() if partner}
        return ingest_log(self.dsn, self.syslog.log_path, accounts)

    def close(self) -> None:
        if self.syslog is not None:
            self.syslog.close()


@contextlib.contextmanager
def download_audit(server: SftpTestServer, dsn: str, folder: Path) -> Iterator[DownloadAudit]:
    audit = DownloadAudit(server, dsn, folder)
    try:
        yield audit
    finally:
        audit.close()


def events(dsn: str, family: str = "%.download") -> list[tuple[Any, ...]]:
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT actor, action, subject, detail - 'logged_at' FROM edi.audit_event"
            " WHERE action LIKE %s ORDER BY id",
            (family,),
        )
        return cur.fetchall()


def put(server: SftpTestServer, path: str, data: bytes) -> None:
    local = server.local(path)
    local.write_bytes(data)
    local.chmod(0o644)


def test_every_partner_download_is_audited_once(
    sftp_server: SftpTestServer, dsn: str, tmp_path: Path
) -> None:
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO edi.export_file (insurer_id, export_day, sequence, format, sftp_account,"
            " file_name, row_count, total_billed, total_reimbursed, total_patient_share, state)"
            " VALUES ('INS01', '2026-11-30', 1, 'csv', 'ins01', %s, 1, 0, 0, 0, 'published')",
            (EXPORT,),
        )
        conn.commit()
    with download_audit(sftp_server, dsn, tmp_path) as audit:
        insurer = sftp_server.add_partner("ins01", layout.insurer_folders())
        sender = sftp_server.add_partner("PRACT1")
        for chroot in ("/", layout.partner_root("ins01"), layout.partner_root("PRACT1")):
            audit.watch(chroot)
        statements = layout.statements_dir("ins01")
        put(sftp_server, f"{statements}/{EXPORT}", b"x" * 70_000)
        put(sftp_server, f"{statements}/{EXPORT}.manifest.json", b"{}")
        put(sftp_server, f"{layout.acks_dir('PRACT1')}/F1.ack.xml", b"<ack/>")
        with sftp_server.connect(sftp_server.hub) as sftp:  # the hub's own read: not audited
            assert len(sftp.open(f"{statements}/{EXPORT}").read()) == 70_000
        with sftp_server.connect(insurer) as sftp:
            sftp.get(f"/outbound/statements/{EXPORT}", str(tmp_path / "export"))
            sftp.get(f"outbound/statements/{EXPORT}.manifest.json", str(tmp_path / "m"))
            with sftp.open(f"/outbound/statements/{EXPORT}") as fh:
                fh.read(10)  # a read in part is recorded for what it read
        with sftp_server.connect(sender) as sftp:
            sftp.putfo(io.BytesIO(b"<fse/>"), "/inbound/fse/F2.xml")  # an upload: no read
            sftp.get("/outbound/acks/F1.ack.xml", str(tmp_path / "ack"))
        first = audit.collect(closes=6)  # the hub's, three of the insurer, two of the sender
        export = {"insurer_id": "INS01", "file_name": EXPORT}
        expected = [
            ("ins01", "export.download", f"/outbound/statements/{EXPORT}",
             {**export, "bytes": 70_000}),
            ("ins01", "export.download", f"/outbound/statements/{EXPORT}.manifest.json",
             {**export, "file_name": f"{EXPORT}.manifest.json", "bytes": 2}),
            ("ins01", "export.download", f"/outbound/statements/{EXPORT}",
             {**export, "bytes": 10}),
            ("PRACT1", "ack.download", "/outbound/acks/F1.ack.xml",
             {"sender": "PRACT1", "file_name": "F1.ack.xml", "bytes": 6}),
        ]  # fmt: skip
        assert events(dsn) == expected
        if first is not None:  # OpenSSH: a second read of the log records nothing again
            assert first.downloads == 4
            assert audit.collect(closes=6).downloads == 0  # type: ignore[union-attr]
            with sftp_server.connect(sender) as sftp:
                sftp.get("/outbound/acks/F1.ack.xml", str(tmp_path / "ack"))
            assert audit.collect(closes=7).downloads == 1  # type: ignore[union-attr]
            assert events(dsn)[4:] == expected[3:]


SESSION = "internal-sftp[{pid}]: session {what} for local user {user} from [10.0.0.7]"
CLOSE = 'internal-sftp[{pid}]: close "{path}" bytes read {n} written 0'


def test_the_log_is_read_on_from_where_it_stopped_across_a_rotation(
    dsn: str, tmp_path: Path
) -> None:
    log = tmp_path / "sftp.log"

    def write(path: Path, *lines: str, partial: str = "") -> None:
        with path.open("a") as fh:
            fh.write("".join(f"{line}\n" for line in lines) + partial)

    open_a = SESSION.format(pid=41, what="opened", user="ins01")
    close_a = CLOSE.format(pid=41, path="/outbound/acks/a.xml", n=5)
    write(
        log,
        f"2026-12-01T08:00:00.5+01:00 sftp {open_a}",
        f"2026-12-01T08:00:01+01:00 sftp {close_a}",
        "2026-12-01T08:00:02+01:00 sftp sshd[40]: Accepted publickey for ins01",  # not sftp's
        f"2026-12-01T08:00:03+01:00 sftp {CLOSE.format(pid=99, path='/outbound/acks/x', n=1)}",
        partial='2026-12-01T08:00:04+01:00 sftp internal-sftp[41]: close "/outb',
    )
    assert ingest_log(dsn, log).downloads == 1  # pid 99's session was never seen: no account
    # The half line is completed; session 41 opened in the part already read goes on.
    write(log, 'ound/acks/b.xml" bytes read 7 written 0')
    # Rotated (the old file renamed .1, still written for a moment), then a new file.
    log.rename(tmp_path / "sftp.log.1")
    write(tmp_path / "sftp.log.1", f"Dec  1 08:00:05 sftp {CLOSE.format(pid=41, path='c', n=0)}")
    write(
        log,
        f"Dec  1 08:01:00 sftp {SESSION.format(pid=41, what='closed', user='ins01')}",
        f"Dec  1 08:01:01 {CLOSE.format(pid=41, path='/outbound/acks/d.xml', n=9)}",
    )
    now = dt.datetime(2027, 1, 1, 0, 30, tzinfo=dt.UTC)  # traditional lines carry no year
    assert ingest_log(dsn, log, now=now).downloads == 1
    assert ingest_log(dsn, log, now=now).downloads == 0
    got = [(e[2], e[3]["bytes"]) for e in events(dsn)]
    assert got == [("/outbound/acks/a.xml", 5), ("/outbound/acks/b.xml", 7)]
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute("SELECT detail->>'logged_at' FROM edi.audit_event ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [
            "2026-12-01T08:00:01+01:00",
            "2026-12-01T08:00:04+01:00",
        ]


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("/outbound/statements/F.csv", "export.download"),
        ("outbound/acks/../acks/A.xml", "ack.download"),
        ("/outbound/payroll/2026-11/P.pdf", "outbound.download"),
        ("/inbound/fse/F.xml", None),  # a sender re-reading its upload: not a delivery
        ("/partners/ins01/outbound/statements/F.csv", None),  # the hub's view of the tree
        ("/outbound/../partners/x", None),
    ],
)
def test_which_reads_are_partners_downloads(path: str, action: str | None) -> None:
    download = downloads.partner_download("acct", path, 1)
    assert (download.action if download else None) == action
