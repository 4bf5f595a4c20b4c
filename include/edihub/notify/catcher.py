"""A local SMTP catcher: the mail server of the embedded default and of the tests.

It speaks real SMTP over TCP (aiosmtpd, in a thread of its own) on 127.0.0.1 and keeps every
message it accepts as an ``.eml`` file in a folder, with the envelope's sender and recipients
in ``Return-Path`` and ``Delivered-To`` headers, as a mailbox would. ``messages()`` reads them
back. For the failure paths it can refuse given recipients (550: a bounce; 4xx: try later),
hold messages (a client stuck in DATA, to kill it there), slow down, and be stopped and
started again on the same port (the server down, then back).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import itertools
import logging
import os
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from edihub.notify.mail import SmtpSettings

log = logging.getLogger(__name__)

DEFAULT_SENDER = "Caisses Sociales de Monaco <releves@edihub.invalid>"
_START_TIMEOUT = 10.0


class _Handler:
    """aiosmtpd hooks; runs in the catcher's event loop."""

    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        code = self.catcher.refused.get(address.lower())
        if code is not None:
            if code >= 500:
                return f"{code} 5.1.1 <{address}>: mailbox unavailable"
            return f"{code} 4.2.1 <{address}>: mailbox temporarily unavailable, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        catcher = self.catcher
        if catcher.delay_seconds:
            await asyncio.sleep(catcher.delay_seconds)
        if catcher.hold_from is not None and catcher.accepted >= catcher.hold_from:
            catcher.holding.set()
            while not catcher.released.is_set():  # cancelled when the client goes away
                await asyncio.sleep(0.02)
            return "451 4.3.0 held by the catcher, try again later"
        name = catcher.store(envelope)
        return f"250 2.0.0 OK queued as {name}"


class MailCatcher:
    """``MailCatcher(folder).start()``, then ``.host``/``.port`` (port 0: a free one, kept
    for a restart), ``.messages()``, and ``.stop()``."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = Path(folder)
        self.host, self.port = host, port
        self.refused: dict[str, int] = {}  # recipient (lower case) -> the reply code to RCPT
        self.delay_seconds = 0.0
        self.hold_from: int | None = None
        self.holding = threading.Event()  # set once a message is being held
        self.released = threading.Event()
        self.accepted = 0
        self._sequence = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sessions: set[SMTP] = set()

    # ---------------------------------------------------------------- life

    def start(self) -> MailCatcher:
        if self._thread is not None:
            raise RuntimeError("the mail catcher is already running")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sequence = itertools.count(len(self._files()) + 1)  # a restart keeps numbering
        loop = asyncio.new_event_loop()
        started: list[BaseException | None] = []
        ready = threading.Event()
        thread = threading.Thread(
            target=self._serve, args=(loop, ready, started), name="mail-catcher", daemon=True
        )
        thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError(f"the mail catcher did not start on {self.host}:{self.port}")
        if started[0] is not None:
            thread.join(_START_TIMEOUT)
            raise started[0]
        self._loop, self._thread = loop, thread
        log.info("mail catcher listening on %s:%d, mailbox %s", self.host, self.port, self.folder)
        return self

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        started: list[BaseException | None],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            # reuse_address: a restart binds the same port at once, despite TIME_WAIT sockets.
            self._server = loop.run_until_complete(
                loop.create_server(self._session, self.host, self.port, reuse_address=True)
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
            started.append(None)
        except BaseException as exc:
            started.append(exc)
            loop.close()
            return
        finally:
            ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for session in list(self._sessions):  # the server down means its sessions too
                if session.transport is not None:
                    session.transport.abort()
            loop.run_until_complete(self._server.wait_closed())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def _session(self) -> SMTP:
        # Called in the catcher's thread, whose event loop aiosmtpd picks up.
        return _TrackedSMTP(self, _Handler(self), hostname="mail-catcher")

    def stop(self) -> None:
        """Stop listening and drop the open sessions; ``start()`` again takes the same port."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self.released.set()  # a held message is answered 451, not left hanging
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT)
        self._loop = self._thread = self._server = None
        log.info("mail catcher on %s:%d stopped", self.host, self.port)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def smtp_settings(self, sender: str = DEFAULT_SENDER, **changes: Any) -> SmtpSettings:
        """Settings that send to this catcher: plain SMTP, which only loopback may carry."""
        return SmtpSettings(
            host=self.host, port=self.port, sender=sender, starttls=False, ssl=False, **changes
        )

    # ---------------------------------------------------------------- behaviour

    def refuse(self, *recipients: str, code: int = 550) -> None:
        """Answer RCPT TO for these addresses with ``code`` (5xx: a bounce; 4xx: later)."""
        if not 400 <= code < 600:
            raise ValueError(f"a refusal is a 4xx or 5xx reply, not {code}")
        for recipient in recipients:
            self.refused[recipient.lower()] = code

    def accept_all(self) -> None:
        self.refused.clear()

    def hold_after(self, count: int) -> None:
        """Accept ``count`` more messages, then keep the next client waiting in DATA until
        ``release()`` (then answer 451): a sender to kill mid-batch."""
        self.holding.clear()
        self.released.clear()
        self.hold_from = self.accepted + count

    def release(self) -> None:
        self.hold_from = None
        self.released.set()

    # ---------------------------------------------------------------- mailbox

    def store(self, envelope: Envelope) -> str:
        """Keep an accepted message; the file appears whole (written aside, then renamed)."""
        name = f"{next(self._sequence):06d}.eml"
        content = envelope.original_content or b""
        trace = f"Return-Path: <{envelope.mail_from}>\r\n" + "".join(
            f"Delivered-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos
        )
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(trace.encode("ascii", "replace") + content)
        os.replace(tmp, self.folder / name)
        self.accepted += 1
        return name

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml")) if self.folder.is_dir() else []

    def messages(self) -> list[EmailMessage]:
        """Every message received, oldest first, parsed."""
        parsed = []
        for path in self._files():
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages once there are at least ``count`` of them (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self._files()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages()


class _TrackedSMTP(SMTP):
    """An SMTP session the catcher can drop when it stops."""

    def __init__(self, catcher: MailCatcher, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._catcher = catcher

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._catcher._sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._catcher._sessions.discard(self)
        with contextlib.suppress(AssertionError):  # aiosmtpd asserts on a half-made session
            super().connection_lost(error)
