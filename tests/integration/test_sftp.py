"""The SFTP layer on real servers, embedded (asyncssh) and OpenSSH: authentication, host-key
pinning, partner confinement, and the hub's client operations (list, fetch, put, move)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import stat
import threading
import time
from pathlib import Path

import paramiko
import pytest

from edihub.sftp import layout
from edihub.sftp.client import (
    FileTooLarge,
    HostKeyMismatch,
    NotARegularFile,
    SftpEndpoint,
    fetch,
    list_ready,
    makedirs,
    move,
    put_atomic,
    unsafe_name_reason,
)
from edihub.sftp.server import EmbeddedSftpServer, SftpAccount
from tests.fixtures.sftp import SftpTestServer, new_key_pair

A, B = "PA001", "PB002"
INBOX_A = layout.inbound_dir(A, "fse")


def _age(path: Path, seconds_ago: float = 3600) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t), follow_symlinks=False)


# ---------------------------------------------------------------- authentication


def test_hub_logs_in_with_its_key_and_sees_the_whole_tree(sftp_server: SftpTestServer) -> None:
    with sftp_server.connect(sftp_server.hub) as sftp:
        assert sorted(sftp.listdir("/")) == ["archive", "partners"]


def test_a_wrong_private_key_is_refused(sftp_server: SftpTestServer, tmp_path: Path) -> None:
    wrong, _ = new_key_pair(tmp_path, "intruder")
    endpoint = dataclasses.replace(sftp_server.hub, private_key_path=wrong)
    with pytest.raises(paramiko.AuthenticationException), sftp_server.connect(endpoint):
        pass


def test_only_public_key_authentication_is_offered(sftp_server: SftpTestServer) -> None:
    transport = paramiko.Transport((sftp_server.host, sftp_server.port))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            transport.auth_none(sftp_server.hub.username)
        assert refused.value.allowed_types == ["publickey"]
    finally:
        transport.close()


def test_a_host_key_other_than_the_pinned_one_is_refused(
    sftp_server: SftpTestServer, tmp_path: Path
) -> None:
    _, other = new_key_pair(tmp_path, "other-host")
    where = f"{sftp_server.host}:{sftp_server.port}"
    for pinned in (other, ""):
        endpoint = dataclasses.replace(sftp_server.hub, host_key=pinned)
        with pytest.raises(HostKeyMismatch) as refused, sftp_server.connect(endpoint):
            pass
        message = str(refused.value)
        assert where in message
        assert refused.value.offered.startswith("ssh-ed25519 SHA256:")
        assert refused.value.offered in message
        if pinned:
            assert refused.value.pinned and refused.value.pinned in message
            assert refused.value.pinned != refused.value.offered
        else:
            assert "no host key is pinned" in message


# ---------------------------------------------------------------- partner isolation


def test_a_partner_is_confined_to_its_own_folder(
    sftp_server: SftpTestServer, tmp_path: Path
) -> None:
    a, b = sftp_server.add_partner(A), sftp_server.add_partner(B)
    with sftp_server.connect(b) as sftp:
        put_atomic(sftp, b"B's patients", "/inbound/fse/secret.xml")
    with sftp_server.connect(sftp_server.hub) as sftp:
        put_atomic(sftp, b"archived", layout.archive_dir(B, "fse", "2026-01-02") + "/1.loaded")
    secret = sftp_server.local(layout.inbound_dir(B, "fse")) / "secret.xml"
    # Links planted on disk (not over SFTP) into A's inbox, pointing at B's file.
    inbox_a = sftp_server.local(INBOX_A)
    os.symlink(secret, inbox_a / "abs-link.xml")
    os.symlink("../../../" + B + "/inbound/fse/secret.xml", inbox_a / "rel-link.xml")
    os.symlink("../../../../archive", inbox_a / "archive-link")

    with sftp_server.connect(a) as sftp:
        assert sorted(sftp.listdir("/")) == ["inbound", "outbound"]
        assert sorted(sftp.listdir("/../..")) == ["inbound", "outbound"]
        assert sorted(sftp.listdir("../../../")) == ["inbound", "outbound"]
        for path in (
            "/partners",
            "/archive",
            f"/../{B}/inbound/fse",
            f"../../partners/{B}/inbound/fse/secret.xml",
            f"/inbound/../../{B}/inbound/fse/secret.xml",
        ):
            with pytest.raises(FileNotFoundError):
                sftp.stat(path)
        for link in ("abs-link.xml", "rel-link.xml"):
            with pytest.raises(OSError):
                with sftp.open(f"/inbound/fse/{link}") as fh:
                    assert fh.read() != b"B's patients"
                pytest.fail(f"{link} was readable")
        with pytest.raises(OSError):
            sftp.listdir("/inbound/fse/archive-link")
        # And no new links: a partner cannot point at anything it cannot reach.
        with pytest.raises(OSError):
            sftp.symlink(f"/../{B}/inbound/fse/secret.xml", "/inbound/fse/mine.xml")
        assert "mine.xml" not in sftp.listdir("/inbound/fse")


def test_a_partner_uploads_to_its_inbound_and_reads_its_acks(
    sftp_server: SftpTestServer,
) -> None:
    partner = sftp_server.add_partner(A)
    with sftp_server.connect(partner) as sftp:
        put_atomic(sftp, b"<fse/>", "/inbound/fse/FSE_1.xml")
    with sftp_server.connect(sftp_server.hub) as sftp:
        assert sftp.listdir(INBOX_A) == ["FSE_1.xml"]
        put_atomic(sftp, b"<ack/>", layout.acks_dir(A) + "/FSE_1.ack.xml")
    with sftp_server.connect(partner) as sftp:
        assert sftp.listdir("/outbound/acks") == ["FSE_1.ack.xml"]
        with sftp.open("/outbound/acks/FSE_1.ack.xml") as fh:
            assert fh.read() == b"<ack/>"


# ---------------------------------------------------------------- list_ready


def test_list_ready_takes_only_settled_regular_files(sftp_server: SftpTestServer) -> None:
    sftp_server.add_partner(A)
    inbox = sftp_server.local(INBOX_A)
    for name in ("good.xml", "young.xml", "big.xml.part", "b.tmp", "c.FILEPART", ".hidden"):
        (inbox / name).write_bytes(b"<fse/>")
    (inbox / "folder").mkdir()
    os.mkfifo(inbox / "pipe")
    os.symlink("good.xml", inbox / "link.xml")
    for path in inbox.iterdir():
        if path.name != "young.xml":
            _age(path)

    with sftp_server.connect(sftp_server.hub) as sftp:
        started = time.monotonic()
        listing = list_ready(sftp, INBOX_A, settle_seconds=60)
        elapsed = time.monotonic() - started
    # a symlink and a FIFO are ready too, to be refused unread, with what they are
    assert sorted((f.name, f.path, f.not_regular) for f in listing.ready) == [
        ("good.xml", f"{INBOX_A}/good.xml", ""),
        ("link.xml", f"{INBOX_A}/link.xml", "symlink"),
        ("pipe", f"{INBOX_A}/pipe", "FIFO"),
    ]
    assert next(f.size for f in listing.ready if f.name == "good.xml") == 6
    assert [f.name for f in listing.waiting] == ["young.xml"]
    assert dict(listing.ignored) == {
        ".hidden": "hidden (dot) file",
        "b.tmp": "temporary upload name",
        "big.xml.part": "temporary upload name",
        "c.FILEPART": "temporary upload name",
        "folder": "directory",
    }
    assert elapsed < 5  # one short pause between the two listings, not settle_seconds


def test_list_ready_waits_for_a_file_still_being_written(sftp_server: SftpTestServer) -> None:
    sftp_server.add_partner(A)
    growing = sftp_server.local(INBOX_A) / "growing.xml"
    growing.write_bytes(b"<fse>")
    _age(growing)  # looks settled by its mtime (a server clock lagging ours)

    def append() -> None:
        with growing.open("ab") as fh:
            fh.write(b"<sheet/>")

    with sftp_server.connect(sftp_server.hub) as sftp:
        writer = threading.Timer(0.2, append)
        writer.start()
        listing = list_ready(sftp, INBOX_A, settle_seconds=5)
        writer.join()
        assert listing.ready == []
        assert [(f.name, f.size) for f in listing.waiting] == [("growing.xml", 13)]
        # Once it stops changing it is ready (here with settling off).
        assert [f.name for f in list_ready(sftp, INBOX_A, 0).ready] == ["growing.xml"]


def test_list_ready_of_a_missing_folder_is_empty(sftp_server: SftpTestServer) -> None:
    with sftp_server.connect(sftp_server.hub) as sftp:
        listing = list_ready(sftp, layout.inbound_dir("NOBODY", "fse"), 60)
    assert (listing.ready, listing.waiting, listing.ignored) == ([], [], [])


def test_list_ready_reports_unsafe_names_as_ready_for_the_caller_to_quarantine(
    sftp_server: SftpTestServer,
) -> None:
    sftp_server.add_partner(A)
    inbox = os.fsencode(sftp_server.local(INBOX_A))
    fd = os.open(os.path.join(inbox, b"bad\xff\x01.xml"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    with sftp_server.connect(sftp_server.hub) as sftp:
        [item] = list_ready(sftp, INBOX_A, 0).ready
        assert unsafe_name_reason(item.name) == "name is not valid UTF-8"
        # It can still be moved out of the inbox, to a name of the hub's choosing.
        move(sftp, item.path, "/archive/q/1.quarantined")
        assert sftp.listdir(INBOX_A) == []
        assert sftp.listdir("/archive/q") == ["1.quarantined"]


# ---------------------------------------------------------------- fetch, put, move


def test_fetch_hashes_and_lands_the_file_by_content(
    sftp_server: SftpTestServer, tmp_path: Path
) -> None:
    partner = sftp_server.add_partner(A)
    data = os.urandom(300_000)
    digest = hashlib.sha256(data).hexdigest()
    with sftp_server.connect(partner) as sftp:
        put_atomic(sftp, data, "/inbound/fse/big.xml")
    landing = tmp_path / "landing"
    with sftp_server.connect(sftp_server.hub) as sftp:
        fetched = fetch(sftp, f"{INBOX_A}/big.xml", landing, max_bytes=len(data))
        assert (fetched.sha256, fetched.size) == (digest, len(data))
        assert fetched.path == landing / digest[:2] / digest
        assert fetched.path.read_bytes() == data
        assert stat.S_IMODE(fetched.path.stat().st_mode) == 0o600
        assert fetch(sftp, f"{INBOX_A}/big.xml", landing, len(data)) == fetched  # idempotent

        with pytest.raises(FileTooLarge) as too_large:
            fetch(sftp, f"{INBOX_A}/big.xml", tmp_path / "small", max_bytes=len(data) - 1)
        assert too_large.value.limit == len(data) - 1
        assert not any(p.is_file() for p in (tmp_path / "small").rglob("*"))
        assert sorted(p.name for p in landing.rglob("*") if p.is_file()) == [digest]

        os.symlink("big.xml", sftp_server.local(INBOX_A) / "link.xml")
        with pytest.raises(NotARegularFile):
            fetch(sftp, f"{INBOX_A}/link.xml", landing, len(data))


def test_put_atomic_leaves_no_part_file(sftp_server: SftpTestServer, tmp_path: Path) -> None:
    source = tmp_path / "ack.xml"
    source.write_bytes(b"<ack>from a file</ack>")
    with sftp_server.connect(sftp_server.hub) as sftp:
        put_atomic(sftp, b"<ack>first</ack>", "/archive/x/y/ack.xml")  # parents created
        put_atomic(sftp, source, "/archive/x/y/ack.xml")  # replaces it whole
        assert sftp.listdir("/archive/x/y") == ["ack.xml"]
        with sftp.open("/archive/x/y/ack.xml") as fh:
            assert fh.read() == b"<ack>from a file</ack>"
        makedirs(sftp, "/archive/x/y")  # already there: fine
        with pytest.raises(NotADirectoryError):
            makedirs(sftp, "/archive/x/y/ack.xml/z")


def test_move_is_idempotent_on_rerun(sftp_server: SftpTestServer) -> None:
    partner = sftp_server.add_partner(A)
    with sftp_server.connect(partner) as sftp:
        put_atomic(sftp, b"<fse/>", "/inbound/fse/FSE_1.xml")
    target = layout.archive_dir(A, "fse", "2026-01-02") + "/7.loaded.abcd"
    with sftp_server.connect(sftp_server.hub) as sftp:
        move(sftp, f"{INBOX_A}/FSE_1.xml", target)
        move(sftp, f"{INBOX_A}/FSE_1.xml", target)  # the rerun after a crash
        assert sftp.listdir(INBOX_A) == []
        assert sftp.stat(target).st_size == 6
        with pytest.raises(FileNotFoundError):
            move(sftp, f"{INBOX_A}/never.xml", target + ".other")
    with sftp_server.connect(partner) as sftp:  # a new upload under the same name...
        put_atomic(sftp, b"<fse>longer</fse>", "/inbound/fse/FSE_1.xml")
    with sftp_server.connect(sftp_server.hub) as sftp:
        with pytest.raises(FileExistsError):  # ...never overwrites the archived one
            move(sftp, f"{INBOX_A}/FSE_1.xml", target)
        assert sftp.stat(target).st_size == 6


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("FSE_20260102_001.xml", None),
        ("relevé é.xml", None),
        ("a" * 200, None),
        ("é" * 101, "name is 202 bytes long (limit 200)"),
        ("", "empty name"),
        ("..", "name is a relative path component"),
        (".", "name is a relative path component"),
        ("../etc/passwd", "name contains a path separator"),
        ("a/b.xml", "name contains a path separator"),
        ("a\\b.xml", "name contains a path separator"),
        ("a\x00b", "name contains a NUL byte"),
        ("a\nb.xml", "name contains a control character (U+000A)"),
        ("a\x1bb.xml", "name contains a control character (U+001B)"),
        ("a\x85b.xml", "name contains a control character (U+0085)"),
        ("evil\u202efdp.xml", "name contains a bidirectional-text control (U+202E)"),
        (b"bad\xff.xml", "name is not valid UTF-8"),
        (b"bad\xff.xml".decode("utf-8", "surrogateescape"), "name is not valid UTF-8"),
        (b"ok.xml", None),
    ],
)
def test_unsafe_name_reason(name: str | bytes, reason: str | None) -> None:
    assert unsafe_name_reason(name) == reason


# ---------------------------------------------------------------- embedded server only


def test_embedded_host_key_is_persisted_private(tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "host_key"
    first = EmbeddedSftpServer(tmp_path, key_path, [])
    assert first.host_key_line.startswith("ssh-ed25519 AAAA")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert EmbeddedSftpServer(tmp_path, key_path, []).host_key_line == first.host_key_line
    key_path.chmod(0o644)
    with pytest.raises(PermissionError):
        EmbeddedSftpServer(tmp_path, key_path, [])


def test_embedded_accounts_added_while_running_and_audited(
    embedded_sftp: SftpTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edihub.sftp.server")
    partner = embedded_sftp.add_partner(A)
    with embedded_sftp.connect(partner) as sftp:
        put_atomic(sftp, b"<fse/>", "/inbound/fse/FSE_1.xml")
    with embedded_sftp.connect(embedded_sftp.hub) as sftp:
        sftp.open(f"{INBOX_A}/FSE_1.xml").close()
        sftp.remove(f"{INBOX_A}/FSE_1.xml")
    wrong, _ = new_key_pair(tmp_path, "intruder")
    intruder = dataclasses.replace(partner, private_key_path=wrong)
    with pytest.raises(paramiko.AuthenticationException), embedded_sftp.connect(intruder):
        pass
    # Another process may have planted a link; it is refused, and the refusal logged.
    os.symlink(embedded_sftp.local("/archive"), embedded_sftp.local(INBOX_A) / "out")
    with embedded_sftp.connect(partner) as sftp, pytest.raises(PermissionError):
        sftp.listdir("/inbound/fse/out")

    deadline = time.monotonic() + 5  # the server logs from its own thread
    expected = [
        f"login account={A} peer=127.0.0.1:",
        f"upload account={A} path=/inbound/fse/FSE_1.xml.part bytes=6",
        f"rename account={A} from=/inbound/fse/FSE_1.xml.part to=/inbound/fse/FSE_1.xml",
        f"download account=edihub path={INBOX_A}/FSE_1.xml bytes=0",
        f"remove account=edihub path={INBOX_A}/FSE_1.xml",
        f"login refused account={A}",
        f"refused account={A} path=/inbound/fse/out: symlink points outside the account root",
    ]
    while time.monotonic() < deadline:
        messages = "\n".join(r.getMessage() for r in caplog.records)
        if all(e in messages for e in expected):
            break
        time.sleep(0.05)
    for line in expected:
        assert line in messages


def test_embedded_account_roots_must_lie_inside_the_tree(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "elsewhere").mkdir()
    server = EmbeddedSftpServer(tmp_path / "tree", tmp_path / "key", [])
    with pytest.raises(ValueError, match="outside"):
        server.add_account(SftpAccount("x", tmp_path / "elsewhere", []))


def test_an_endpoint_repr_shows_no_secret(tmp_path: Path) -> None:
    endpoint = SftpEndpoint("h", 22, "u", tmp_path / "k", "ssh-ed25519 AAAA", 5, "s3cret")
    assert "s3cret" not in repr(endpoint)
