"""An in-process SFTP server (asyncssh): the embedded default, and the server the tests run.

Each account is chrooted to its own folder: the hub's service account to the tree root, each
partner to ``partners/<partner_id>`` (see ``layout``). Only public-key authentication is
offered. On top of asyncssh's virtual chroot, the server refuses to create symlinks or hard
links and refuses to follow any symlink (planted on disk by someone else) whose target resolves
outside the account's root, so a link cannot leak another partner's files or the archive.

Every login, upload, download, rename and removal is logged on the ``edihub.sftp.server``
logger with the account and the path the account sees: the audit trail of a file transfer.
A partner's download is also handed to ``on_download`` (``edihub.sftp.downloads``, which
records it in the database's audit trail) when the file is closed, or the session ends.

The asyncio loop runs in a daemon thread, so synchronous code (tests, a CLI) can start and
stop the server and add accounts while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncssh
from asyncssh.sftp import (
    ACE4_APPEND_DATA,
    ACE4_WRITE_DATA,
    FXF_APPEND,
    FXF_WRITE,
    SFTPAttrs,
    SFTPName,
)

log = logging.getLogger("edihub.sftp.server")

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0

# (account, path as the account named it, bytes read): called off the event loop.
DownloadHook = Callable[[str, str, int], None]


@dataclass(frozen=True)
class SftpAccount:
    """One login: its name, the folder it is chrooted to, its OpenSSH public key lines."""

    name: str
    root: Path
    authorized_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Resolved:
    name: str
    root: bytes  # realpath, so containment checks compare like with like
    keys: asyncssh.SSHAuthorizedKeys | None


def _show(path: bytes) -> str:
    """A path as logged: undecodable bytes and control characters escaped (no log forging)."""
    text = path.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _resolve(account: SftpAccount, tree: str) -> _Resolved:
    root = os.path.realpath(account.root)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"root of SFTP account {account.name!r} is not a folder: {root}")
    if root != tree and not root.startswith(tree.rstrip(os.sep) + os.sep):
        raise ValueError(f"root of SFTP account {account.name!r} is outside {tree}: {root}")
    lines = [ln.strip() for ln in account.authorized_keys if ln.strip()]
    # Parse now, so a malformed key line fails add_account() rather than a later login.
    keys = asyncssh.import_authorized_keys("\n".join(lines) + "\n") if lines else None
    return _Resolved(account.name, os.fsencode(root), keys)


class _Session(asyncssh.SFTPServer):
    """One SFTP session of one account: chroot, symlink containment and the audit log."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel,
        account: _Resolved,
        on_download: DownloadHook | None,
    ) -> None:
        super().__init__(chan, chroot=account.root)
        self._account = account.name
        self._root = account.root
        self._on_download = on_download
        # Open files: (kind, path as the client named it, bytes moved), logged on close.
        self._files: dict[int, list[Any]] = {}

    # ---------------------------------------------------------------- containment

    def _inside(self, real: bytes) -> bool:
        return real == self._root or real.startswith(self._root.rstrip(b"/") + b"/")

    def _refuse(self, path: bytes, why: str) -> asyncssh.SFTPPermissionDenied:
        log.warning("refused account=%s path=%s: %s", self._account, _show(path), why)
        return asyncssh.SFTPPermissionDenied(why)

    def map_path(self, path: bytes) -> bytes:
        local = super().map_path(path).rstrip(b"/") or b"/"
        # The parent is always resolved: a symlinked folder on the way must not lead out.
        if local != self._root and not self._inside(os.path.realpath(os.path.dirname(local))):
            raise self._refuse(path, "path leads outside the account root")
        return local

    def _follow(self, path: bytes) -> bytes:
        """For operations that follow a final symlink: its target must stay inside the root."""
        local = self.map_path(path)
        if not self._inside(os.path.realpath(local)):
            raise self._refuse(path, "symlink points outside the account root")
        return local

    def _check_open_file(self, path: bytes, file_obj: Any) -> None:
        # Closes the race between the check above and open(): what was opened is what counts.
        if sys.platform.startswith("linux"):
            real = os.fsencode(os.readlink(f"/proc/self/fd/{file_obj.fileno()}"))
            if not self._inside(real):
                file_obj.close()
                raise self._refuse(path, "opened file lies outside the account root")

    # ---------------------------------------------------------------- files

    def _track(self, path: bytes, file_obj: Any, writing: bool) -> Any:
        self._check_open_file(path, file_obj)
        self._files[id(file_obj)] = ["upload" if writing else "download", path, 0]
        return file_obj

    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> Any:
        self._follow(path)
        file_obj = super().open(path, pflags, attrs)
        return self._track(path, file_obj, bool(pflags & (FXF_WRITE | FXF_APPEND)))

    def open56(self, path: bytes, desired_access: int, flags: int, attrs: SFTPAttrs) -> Any:
        self._follow(path)
        file_obj = super().open56(path, desired_access, flags, attrs)
        writing = bool(desired_access & (ACE4_WRITE_DATA | ACE4_APPEND_DATA))
        return self._track(path, file_obj, writing)

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        data = super().read(file_obj, offset, size)
        assert isinstance(data, bytes)  # the default implementation is synchronous
        entry = self._files.get(id(file_obj))
        if entry:
            entry[2] += len(data)
        return data

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        written = super().write(file_obj, offset, data)
        assert isinstance(written, int)
        entry = self._files.get(id(file_obj))
        if entry:
            entry[2] += written
        return written

    async def close(self, file_obj: object) -> None:
        entry = self._files.pop(id(file_obj), None)
        super().close(file_obj)
        if not entry:
            return
        kind, path, nbytes = entry
        log.info("%s account=%s path=%s bytes=%d", kind, self._account, _show(path), nbytes)
        if kind == "download" and self._on_download is not None:
            text = path.decode("utf-8", "surrogateescape")
            try:
                # A database write: in a thread, not on the loop every session shares.
                await asyncio.get_running_loop().run_in_executor(
                    None, self._on_download, self._account, text, nbytes
                )
            except Exception:
                # The partner has the bytes already: failing its close would undo nothing.
                log.exception(
                    "download not recorded account=%s path=%s bytes=%d",
                    self._account, _show(path), nbytes,
                )  # fmt: skip

    # ---------------------------------------------------------------- metadata

    def stat(self, path: bytes) -> os.stat_result:
        return os.stat(self._follow(path))

    def setstat(self, path: bytes, attrs: SFTPAttrs) -> Any:
        self._follow(path)
        return super().setstat(path, attrs)

    def statvfs(self, path: bytes) -> Any:
        self._follow(path)
        return super().statvfs(path)

    async def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:
        self._follow(path)
        async for name in super().scandir(path):
            yield name

    # ---------------------------------------------------------------- changes

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise self._refuse(newpath, "symlinks are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise self._refuse(newpath, "hard links are not allowed")

    def remove(self, path: bytes) -> Any:
        result = super().remove(path)
        log.info("remove account=%s path=%s", self._account, _show(path))
        return result

    def rename(self, oldpath: bytes, newpath: bytes) -> Any:
        result = super().rename(oldpath, newpath)
        log.info("rename account=%s from=%s to=%s", self._account, _show(oldpath), _show(newpath))
        return result

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
        result = super().posix_rename(oldpath, newpath)
        log.info("rename account=%s from=%s to=%s", self._account, _show(oldpath), _show(newpath))
        return result

    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> Any:
        result = super().mkdir(path, attrs)
        log.info("mkdir account=%s path=%s", self._account, _show(path))
        return result

    def rmdir(self, path: bytes) -> Any:
        result = super().rmdir(path)
        log.info("rmdir account=%s path=%s", self._account, _show(path))
        return result


class _Connection(asyncssh.SSHServer):
    """One client connection: public-key authentication against the account's keys."""

    def __init__(self, server: EmbeddedSftpServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._username = ""
        self._pending: _Resolved | None = None
        self.account: _Resolved | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._server._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._server._connections.discard(self._conn)
        if self.account is None and self._username:
            log.warning("login refused account=%s peer=%s", self._username, self._peer)

    def begin_auth(self, username: str) -> bool:
        assert self._conn is not None
        self._username = username
        account = self._server._lookup(username)
        # An unknown account gets no keys: it fails exactly like a wrong key (no enumeration).
        self._conn.set_authorized_keys(account.keys if account else None)
        self._pending = account
        return True

    def auth_completed(self) -> None:
        self.account = self._pending
        log.info("login account=%s peer=%s", self._username, self._peer)

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False


def _load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        try:
            # O_EXCL: two servers started at once must not overwrite each other's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _load_or_create_host_key(path)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.export_private_key("openssh"))
        log.info("generated SFTP host key %s", path)
        return key
    if mode & 0o077:
        # As sshd does: a private key others could read may be known to others.
        raise PermissionError(
            f"SFTP host key {path} is accessible by group or others (mode {mode & 0o777:o});"
            " chmod 600 it"
        )
    return asyncssh.read_private_key(path)


class EmbeddedSftpServer:
    """An SFTP server in a background thread; ``start()`` returns once it listens."""

    def __init__(
        self,
        root_dir: Path,
        host_key_path: Path,
        accounts: list[SftpAccount],
        host: str = "127.0.0.1",
        port: int = 0,
        on_download: DownloadHook | None = None,
    ) -> None:
        """``on_download``: called with each partner's download (account root below the
        tree's: the service account's reads are the hub's own), e.g. a
        ``downloads.DownloadRecorder``."""
        self.root_dir = Path(root_dir)
        self.on_download = on_download
        self._tree = os.path.realpath(self.root_dir)  # every account root must lie inside
        self.host = host
        self.port = port
        self._requested_port = port
        self._host_key = _load_or_create_host_key(Path(host_key_path))
        algorithm, blob = self._host_key.export_public_key("openssh").decode().split()[:2]
        self.host_key_line = f"{algorithm} {blob}"
        self._lock = threading.Lock()
        self._accounts: dict[str, _Resolved] = {}
        self.set_accounts(accounts)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    # ---------------------------------------------------------------- accounts

    def add_account(self, account: SftpAccount) -> None:
        """Add or replace one account; takes effect for the next login."""
        resolved = _resolve(account, self._tree)
        with self._lock:
            self._accounts[account.name] = resolved

    def set_accounts(self, accounts: list[SftpAccount]) -> None:
        """Replace every account; sessions already logged in keep running."""
        resolved = {a.name: _resolve(a, self._tree) for a in accounts}
        with self._lock:
            self._accounts = resolved

    def _lookup(self, name: str) -> _Resolved | None:
        with self._lock:
            return self._accounts.get(name)

    # ---------------------------------------------------------------- life cycle

    def _sftp_factory(self, chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        owner = chan.get_connection().get_owner()
        assert isinstance(owner, _Connection) and owner.account is not None
        service = owner.account.root == os.fsencode(self._tree)
        return _Session(chan, owner.account, None if service else self.on_download)

    async def _listen(self) -> int:
        self._acceptor = await asyncssh.listen(
            self.host,
            self._requested_port,
            server_factory=lambda: _Connection(self),
            server_host_keys=[self._host_key],
            sftp_factory=self._sftp_factory,
            allow_scp=False,
            public_key_auth=True,
            password_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            gss_host=None,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            login_timeout=30,
            keepalive_interval=30,
        )
        return self._acceptor.get_port()

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start(self) -> EmbeddedSftpServer:
        if self._thread is not None:
            raise RuntimeError("the SFTP server is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run, args=(loop,), name="edihub-sftp", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(
                _START_TIMEOUT
            )
        except BaseException:
            self.stop()
            raise
        log.info("SFTP server listening on %s:%d", self.host, self.port)
        return self

    async def _close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        for conn in list(self._connections):
            conn.close()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), _STOP_TIMEOUT)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(_STOP_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_TIMEOUT)
            self._loop = self._thread = self._acceptor = None
            log.info("SFTP server on %s:%d stopped", self.host, self.port)

    def __enter__(self) -> EmbeddedSftpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
