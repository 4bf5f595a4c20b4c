"""Reprocessing and quarantine release: a file tried again from its archived raw bytes, and an
insurer's export published again.

A new attempt is a new ``edi.inbound_file`` row whose ``original_file_id`` is the file the
partner sent (as Mirth Connect's Original ID; an attempt at an attempt links to that first
file too). The original keeps its state, errors and acknowledgment; the attempt goes through
the same steps as a collected file (validate, load, acknowledge) under today's contracts,
registry and settings, and the sender gets the attempt's own acknowledgment.

Which files may be tried again, and why the others may not:
  rejected     ``reprocess``: nothing of it was loaded; after a registry or contract fix the
               same bytes may now load (a rejected snapshot, a file whose practitioner the
               registry did not know yet)
  quarantined  ``release``, when it was quarantined unread (its name, its size): an operator
               lets the hub read it. One quarantined for its content (a DTD) would be
               quarantined again: the sender must send a fixed file
  loaded, loaded_with_errors
               never: its records are loaded, and loading the same bytes again would load them
               twice; the records rejected from it come back in a corrected file
  duplicate    never: the file it repeats is loaded
A file has at most one attempt in flight or loaded (a unique index): two operators at once
get one attempt, and once an attempt is loaded the file is done. An attempt left in flight
by a crash is finished by the next reprocess of its file. Every new attempt is audited
(``file.reprocess``, ``file.release``) in the transaction that creates its row.

An insurer's day (``export.republish``) is the export already published for that day, put
back in the insurer's folder with the same bytes (``edihub.exports.deliver`` renders a
published file the same way every time and checks it): after the insurer lost it, or after
it left the server.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import paramiko
import psycopg2.extras

from edihub import audit, collect
from edihub.config import Settings
from edihub.exports import Published, ledger, publish
from edihub.load.db import connect
from edihub.sftp import client as sftp_client

# Quarantined without being read: what a release lets the hub read.
RELEASABLE = ("UNSAFE_NAME", "TOO_LARGE")
_LIVE = ("received", "loaded", "loaded_with_errors")
_COLUMNS = (
    "id, original_file_id, feed, sender, remote_name, remote_mtime, sha256, size_bytes, state,"
    " reason_code, archive_path, archived_at"
)


class Refused(Exception):
    """This file or export may not be tried again, and why."""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """A new attempt at ``original_id`` and how it ended."""

    original_id: int
    file_id: int
    state: str
    reason_code: str | None
    ack_path: str | None


def reprocess_file(
    sftp: paramiko.SFTPClient,
    dsn: str,
    settings: Settings,
    file_id: int,
    reason: str = "",
    actor: str | None = None,
) -> Attempt:
    """Try a rejected file again from its archive, audited as ``actor`` (default: who runs
    this, audit.current_actor)."""
    return _again(sftp, dsn, settings, file_id, "file.reprocess", reason, actor)


def release(
    sftp: paramiko.SFTPClient,
    dsn: str,
    settings: Settings,
    file_id: int,
    reason: str = "",
    actor: str | None = None,
) -> Attempt:
    """Let a file quarantined unread go through collection again, audited as ``actor``."""
    return _again(sftp, dsn, settings, file_id, "file.release", reason, actor)


def reprocess_sender_day(
    sftp: paramiko.SFTPClient,
    dsn: str,
    settings: Settings,
    sender: str,
    day: dt.date,
    reason: str = "",
) -> tuple[list[Attempt], dict[int, str]]:
    """Try again every file ``sender`` sent on ``day`` (Monaco time) that may be; return the
    attempts and, by file id, why each other file of the day was left."""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM edi.inbound_file WHERE sender = %s AND original_file_id IS NULL"
            " AND (received_at AT TIME ZONE 'Europe/Monaco')::date = %s ORDER BY id",
            (sender, day),
        )
        file_ids = [int(r[0]) for r in cur.fetchall()]
    attempts: list[Attempt] = []
    left: dict[int, str] = {}
    for file_id in file_ids:
        try:
            attempts.append(reprocess_file(sftp, dsn, settings, file_id, reason))
        except Refused as refused:
            left[file_id] = str(refused)
    return attempts, left


def quarantined(dsn: str, limit: int = 200) -> list[dict[str, Any]]:
    """The quarantined files, newest first, with their latest attempt if they were released."""
    with (
        connect(dsn) as conn,
        conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur,
    ):
        cur.execute(
            "SELECT f.id, f.feed, f.sender, f.remote_name, f.reason_code, f.received_at,"
            " a.id AS attempt_id, a.state AS attempt_state"
            " FROM edi.inbound_file f LEFT JOIN LATERAL (SELECT id, state FROM edi.inbound_file"
            "  WHERE original_file_id = f.id ORDER BY id DESC LIMIT 1) a ON true"
            " WHERE f.state = 'quarantined' AND f.original_file_id IS NULL"
            " ORDER BY f.id DESC LIMIT %s",
            (limit,),
        )
        return [dict(r) for r in cur.fetchall()]


def republish(
    sftp: paramiko.SFTPClient, dsn: str, insurer_id: str, day: dt.date, reason: str = ""
) -> Published:
    """Put the export of (insurer, day) back in the insurer's folder, the same bytes."""
    with connect(dsn) as conn, conn.cursor() as cur:
        planned = ledger.plan_of(cur, insurer_id, day)
    if planned is None or planned.state != "published":
        raise Refused(
            f"no export of {insurer_id} for {day} was published: export_insurers publishes "
            "it when it is due"
        )
    done = publish(dsn, sftp, insurer_id, day)
    # After the upload, which no transaction covers: an event means the file is there.
    with connect(dsn) as conn, conn.cursor() as cur:
        audit.record(
            cur,
            audit.current_actor(),
            "export.republish",
            done.path,
            {
                "export_id": planned.export_id,
                "insurer_id": insurer_id,
                "day": day.isoformat(),
                "sequence": done.sequence,
                "sha256": done.sha256,
                "uploaded": done.uploaded,
                "reason": reason,
            },
        )
        conn.commit()
    return done


# ---------------------------------------------------------------- one attempt


def _again(
    sftp: paramiko.SFTPClient,
    dsn: str,
    settings: Settings,
    file_id: int,
    action: str,
    reason: str,
    actor: str | None,
) -> Attempt:
    with connect(dsn) as conn, conn.cursor() as cur:
        original = _original(conn, file_id)  # locked: one reprocess of a file at a time
        cur.execute(
            "SELECT id, state FROM edi.inbound_file WHERE original_file_id = %s"
            " AND state = ANY(%s)",
            (original["id"], list(_LIVE)),
        )
        live = cur.fetchone()
        if live is not None and live[1] != "received":
            raise Refused(
                f"{_name(original)} was already tried again as {original['feed']}-{live[0]},"
                f" which is {live[1]}"
            )
        if live is not None:
            attempt_id = int(live[0])  # left in flight by a crash: finished below
        else:
            _check(original, action, settings)
            attempt_id = _new_attempt(
                sftp, cur, settings, original, action, reason, actor or audit.current_actor()
            )
        conn.commit()
    collect.validate(dsn, settings, attempt_id)
    collect.load(dsn, settings, attempt_id)
    collect.acknowledge(sftp, dsn, attempt_id)
    outcome = collect.file_summary(dsn, attempt_id)
    return Attempt(
        original["id"], attempt_id, outcome["state"], outcome["reason_code"], outcome["ack_path"]
    )


def _original(conn: Any, file_id: int) -> dict[str, Any]:
    """The file the partner sent (the one given, or the one it is an attempt at), locked."""
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM edi.inbound_file WHERE id = (SELECT coalesce("
            "original_file_id, id) FROM edi.inbound_file WHERE id = %s) FOR UPDATE",
            (file_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise Refused(f"no inbound file with id {file_id}")
    return dict(row)


def _check(original: dict[str, Any], action: str, settings: Settings) -> None:
    """Refuse what may not be tried again (the module's docstring says why)."""
    name, state, code = _name(original), original["state"], original["reason_code"]
    if state in ("loaded", "loaded_with_errors"):
        raise Refused(
            f"{name} is {state}: its records are loaded, and the same bytes again would load "
            "them twice; what was rejected from it comes back in a corrected file"
        )
    if state == "duplicate":
        raise Refused(f"{name} is a duplicate: the file it repeats is loaded")
    if state == "received" or original["archived_at"] is None:
        raise Refused(f"{name} is still being collected: not archived yet")
    if original["archive_path"].startswith("local:"):
        raise Refused(f"{name} was handed over on this machine: hand it over again")
    if action == "file.reprocess" and state != "rejected":
        raise Refused(f"{name} is {state}: release it (edihub quarantine release)")
    if action == "file.release":
        if state != "quarantined":
            raise Refused(f"{name} is {state}, not quarantined: reprocess it instead")
        if code not in RELEASABLE:
            raise Refused(
                f"{name} was quarantined for its content ({code}): the same bytes would be "
                "quarantined again; the sender must send a fixed file"
            )
        if original["size_bytes"] > settings.max_file_bytes:
            raise Refused(
                f"{name} is {original['size_bytes']} bytes, over the limit of "
                f"{settings.max_file_bytes} (EDIHUB_MAX_FILE_BYTES): raise it first"
            )


def _new_attempt(
    sftp: paramiko.SFTPClient,
    cur: Any,
    settings: Settings,
    original: dict[str, Any],
    action: str,
    reason: str,
    actor: str,
) -> int:
    """The attempt's row and its audit event (the caller commits both): the raw file fetched
    back from the archive to the landing area, checked against the sha256 it arrived with."""
    try:
        fetched = sftp_client.fetch(
            sftp, original["archive_path"], settings.landing_dir, settings.max_file_bytes
        )
    except FileNotFoundError:
        raise Refused(
            f"the archive of {_name(original)} ({original['archive_path']}) is gone: past "
            "its retention period, or removed; the sender must send the file again"
        ) from None
    if original["sha256"] and fetched.sha256 != original["sha256"].strip():
        raise Refused(
            f"the archive of {_name(original)} ({original['archive_path']}) holds other bytes "
            f"(sha256 {fetched.sha256}) than the file received: not tried again"
        )
    attempt_id = collect.register_attempt(cur, original, fetched.sha256, fetched.size)
    audit.record(
        cur,
        actor,
        action,
        str(original["id"]),
        {"new_file_id": attempt_id, "reason": reason},
    )
    return attempt_id


def _name(row: dict[str, Any]) -> str:
    return f"{row['feed']}-{row['id']} ({row['remote_name']})"


# ---------------------------------------------------------------- command line


@contextlib.contextmanager
def _sftp_from_env() -> Iterator[paramiko.SFTPClient]:
    """The hub's own SFTP account, from the variables ``edihub run`` reads for an external
    server."""
    try:
        endpoint = sftp_client.hub_endpoint_from_env()
    except ValueError as exc:
        raise SystemExit(f"edihub: {exc}") from exc
    if endpoint is None:
        raise SystemExit(
            "edihub: set EDIHUB_SFTP_HOST, EDIHUB_SFTP_KEY_FILE and EDIHUB_SFTP_HOST_KEY (and "
            "EDIHUB_SFTP_PORT, EDIHUB_SFTP_USER) for the hub's SFTP account"
        )
    with sftp_client.connect(endpoint) as sftp:
        yield sftp


def _shown(attempt: Attempt) -> str:
    code = f" ({attempt.reason_code})" if attempt.reason_code else ""
    return (
        f"{attempt.original_id} -> {attempt.file_id}: {attempt.state}{code}, ack {attempt.ack_path}"
    )


def add_arguments(sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``reprocess`` and ``quarantine`` commands on ``sub`` (the CLI's subparsers); returns
    their parsers, for the CLI to route to ``command``."""
    again = sub.add_parser(
        "reprocess",
        help="try a rejected file again from its archive, or put an insurer's export back",
        description="A new attempt is a new file linked to the original, audited "
        "(edi.audit_event). Exit status 2 if refused or not loaded.",
    )
    what = again.add_subparsers(dest="what", required=True)
    one = what.add_parser("file", help="one rejected file")
    one.add_argument("id", metavar="ID", type=int)
    sender = what.add_parser("sender", help="the files a sender sent that day (Monaco time)")
    sender.add_argument("id", metavar="PARTNER")
    insurer = what.add_parser("insurer", help="an insurer's published export of that day")
    insurer.add_argument("id", metavar="INSURER")
    for day in (sender, insurer):
        day.add_argument("--day", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
    quarantine = sub.add_parser("quarantine", help="quarantined files")
    verbs = quarantine.add_subparsers(dest="what", required=True)
    verbs.add_parser("list", help="the quarantined files, and what became of those released")
    released = verbs.add_parser("release", help="let a file quarantined unread be read")
    released.add_argument("id", metavar="ID", type=int)
    for parser in (one, sender, insurer, released):
        parser.add_argument("--reason", default="", help="why, for the audit trail")
    return again, quarantine


def command(args: argparse.Namespace, dsn: str) -> int:
    """``edihub reprocess ...`` and ``edihub quarantine ...``: 0 when every attempt loaded
    (or the export is on the server), 2 when something was refused or did not load."""
    if args.what == "list":
        for f in quarantined(dsn):
            attempt = (
                f" released as {f['attempt_id']}: {f['attempt_state']}" if f["attempt_id"] else ""
            )
            print(
                f"{f['id']} {f['feed']} {f['sender']} {f['remote_name']} {f['reason_code']}"
                f" {f['received_at']:%Y-%m-%d %H:%M}{attempt}"
            )
        return 0
    settings = Settings.from_env()
    try:
        with _sftp_from_env() as sftp:
            if args.what == "insurer":
                done = republish(sftp, dsn, args.id, args.day, args.reason)
                state = "uploaded" if done.uploaded else "already on the server"
                print(f"{done.path}: {state}, sha256 {done.sha256}")
                return 0
            if args.what == "sender":
                attempts, left = reprocess_sender_day(
                    sftp, dsn, settings, args.id, args.day, args.reason
                )
                for file_id, why in left.items():
                    print(f"{file_id}: left, {why}")
            else:
                again = release if args.what == "release" else reprocess_file
                attempts = [again(sftp, dsn, settings, args.id, args.reason)]
    except Refused as refused:
        print(f"edihub: refused: {refused}")
        return 2
    for attempt in attempts:
        print(_shown(attempt))
    loaded = all(a.state in ("loaded", "loaded_with_errors") for a in attempts)
    return 0 if loaded else 2
