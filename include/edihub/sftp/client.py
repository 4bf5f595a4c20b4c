"""The hub's side of SFTP, on paramiko.

Every operation takes a ``paramiko.SFTPClient``, whether it comes from ``connect()`` below or
from Airflow's ``SFTPHook.get_managed_conn()``, so the same code runs in tasks and in tests.

``connect()`` pins the server's host key (never trust on first use, never auto-add) and
authenticates with a key only. Paramiko's default window and prefetch settings are kept on
purpose: larger windows make downloads about 30 times slower (see stack-notes §3).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import io
import os
import posixpath
import socket
import stat
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import paramiko
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_HANDLE,
    CMD_NAME,
    CMD_OPENDIR,
    CMD_READDIR,
)

from edihub.faults import crash_point

# Names uploaders give a file while it is still being written (WinSCP, FileZilla, curl...).
TEMP_SUFFIXES = (".part", ".tmp", ".filepart", ".partial")
MAX_NAME_BYTES = 200
# Longest pause between the two listings of list_ready(): long enough for a writer still
# appending to change the size, short enough for one pause per partner folder per run.
SETTLE_PAUSE_SECONDS = 1.0
KEEPALIVE_SECONDS = 30
# Bidirectional-text controls: they make "evil\u202efdp.xml" display as "evil.pdf...".
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class HostKeyMismatch(paramiko.SSHException):
    """The server's host key is not the pinned one (or none is pinned): nothing was sent."""

    def __init__(self, where: str, pinned: str | None, offered: str) -> None:
        self.where, self.pinned, self.offered = where, pinned, offered
        if pinned is None:
            text = f"no host key is pinned for {where} (the server offered {offered}); refusing"
        else:
            text = (
                f"host key of {where} does not match the pinned key: server offered {offered},"
                f" pinned {pinned}; refusing to connect"
            )
        super().__init__(text)


class FileTooLarge(Exception):
    """A remote file is over the size limit; nothing was kept of it."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        self.path, self.size, self.limit = path, size, limit
        super().__init__(f"{size} bytes or more is over the limit of {limit} bytes")


class NotARegularFile(OSError):
    """The remote path is a symlink, folder, FIFO...: the hub only fetches regular files."""


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and as whom to connect; ``host_key`` is the pinned "ssh-ed25519 AAAA..." line."""

    host: str
    port: int
    username: str
    private_key_path: Path
    host_key: str
    timeout: float = 30.0
    private_key_passphrase: str | None = field(default=None, repr=False)


HUB_ACCOUNT = "hub"  # the hub's own account: it sees the whole tree


def hub_endpoint_from_env(environ: Mapping[str, str] | None = None) -> SftpEndpoint | None:
    """The hub's account on an external SFTP server, from EDIHUB_SFTP_HOST, _PORT, _USER,
    _KEY_FILE and _HOST_KEY (the pinned host key line); None without EDIHUB_SFTP_HOST."""
    env = os.environ if environ is None else environ
    if not env.get("EDIHUB_SFTP_HOST"):
        return None
    missing = [n for n in ("EDIHUB_SFTP_KEY_FILE", "EDIHUB_SFTP_HOST_KEY") if not env.get(n)]
    if missing:
        raise ValueError(
            f"with EDIHUB_SFTP_HOST, set {' and '.join(missing)} too (the hub's private key "
            "file, the server's pinned host key line)"
        )
    return SftpEndpoint(
        host=env["EDIHUB_SFTP_HOST"],
        port=int(env.get("EDIHUB_SFTP_PORT") or 22),
        username=env.get("EDIHUB_SFTP_USER") or HUB_ACCOUNT,
        private_key_path=Path(env["EDIHUB_SFTP_KEY_FILE"]),
        host_key=env["EDIHUB_SFTP_HOST_KEY"],
    )


@dataclass(frozen=True)
class RemoteFile:
    name: str
    path: str
    size: int
    mtime: float
    # why the entry is not a regular file (a symlink, FIFO...), or "" for a regular file
    not_regular: str = ""


@dataclass
class ListResult:
    """``ready``: complete regular files, to fetch. Names are NOT checked for safety here:
    a file with an unsafe name (see ``unsafe_name_reason``) is in ``ready`` too, and so are
    symlinks, FIFOs, sockets and devices (their ``not_regular`` says which), because each
    must still end in a known state (quarantined unread, archived, acknowledged) rather than
    sit in the inbox forever; the caller checks each entry before reading or naming it.
    ``waiting``: still being written or too recent; ``ignored``: (name, why) never fetched:
    temporary upload names, dotfiles and folders."""

    ready: list[RemoteFile] = field(default_factory=list)
    waiting: list[RemoteFile] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int


def _wire(path: str) -> bytes:
    """A path as sent to the server: names that are not UTF-8 (surrogate escapes, as
    list_ready reports them) get their original bytes back, so they can still be moved."""
    return path.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- connect


def _fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _describe(key_type: str, blob: bytes) -> str:
    return f"{key_type} {_fingerprint(blob)}"


def _parse_host_key(line: str, where: str) -> tuple[str, bytes] | None:
    """``"ssh-ed25519 AAAA... [comment]"`` (a known_hosts line's host field is tolerated)."""
    parts = (line or "").split()
    if parts and not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        parts = parts[1:]  # "[host]:port ssh-ed25519 AAAA..."
    if len(parts) < 2:
        return None
    key_type = parts[0]
    try:
        blob = base64.b64decode(parts[1], validate=True)
        paramiko.PKey.from_type_string(key_type, blob)  # refuses malformed or unknown keys
    except (binascii.Error, ValueError, paramiko.SSHException) as exc:
        raise ValueError(f"pinned host key for {where} is not a valid public key: {exc}") from exc
    return key_type, blob


def _prefer(transport: paramiko.Transport, key_type: str) -> None:
    """Negotiate the pinned key's algorithm first, so a server with several keys shows it."""
    options = transport.get_security_options()
    available = list(options.key_types)
    if key_type == "ssh-rsa":
        wanted = [a for a in available if a.startswith("rsa-sha2-")]
    else:
        wanted = [a for a in available if a == key_type]
    options.key_types = wanted + [a for a in available if a not in wanted]


@contextlib.contextmanager
def connect(endpoint: SftpEndpoint) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session, after checking the server's host key against ``endpoint.host_key``.

    Raises ``HostKeyMismatch`` before any credential is sent if the key differs or none is
    pinned, and ``paramiko.AuthenticationException`` if the server refuses the key.
    """
    where = f"{endpoint.host}:{endpoint.port}"
    pinned = _parse_host_key(endpoint.host_key, where)
    key = paramiko.PKey.from_path(endpoint.private_key_path, endpoint.private_key_passphrase)
    sock = socket.create_connection((endpoint.host, endpoint.port), timeout=endpoint.timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = endpoint.timeout
        transport.handshake_timeout = endpoint.timeout
        transport.auth_timeout = endpoint.timeout
        if pinned:
            _prefer(transport, pinned[0])
        transport.start_client(timeout=endpoint.timeout)
        offered = transport.get_remote_server_key()
        offered_blob = offered.asbytes()
        if pinned is None or pinned[1] != offered_blob:
            raise HostKeyMismatch(
                where,
                _describe(*pinned) if pinned else None,
                _describe(offered.get_name(), offered_blob),
            )
        transport.auth_publickey(endpoint.username, key)  # raises on refusal
        transport.set_keepalive(KEEPALIVE_SECONDS)
        sftp = paramiko.SFTPClient.from_transport(transport)
        if sftp is None:
            raise paramiko.SSHException(f"{where} refused the sftp subsystem")
        sftp.get_channel().settimeout(endpoint.timeout)  # a stalled server must not hang a task
        with contextlib.closing(sftp):
            yield sftp
    finally:
        transport.close()


# ---------------------------------------------------------------- names


def unsafe_name_reason(name: str | bytes) -> str | None:
    """Why a partner's file name must not be used as a local name or path, or None if fine.

    Names that are not UTF-8 arrive from ``list_ready`` as ``str`` with surrogate escapes.
    """
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            return "name is not valid UTF-8"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not valid UTF-8"
    if not name:
        return "empty name"
    if "\x00" in name:
        return "name contains a NUL byte"
    if "/" in name or "\\" in name:
        return "name contains a path separator"
    if name in (".", ".."):
        return "name is a relative path component"
    for char in name:
        if unicodedata.category(char) == "Cc":
            return f"name contains a control character (U+{ord(char):04X})"
        if char in BIDI_CONTROLS:
            return f"name contains a bidirectional-text control (U+{ord(char):04X})"
    if len(encoded) > MAX_NAME_BYTES:
        return f"name is {len(encoded)} bytes long (limit {MAX_NAME_BYTES})"
    return None


def _skip_reason(name: str, attrs: paramiko.SFTPAttributes) -> str | None:
    """Why an entry is never taken: a name under upload, or a folder."""
    if name.startswith("."):
        return "hidden (dot) file"
    if name.lower().endswith(TEMP_SUFFIXES):
        return "temporary upload name"
    if attrs.st_mode is not None and stat.S_ISDIR(attrs.st_mode):
        return "directory"
    return None


def _not_regular_reason(attrs: paramiko.SFTPAttributes) -> str:
    """What an entry is when it is not a regular file (never read), or "" when it is one."""
    mode = attrs.st_mode
    if mode is None:
        return "the server did not report a file type"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return ""


# ---------------------------------------------------------------- list


def _listdir_raw(sftp: paramiko.SFTPClient, folder: str) -> list[paramiko.SFTPAttributes]:
    """listdir_attr() that survives names which are not UTF-8 (paramiko's raises).

    Uses paramiko's request layer; names keep their bytes as surrogate escapes, so they can
    still be reported, quarantined by name and moved (paramiko accepts them back as bytes).
    """
    kind, msg = sftp._request(CMD_OPENDIR, _wire(folder))
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("expected a handle")
    handle = msg.get_binary()
    entries: list[paramiko.SFTPAttributes] = []
    try:
        while True:
            try:
                kind, msg = sftp._request(CMD_READDIR, handle)
            except EOFError:
                break
            if kind != CMD_NAME:
                raise paramiko.SFTPError("expected names")
            for _ in range(msg.get_int()):
                name = msg.get_string().decode("utf-8", "surrogateescape")
                longname = msg.get_string().decode("utf-8", "replace")
                attrs = paramiko.SFTPAttributes._from_msg(msg, name, longname)
                if name not in (".", ".."):
                    entries.append(attrs)
    finally:
        sftp._request(CMD_CLOSE, handle)
    return entries


def _listing(sftp: paramiko.SFTPClient, folder: str) -> dict[str, paramiko.SFTPAttributes] | None:
    # READDIR attributes are lstat()'s on OpenSSH and asyncssh: a symlink shows as a symlink.
    try:
        entries = sftp.listdir_attr(_wire(folder))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        entries = _listdir_raw(sftp, folder)
    return {e.filename: e for e in entries}


def _remote(folder: str, attrs: paramiko.SFTPAttributes) -> RemoteFile:
    return RemoteFile(
        attrs.filename,
        posixpath.join(folder, attrs.filename),
        int(attrs.st_size or 0),
        float(attrs.st_mtime or 0),
        _not_regular_reason(attrs),
    )


def list_ready(
    sftp: paramiko.SFTPClient, folder: str, settle_seconds: float, now: float | None = None
) -> ListResult:
    """``list_ready_many`` of one folder."""
    return list_ready_many(sftp, [folder], settle_seconds, now)[folder]


def list_ready_many(
    sftp: paramiko.SFTPClient, folders: list[str], settle_seconds: float, now: float | None = None
) -> dict[str, ListResult]:
    """Sort each folder's entries into ready, waiting (being written, too recent) and ignored.

    A file is ready when its name is not a temporary upload name (``.part``, ``.tmp``,
    ``.filepart``, ``.partial``, leading dot) nor a folder's, its mtime is at least
    ``settle_seconds`` old by ``now`` (default: this host's clock), and its size and mtime
    did not change between two listings taken up to
    ``SETTLE_PAUSE_SECONDS`` apart: the second listing catches a writer still appending on a
    server whose clock lags ours. The pause is only taken when a file passed the age test;
    ``settle_seconds=0`` turns settling off (one listing, no pause). A missing folder gives an
    empty result. Unsafe names are in ``ready`` too: see ``ListResult``. All folders are listed
    before the one pause, so hundreds of partners' folders cost one pause, not hundreds.
    """
    results = {folder: ListResult() for folder in folders}
    clock = time.time() if now is None else now
    candidates: dict[str, list[RemoteFile]] = {}
    for folder in folders:
        result = results[folder]
        first = _listing(sftp, folder) or {}
        for name in sorted(first):
            attrs = first[name]
            reason = _skip_reason(name, attrs)
            if reason:
                result.ignored.append((name, reason))
                continue
            item = _remote(folder, attrs)
            if item.not_regular:  # nothing to settle: it is refused unread
                result.ready.append(item)
            elif settle_seconds > 0 and clock - item.mtime < settle_seconds:
                result.waiting.append(item)
            else:
                candidates.setdefault(folder, []).append(item)
    if settle_seconds <= 0:
        for folder, items in candidates.items():
            results[folder].ready += items
        return results
    if candidates:
        time.sleep(min(settle_seconds, SETTLE_PAUSE_SECONDS))
    for folder, items in candidates.items():
        _settle(sftp, folder, items, results[folder])
    return results


def _settle(
    sftp: paramiko.SFTPClient, folder: str, candidates: list[RemoteFile], result: ListResult
) -> None:
    """The second listing: a candidate is ready if its size and mtime did not change."""
    second = _listing(sftp, folder) or {}
    for item in candidates:
        attrs = second.get(item.name)
        if attrs is None:
            result.ignored.append((item.name, "vanished while being listed"))
            continue
        reason = _skip_reason(item.name, attrs)
        if reason:
            result.ignored.append((item.name, reason))
            continue
        again = _remote(folder, attrs)
        if again.not_regular:  # replaced by a symlink or a FIFO between the two listings
            result.ready.append(again)
            continue
        if (again.size, again.mtime) == (item.size, item.mtime):
            result.ready.append(item)
        else:
            result.waiting.append(again)


# ---------------------------------------------------------------- fetch


class _HashingSink(io.RawIOBase):
    """What getfo() writes into: the temp file, hashed and counted, capped at max_bytes."""

    def __init__(self, out: BinaryIO, remote_path: str, max_bytes: int) -> None:
        super().__init__()
        self._out, self._path, self._max = out, remote_path, max_bytes
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.size += len(data)
        if self.size > self._max:  # it grew after we checked its size: stop reading it
            raise FileTooLarge(self._path, self.size, self._max)
        self.sha256.update(data)
        self._out.write(data)
        return len(data)


def fetch(sftp: paramiko.SFTPClient, remote_path: str, dest_dir: Path, max_bytes: int) -> Fetched:
    """Download to ``dest_dir/<sha256[:2]>/<sha256>``, hashing while streaming.

    Raises ``FileTooLarge`` (nothing kept) past ``max_bytes``, ``NotARegularFile`` for
    anything but a regular file. Fetching the same content again is a no-op.
    """
    attrs = lstat(sftp, remote_path)
    if attrs.st_mode is None or not stat.S_ISREG(attrs.st_mode):
        raise NotARegularFile(errno.EINVAL, "not a regular file", remote_path)
    if (attrs.st_size or 0) > max_bytes:
        raise FileTooLarge(remote_path, int(attrs.st_size or 0), max_bytes)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=".fetch-", suffix=".tmp")  # mode 0600
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            sink = _HashingSink(out, remote_path, max_bytes)
            sftp.getfo(_wire(remote_path), sink)  # prefetching, paramiko's default window
            out.flush()
            os.fsync(out.fileno())  # the landing copy must survive a crash once registered
        digest = sink.sha256.hexdigest()
        final = dest_dir / digest[:2] / digest
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            tmp.unlink()  # content-addressed: same name, same bytes
        else:
            os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Fetched(final, digest, sink.size)


# ---------------------------------------------------------------- write, move


def makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    """``mkdir -p`` on the server; a concurrent creator is not an error."""
    path = posixpath.normpath(path)
    if path in ("/", ".", "", "//"):
        return
    try:
        attrs = sftp.stat(_wire(path))
    except FileNotFoundError:
        makedirs(sftp, posixpath.dirname(path))
        try:
            sftp.mkdir(_wire(path), mode=0o770)
        except OSError:
            if not _is_dir(sftp, path):
                raise
        return
    if attrs.st_mode is None or not stat.S_ISDIR(attrs.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", path)


def _is_dir(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        mode = sftp.stat(_wire(path)).st_mode
    except FileNotFoundError:
        return False
    return mode is not None and stat.S_ISDIR(mode)


def lstat(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPAttributes:
    """The attributes of ``path`` itself (a link is not followed); FileNotFoundError if gone."""
    return sftp.lstat(_wire(path))


def _lstat(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPAttributes | None:
    try:
        return lstat(sftp, path)
    except FileNotFoundError:
        return None


class _Source:
    """What put_atomic uploads from; the second read is the ``sftp.mid_upload`` crash point
    (the first block is on the server, the rest not)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh, self._reads = fh, 0

    def read(self, size: int = -1) -> bytes:
        self._reads += 1
        if self._reads == 2:
            crash_point("sftp.mid_upload")
        data: bytes = self._fh.read(size)
        return data


class ServerDiskFull(OSError):
    """No room on the SFTP server for the file in its folder (nothing kept under its name)."""


def _free_bytes(sftp: paramiko.SFTPClient, folder: str) -> int | None:
    """The room left in ``folder`` on the server, or None if it does not say (the
    statvfs@openssh.com extension, which OpenSSH and asyncssh answer; paramiko has no call
    for it, hence its request layer). Never raises: it must not hide the error it explains."""
    try:
        kind, msg = sftp._request(CMD_EXTENDED, "statvfs@openssh.com", folder)
    except (OSError, EOFError, paramiko.SSHException):  # refused, or the link is gone
        return None
    if kind != CMD_EXTENDED_REPLY:
        return None
    _bsize, frsize, _blocks, _bfree, bavail = (msg.get_int64() for _ in range(5))
    return int(frsize * bavail)


def put_atomic(sftp: paramiko.SFTPClient, data: bytes | os.PathLike[str], remote_path: str) -> None:
    """Write ``remote_path + ".part"``, then rename it over ``remote_path``.

    Readers (and list_ready) never see half a file: the final name appears complete or not at
    all. Parent folders are created.
    """
    parent = posixpath.dirname(remote_path)
    if parent:
        makedirs(sftp, parent)
    part = remote_path + ".part"
    try:
        if isinstance(data, bytes | bytearray | memoryview):
            sftp.putfo(_Source(io.BytesIO(data)), _wire(part), file_size=len(data), confirm=True)
        else:
            with open(data, "rb") as fh:
                sftp.putfo(_Source(fh), _wire(part), confirm=True)
        crash_point("sftp.before_rename")
        sftp.posix_rename(_wire(part), _wire(remote_path))
    except BaseException as error:
        with contextlib.suppress(Exception):
            sftp.remove(_wire(part))
        if isinstance(error, OSError):
            _explain_full_disk(sftp, parent, remote_path, data, error)
        raise


def _explain_full_disk(
    sftp: paramiko.SFTPClient,
    folder: str,
    remote_path: str,
    data: bytes | os.PathLike[str],
    error: OSError,
) -> None:
    """Raise ServerDiskFull if the upload failed for want of room. paramiko drops the server's
    answers to pipelined writes, so a full disk shows only as putfo's "size mismatch"."""
    size = len(data) if isinstance(data, bytes | bytearray | memoryview) else os.path.getsize(data)
    free = _free_bytes(sftp, folder or ".")
    if free is not None and free < size:
        raise ServerDiskFull(
            errno.ENOSPC,
            f"no space left on the SFTP server: {folder} has {free} bytes free,"
            f" {posixpath.basename(remote_path)} needs {size} ({error})",
        ) from error


def move(sftp: paramiko.SFTPClient, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (creating dst's folder); a rerun after success is a no-op.

    If ``dst`` already exists and ``src`` is gone or has the same size, the move is taken as
    done, and ``src`` (if any: a new upload under the same name) is left for the next listing.
    A ``dst`` of another size is never overwritten (``FileExistsError``).
    """
    target = _lstat(sftp, dst)
    source = _lstat(sftp, src)
    if target is not None:
        if source is None or source.st_size == target.st_size:
            return
        raise FileExistsError(errno.EEXIST, f"exists with another size than {src}", dst)
    if source is None:
        raise FileNotFoundError(errno.ENOENT, f"neither it nor {dst} exists", src)
    makedirs(sftp, posixpath.dirname(dst))
    sftp.posix_rename(_wire(src), _wire(dst))
