"""``edihub partners``: change one partner of the registry without hand-writing a snapshot.

The registry stays the single source of the partners' accounts, keys, schedules and formats:
a change is a new snapshot of the document it touches (``insurer``, ``practitioner``,
``pharmacy``, ``employer`` or ``sftp_key``), the current rows with the change applied, written
by ``registry_writer.write_snapshot`` and loaded by ``collect.ingest_local`` as if the core
systems' account had sent it. The same format and data contracts decide; a refused change
leaves the registry as it was, with the contract's errors to show; the history
(``edi.registry_history``) keeps the version it replaced.

A snapshot is dated today (the hub's clock), or the day after the newest snapshot of its
document when one of today is already loaded: the contract (REG-F02) wants each snapshot
strictly newer. A date past today makes the core systems' own snapshots up to that date
refused as not more recent, so the command says so. The core systems' next snapshot replaces
the whole document: a change they do not also make lasts until then.

Every change is audited (``partner.add``, ``partner.change``, ``partner.suspend``,
``partner.resume``, ``partner.rotate_key``; before/after of the changed fields, a key only by
its fingerprint). ``ingest_local`` commits the load in transactions of its own, so the event is
recorded right after the load committed, on a connection holding this module's advisory lock
from the read of the current rows to the event's commit: changes are serialised (none is
built on rows another one is replacing), and the snapshot file itself (kept under
``<state>/partner_changes/<stamp>-<action>-<actor>/``, its row in ``edi.inbound_file``) names
the change should the process die between the two commits.

After a change, the OpenSSH configuration is written again (``sshd_config.generate``) when a
folder is given for it, each account's folders are created in the SFTP tree when one is given,
and ``follow_sshd_config`` keeps an embedded SFTP server's accounts in step with that folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from psycopg2 import sql

from edihub import audit, clock
from edihub.config import Settings
from edihub.formats.contract import FormatContract, feed_formats
from edihub.load.db import connect
from edihub.registry_writer import write_snapshot
from edihub.sftp import layout, sshd_config

if TYPE_CHECKING:
    from edihub.sftp.server import EmbeddedSftpServer, SftpAccount

log = logging.getLogger(__name__)

# The partner kinds, each its own registry document (keyed <kind>_id). A sender is its own
# SFTP account; an insurer's account is its sftp_account.
KINDS = ("insurer", "practitioner", "pharmacy", "employer")
INSURER = "insurer"
KEYS = "sftp_key"
_ACTIVE, _PAUSED = "active", "paused"
# Serialises partner changes (pg_advisory_lock): "partners" in ASCII.
_LOCK = 0x7061_7274_6E65_7273
DEFAULT_KEEP_OLD_DAYS = 7
Row = dict[str, str | None]  # a registry row as its snapshot's cells hold it (None: empty)


class PartnerError(Exception):
    """A change refused: before any snapshot was written, or by the registry's contracts."""


@dataclasses.dataclass(frozen=True)
class Change:
    """What an operation makes of a document's current rows."""

    document: str
    rows: list[Row]
    action: str
    subject: str
    detail: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Applied:
    """A change loaded: its snapshot, the file's id, the audit event's id, what to know."""

    change: Change
    snapshot: Path
    file_id: int
    event_id: int
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SftpFollowUp:
    """Where the SFTP side of a change goes: the OpenSSH configuration's folder (as written by
    ``edihub sftp sshd-config``, same root and service account) and the local SFTP tree."""

    config_dir: Path | None = None
    root: PurePosixPath = sshd_config.FILESYSTEM_ROOT
    service: sshd_config.ServiceAccount | None = None
    tree: Path | None = None


# ---------------------------------------------------------------- the registry as it stands


def _format(settings: Settings, document: str) -> FormatContract:
    return next(f for f in feed_formats(settings.formats_dir, "registry") if f.document == document)


def _columns(fmt: FormatContract) -> list[str]:
    return [f.name for f in fmt.record.fields]


def _text(value: Any) -> str | None:
    """A value of ``to_jsonb`` as the snapshot's CSV cell holds it."""
    if value is None or isinstance(value, str):
        return value
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def current_rows(cur: Any, fmt: FormatContract) -> list[Row]:
    """The document's current rows, as text, in key order."""
    keys = fmt.record.snapshot_key
    cur.execute(
        sql.SQL("SELECT to_jsonb(t) FROM {} t ORDER BY {}").format(
            sql.Identifier("edi", f"registry_{fmt.record.table}"),
            sql.SQL(", ").join(sql.Identifier("t", k) for k in keys),
        )
    )
    columns = _columns(fmt)
    return [{c: _text(row.get(c)) for c in columns} for (row,) in cur.fetchall()]


def _parsed(line: str | None) -> sshd_config.ParsedKey | None:
    try:
        return sshd_config.parse_public_key(line or "")
    except ValueError:
        return None  # a row the generator leaves out; shown and kept as it is


def _fingerprint(line: str | None) -> str:
    parsed = _parsed(line)
    return parsed.fingerprint if parsed else "(not a valid key)"


@dataclasses.dataclass(frozen=True)
class Partner:
    """A partner's current row in its kind's document."""

    kind: str
    row: Row

    @property
    def id(self) -> str:
        return str(self.row[f"{self.kind}_id"])

    @property
    def account(self) -> str:
        return str(self.row["sftp_account"] if self.kind == INSURER else self.id)


def partners(cur: Any, settings: Settings, kind: str | None = None) -> list[Partner]:
    return [
        Partner(k, row)
        for k in KINDS
        if kind in (None, k)
        for row in current_rows(cur, _format(settings, k))
    ]


def find(cur: Any, settings: Settings, partner_id: str, kind: str | None = None) -> Partner:
    found = [p for p in partners(cur, settings, kind) if p.id == partner_id]
    if not found:
        raise PartnerError(f"no {kind or 'partner'} {partner_id!r} in the registry")
    if len(found) > 1:
        kinds = ", ".join(p.kind for p in found)
        raise PartnerError(f"{partner_id!r} is a {kinds}: say which with --kind")
    return found[0]


# ---------------------------------------------------------------- changes


def _assignments(fmt: FormatContract, values: dict[str, str]) -> Row:
    columns = _columns(fmt)
    unknown = sorted(set(values) - set(columns))
    if unknown:
        raise PartnerError(
            f"{', '.join(unknown)}: not a field of the {fmt.document} document"
            f" ({', '.join(columns)})"
        )
    return {k: v or None for k, v in values.items()}  # field= empties an optional field


def add(cur: Any, settings: Settings, kind: str, partner_id: str, values: dict[str, str]) -> Change:
    fmt = _format(settings, kind)
    rows = current_rows(cur, fmt)
    id_field = f"{kind}_id"
    if any(r[id_field] == partner_id for r in rows):
        raise PartnerError(f"{kind} {partner_id!r} is already in the registry: change it instead")
    row = {c: None for c in _columns(fmt)} | _assignments(fmt, values) | {id_field: partner_id}
    after = {k: v for k, v in row.items() if v is not None}
    return Change(kind, [*rows, row], "partner.add", partner_id, {"kind": kind, "after": after})


def change(
    cur: Any,
    settings: Settings,
    partner_id: str,
    values: dict[str, str],
    kind: str | None = None,
    action: str = "partner.change",
) -> Change:
    partner = find(cur, settings, partner_id, kind)
    fmt = _format(settings, partner.kind)
    assigned = _assignments(fmt, values)
    if f"{partner.kind}_id" in assigned:
        raise PartnerError("a partner's id is not changed: add the new one, then drop the old")
    changed = {k: v for k, v in assigned.items() if partner.row[k] != v}
    if not changed:
        raise PartnerError(f"{partner.kind} {partner_id} already has {_shown(assigned)}")
    rows = [
        r | changed if r[f"{partner.kind}_id"] == partner_id else r for r in current_rows(cur, fmt)
    ]
    detail = {
        "kind": partner.kind,
        "before": {k: partner.row[k] for k in changed},
        "after": changed,
    }
    return Change(partner.kind, rows, action, partner_id, detail)


def _shown(values: Row) -> str:
    return ", ".join(f"{k}={v or ''}" for k, v in values.items())


def _key_rows(cur: Any, settings: Settings) -> list[Row]:
    return current_rows(cur, _format(settings, KEYS))


def _expiring(
    rows: list[Row], account: str, until: Callable[[Row], str | None]
) -> tuple[list[Row], dict[str, Any], dict[str, Any]]:
    """``rows`` with each key of ``account`` given the expiry ``until(row)``; the before and
    after of the keys that changed, by fingerprint."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    out = []
    for row in rows:
        expires_on = until(row) if row["sftp_account"] == account else row["expires_on"]
        if expires_on != row["expires_on"]:
            fingerprint = _fingerprint(row["public_key"])
            before[fingerprint] = {"expires_on": row["expires_on"]}
            after[fingerprint] = {"expires_on": expires_on}
            row = row | {"expires_on": expires_on}
        out.append(row)
    return out, before, after


def _in_force(expires_on: str | None, today: dt.date) -> bool:
    return expires_on is None or dt.date.fromisoformat(expires_on) > today


def suspend(cur: Any, settings: Settings, partner_id: str, kind: str | None = None) -> Change:
    """An insurer is paused (its exports stop; it can still fetch what it has); a sender's
    keys expire today (its account leaves the SFTP configuration)."""
    partner = find(cur, settings, partner_id, kind)
    if partner.kind == INSURER:
        if partner.row["status"] != _ACTIVE:
            raise PartnerError(f"insurer {partner_id} is {partner.row['status']}, not active")
        return change(cur, settings, partner_id, {"status": _PAUSED}, INSURER, "partner.suspend")
    today = dt.date.today()  # key validity is about the real world (edihub.clock)
    rows, before, after = _expiring(
        _key_rows(cur, settings),
        partner.account,
        lambda r: today.isoformat() if _in_force(r["expires_on"], today) else r["expires_on"],
    )
    if not after:
        raise PartnerError(f"{partner.kind} {partner_id} has no key in force: nothing to suspend")
    detail = {"kind": partner.kind, "account": partner.account, "before": before, "after": after}
    return Change(KEYS, rows, "partner.suspend", partner_id, detail)


def resume(cur: Any, settings: Settings, partner_id: str, kind: str | None = None) -> Change:
    """An insurer is active again; a sender's keys get back the expiry they had before its
    last suspension (from that event), those still as the suspension left them."""
    partner = find(cur, settings, partner_id, kind)
    if partner.kind == INSURER:
        if partner.row["status"] == _ACTIVE:
            raise PartnerError(f"insurer {partner_id} is already active")
        return change(cur, settings, partner_id, {"status": _ACTIVE}, INSURER, "partner.resume")
    last = audit.events(cur, subject=partner_id, action="partner.suspend", limit=1)
    if not last:
        raise PartnerError(f"{partner.kind} {partner_id} was never suspended")
    suspended = last[0]["detail"]
    rows = _key_rows(cur, settings)
    as_left = {
        _fingerprint(r["public_key"]): r["expires_on"]
        for r in rows
        if r["sftp_account"] == partner.account
    }
    restore = {
        fp: was["expires_on"]
        for fp, was in suspended["before"].items()
        if fp in as_left and as_left[fp] == suspended["after"][fp]["expires_on"]
    }
    if not restore:
        raise PartnerError(f"{partner.kind} {partner_id}: no key is as its suspension left it")
    rows, before, after = _expiring(
        rows,
        partner.account,
        lambda r: restore.get(_fingerprint(r["public_key"]), r["expires_on"]),
    )
    detail = {"kind": partner.kind, "account": partner.account, "before": before, "after": after}
    return Change(KEYS, rows, "partner.resume", partner_id, detail)


def read_public_key(path: Path) -> str:
    """The one public key line of ``path``, checked as the SSH server will read it; a private
    key is refused without a byte of it shown."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise PartnerError(f"{path}: {exc.strerror}") from exc
    if "PRIVATE KEY" in text:
        raise PartnerError(f"{path} is a private key: give its public key (.pub) instead")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1:
        raise PartnerError(f"{path}: one public key line expected, found {len(lines)}")
    try:
        sshd_config.parse_public_key(lines[0])
    except ValueError as exc:
        raise PartnerError(f"{path}: {exc}") from exc
    return lines[0]


def rotate_key(
    cur: Any,
    settings: Settings,
    account: str,
    public_key: str,
    keep_old_days: int = DEFAULT_KEEP_OLD_DAYS,
) -> Change:
    """Add ``public_key`` to ``account``; its keys in force expire in ``keep_old_days`` days
    (0: today), time for the partner to switch."""
    if keep_old_days < 0:
        raise PartnerError("--keep-old-days is a number of days, 0 or more")
    owners = {name for _, name in sshd_config.registry_accounts(cur, settings)}
    if account not in owners:
        raise PartnerError(f"{account!r} is no account of the registry or of the funds")
    new = sshd_config.parse_public_key(public_key)
    rows = _key_rows(cur, settings)
    for row in rows:
        held = _parsed(row["public_key"])
        if held and held.blob == new.blob:
            raise PartnerError(f"key {new.fingerprint} is already listed for {row['sftp_account']}")
    today = dt.date.today()
    until = (today + dt.timedelta(days=keep_old_days)).isoformat()
    rows, before, after = _expiring(
        rows,
        account,
        # ISO dates compare as text; a key due to expire sooner keeps its date
        lambda r: until if r["expires_on"] is None or r["expires_on"] > until else r["expires_on"],
    )
    rows.append(
        {"sftp_account": account, "public_key": public_key,
         "added_on": today.isoformat(), "expires_on": None}
    )  # fmt: skip
    after[new.fingerprint] = {"added_on": today.isoformat(), "expires_on": None}
    subject = next(
        (p.id for p in partners(cur, settings) if p.account == account),
        account,  # the funds' own accounts are their own subject
    )
    detail = {"account": account, "before": before, "after": after}
    return Change(KEYS, rows, "partner.rotate_key", subject, detail)


# ---------------------------------------------------------------- loading a change


def snapshot_day(cur: Any, document: str, today: dt.date) -> dt.date:
    """Today, or the day after the newest snapshot of ``document`` if it is today or later."""
    cur.execute(
        "SELECT max(snapshot_date) FROM edi.registry_snapshot WHERE document = %s", (document,)
    )
    newest = cur.fetchone()[0]
    return today if newest is None or newest < today else newest + dt.timedelta(days=1)


def _refusal(cur: Any, file_id: int, summary: dict[str, Any]) -> str:
    cur.execute(
        "SELECT rule, field, value, message FROM edi.file_error WHERE file_id = %s"
        " ORDER BY seq LIMIT 5",
        (file_id,),
    )
    errors = [
        f"{rule} {value or field or ''}: {message}"  # value: field=value as the file held it
        for rule, field, value, message in cur.fetchall()
    ]
    head = f"{summary['remote_name']} {summary['state']} ({summary['reason_code']}, file {file_id})"
    return "\n  ".join([f"refused by the registry's contracts: {head}", *errors])


def apply(
    dsn: str,
    settings: Settings,
    build: Callable[[Any], Change],
    actor: str | None = None,
) -> Applied:
    """Build a change from the registry as it stands, load it as a new snapshot, audit it;
    serialised with every other partner change."""
    from edihub.collect import file_summary, ingest_local  # pyarrow: not for every CLI call

    actor = actor or audit.current_actor()
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))  # released when conn closes
        change = build(cur)
        today = clock.monaco_today()
        day = snapshot_day(cur, change.document, today)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_actor = "".join(c if c.isalnum() else "_" for c in actor)[:32]
        folder = settings.state_dir / "partner_changes" / f"{stamp}-{change.action}-{safe_actor}"
        # A new date, so a new file even when a change brings back an earlier content
        # (suspend, then resume): a snapshot's identity includes its name (collect).
        path = write_snapshot(folder, change.document, day, change.rows)
        conn.commit()
        file_id = ingest_local(dsn, settings, "registry", path, settings.registry_senders[0])
        summary = file_summary(dsn, file_id)
        if summary["state"] != "loaded":
            raise PartnerError(_refusal(cur, file_id, summary))
        detail = change.detail | {"snapshot": path.name, "file_id": file_id}
        event_id = audit.record(cur, actor, change.action, change.subject, detail)
        conn.commit()
    notes = ()
    if day > today:
        notes = (
            f"dated {day} (the {change.document} snapshot of {day - dt.timedelta(days=1)} is "
            f"loaded): the core systems' {change.document} snapshots up to {day} will be "
            "refused as not more recent (REG-F02)",
        )
    return Applied(change, path, file_id, event_id, notes)


# ---------------------------------------------------------------- the SFTP side


def _make_folders(tree: Path, account: str, folders: Iterable[str]) -> None:
    home = tree / layout.partner_root(account).lstrip("/")
    for folder in folders:
        (home / folder).mkdir(parents=True, exist_ok=True)


def follow_up(dsn: str, settings: Settings, sftp: SftpFollowUp) -> sshd_config.SshdPlan | None:
    """The OpenSSH configuration written again from the registry, and every account's folders
    created in the local tree; None when no configuration folder is set."""
    if sftp.config_dir is None:
        return None
    plan, _ = sshd_config.generate(
        dsn, settings, sftp.config_dir, root=sftp.root, service=sftp.service
    )
    if sftp.tree is not None:
        for account in plan.accounts:
            _make_folders(sftp.tree, account.name, account.folders)
    return plan


def embedded_accounts(config_dir: Path, tree: Path) -> list[SftpAccount]:
    """The accounts of a configuration folder (``accounts.tsv``, ``authorized_keys/``) as the
    embedded server takes them, chrooted in ``tree``; their folders created."""
    from edihub.sftp.server import SftpAccount

    accounts = []
    lines = (config_dir / "accounts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for line in lines:
        name, _, access, folders = line.split("\t")
        keys = (config_dir / "authorized_keys" / name).read_text(encoding="utf-8").splitlines()
        if access == sshd_config.SERVICE:
            accounts.append(SftpAccount(name, tree, keys))
            continue
        _make_folders(tree, name, folders.split(","))
        accounts.append(SftpAccount(name, tree / layout.partner_root(name).lstrip("/"), keys))
    return accounts


def follow_sshd_config(
    server: EmbeddedSftpServer,
    config_dir: Path,
    tree: Path,
    own: Sequence[SftpAccount] = (),
    interval: float = 0.5,
) -> Callable[[], None]:
    """Keep ``server``'s accounts those of ``config_dir`` (plus ``own``, such as the hub's),
    read again whenever ``accounts.tsv`` or a key file changes; returns the function that
    stops following. The embedded server's counterpart of reloading sshd."""
    stop = threading.Event()

    def signature() -> tuple[tuple[str, int, int], ...]:
        files = [config_dir / "accounts.tsv", *sorted((config_dir / "authorized_keys").glob("*"))]
        return tuple((f.name, s.st_mtime_ns, s.st_size) for f in files if (s := _stat(f)))

    def load() -> None:
        server.set_accounts([*own, *embedded_accounts(config_dir, tree)])

    seen = signature()
    if seen:
        load()

    def run() -> None:
        nonlocal seen
        while not stop.wait(interval):
            now = signature()
            if now != seen:
                try:
                    load()
                    seen = now
                except (OSError, ValueError) as exc:  # half-written: read again next turn
                    log.warning("SFTP accounts from %s not reloaded: %s", config_dir, exc)

    threading.Thread(target=run, name="edihub-sftp-follow", daemon=True).start()
    return stop.set


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------- the command line


def _sftp_follow_up(args: Any) -> SftpFollowUp:
    try:
        service = sshd_config.service_account(args.service_account, args.service_key)
    except (sshd_config.SshdConfigError, OSError) as exc:
        raise PartnerError(str(exc)) from exc
    return SftpFollowUp(args.sshd_config_dir, args.root, service, args.sftp_tree)


def _values(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            raise PartnerError(f"{pair!r}: write FIELD=VALUE (FIELD= to empty a field)")
        values[name] = value
    return values


def _build(args: Any, settings: Settings) -> Callable[[Any], Change]:
    kind = getattr(args, "kind", None)
    if args.action == "add":
        values = _values(args.values)
        return lambda cur: add(cur, settings, args.partner_kind, args.id, values)
    if args.action == "change":
        values = _values(args.values)
        return lambda cur: change(cur, settings, args.id, values, kind)
    if args.action == "suspend":
        return lambda cur: suspend(cur, settings, args.id, kind)
    if args.action == "resume":
        return lambda cur: resume(cur, settings, args.id, kind)
    key = read_public_key(args.key)
    return lambda cur: rotate_key(cur, settings, args.account, key, args.keep_old_days)


def _print_list(cur: Any, settings: Settings, kind: str | None) -> None:
    keys = _key_rows(cur, settings)
    today = dt.date.today()
    in_force: dict[str, int] = {}
    for row in keys:
        if _in_force(row["expires_on"], today):
            in_force[str(row["sftp_account"])] = in_force.get(str(row["sftp_account"]), 0) + 1
    print("kind\tid\taccount\tkeys\tstatus\texport_format\texport_time\tname")
    for p in partners(cur, settings, kind):
        insurer = [p.row.get(c) or "" for c in ("status", "export_format", "export_time")]
        keys = str(in_force.get(p.account, 0))
        cells = [p.kind, p.id, p.account, keys, *insurer, p.row["name"] or ""]
        print("\t".join(cells))


def _print_show(cur: Any, settings: Settings, partner: Partner) -> None:
    print(f"{partner.kind} {partner.id}")
    for name, value in partner.row.items():
        print(f"  {name}: {value or ''}")
    today = dt.date.today()
    held = [r for r in _key_rows(cur, settings) if r["sftp_account"] == partner.account]
    print(f"  SFTP account {partner.account}, keys:{'' if held else ' none'}")
    for row in held:
        state = "in force" if _in_force(row["expires_on"], today) else "expired"
        print(
            f"    {_fingerprint(row['public_key'])} added {row['added_on']}"
            f" expires {row['expires_on'] or 'never'} ({state})"
        )


def _print_audit(cur: Any, subject: str | None) -> None:
    for event in reversed(audit.events(cur, subject=subject, action="partner.")):
        detail = {k: v for k, v in event["detail"].items() if k not in ("kind", "account")}
        print(
            f"{event['at']:%Y-%m-%d %H:%M:%S%z}\t{event['actor']}\t{event['action']}"
            f"\t{event['subject']}\t{json.dumps(detail, sort_keys=True)}"
        )


def run_command(args: Any, dsn: str) -> int:
    """``edihub partners ...``: 2 when the change is refused, 1 when it is loaded but the SFTP
    configuration could not be written."""
    settings = Settings.from_env()
    try:
        if args.action in ("list", "show", "audit"):
            with connect(dsn) as conn, conn.cursor() as cur:
                if args.action == "list":
                    _print_list(cur, settings, args.kind)
                elif args.action == "show":
                    _print_show(cur, settings, find(cur, settings, args.id, args.kind))
                else:
                    _print_audit(cur, args.id)
                conn.rollback()
            return 0
        sftp = _sftp_follow_up(args)
        applied = apply(dsn, settings, _build(args, settings))
    except PartnerError as exc:
        print(f"edihub partners: {exc}", file=sys.stderr)
        return 2
    change = applied.change
    print(
        f"{change.action} {change.subject}: {applied.snapshot.name} loaded as registry-"
        f"{applied.file_id} ({applied.snapshot}), audit event {applied.event_id}"
    )
    for note in applied.notes:
        print(f"  note: {note}")
    try:
        plan = follow_up(dsn, settings, sftp)
    except (sshd_config.SshdConfigError, OSError) as exc:
        print(
            f"edihub partners: the change is loaded, but the SFTP configuration was not "
            f"written ({exc}): run edihub sftp sshd-config",
            file=sys.stderr,
        )
        return 1
    if plan is not None:
        print(f"{sftp.config_dir}: SFTP configuration written again; {plan.summary()}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``edihub partners`` subcommands, on ``parser``."""
    sub = parser.add_subparsers(dest="action", required=True)
    env = os.environ.get

    def env_path(name: str) -> Path | None:
        return Path(env(name)) if env(name) else None

    changes = argparse.ArgumentParser(add_help=False)
    changes.add_argument(
        "--sshd-config-dir",
        type=Path,
        default=env_path("EDIHUB_SSHD_CONFIG_DIR"),
        metavar="DIR",
        help="write the SFTP configuration again there, as edihub sftp sshd-config --out DIR "
        "(default: EDIHUB_SSHD_CONFIG_DIR; unset: not written)",
    )
    changes.add_argument(
        "--root",
        type=PurePosixPath,
        default=PurePosixPath(env("EDIHUB_SSHD_ROOT") or "/"),
        help="as edihub sftp sshd-config --root (default: EDIHUB_SSHD_ROOT, else /)",
    )
    changes.add_argument(
        "--service-account",
        default=env("EDIHUB_SSHD_SERVICE_ACCOUNT"),
        help="as edihub sftp sshd-config (default: EDIHUB_SSHD_SERVICE_ACCOUNT)",
    )
    changes.add_argument(
        "--service-key",
        type=Path,
        default=env_path("EDIHUB_SSHD_SERVICE_KEY"),
        help="(default: EDIHUB_SSHD_SERVICE_KEY)",
    )
    changes.add_argument(
        "--sftp-tree",
        type=Path,
        default=env_path("EDIHUB_SFTP_TREE"),
        metavar="DIR",
        help="the SFTP tree on this machine (holding partners/): each account's folders are "
        "created there (default: EDIHUB_SFTP_TREE; unset: none)",
    )
    by_kind = argparse.ArgumentParser(add_help=False)
    by_kind.add_argument("--kind", choices=KINDS, help="when the id is of two kinds of partner")
    fields = "FIELD=VALUE: a column of the registry document (formats/registry/v1)"

    listing = sub.add_parser("list", help="the partners, their accounts and keys in force")
    listing.add_argument("--kind", choices=KINDS)
    sub.add_parser("show", parents=[by_kind], help="one partner and its keys").add_argument("id")
    sub.add_parser("audit", help="the trail of partner changes").add_argument("id", nargs="?")
    new = sub.add_parser("add", parents=[changes], help="add a partner (a new snapshot)")
    new.add_argument("partner_kind", choices=KINDS, metavar="KIND")
    new.add_argument("id")
    new.add_argument("values", nargs="+", metavar="FIELD=VALUE", help=fields)
    edit = sub.add_parser("change", parents=[changes, by_kind], help="change a partner's fields")
    edit.add_argument("id")
    edit.add_argument("values", nargs="+", metavar="FIELD=VALUE", help=fields)
    for name, what in (
        ("suspend", "pause an insurer's exports; expire a sender's keys today"),
        ("resume", "an insurer active again; a sender's keys as before its suspension"),
    ):
        sub.add_parser(name, parents=[changes, by_kind], help=what).add_argument("id")
    rotate = sub.add_parser(
        "rotate-key",
        parents=[changes],
        help="add a public key to an account; its keys in force expire after a grace period",
    )
    rotate.add_argument("account")
    rotate.add_argument("--key", type=Path, required=True, metavar="FILE", help="the .pub file")
    rotate.add_argument(
        "--keep-old-days",
        type=int,
        default=DEFAULT_KEEP_OLD_DAYS,
        metavar="N",
        help=f"the old keys are refused from today + N on (default {DEFAULT_KEEP_OLD_DAYS})",
    )
