"""Retention: what the hub holds is kept for a configured period, then purged, each purge in
the audit trail (``retention.purge``, actor ``edihub``).

What is not on the server cannot be stolen from it (the 2023 MOVEit lesson): an insurer's
export and its manifest leave its SFTP folder once the insurer has downloaded the whole file
(``export.download`` with at least the file's bytes, see ``edihub.sftp.downloads``) and the
grace period has passed, or once they reach the maximum age, downloaded or not (another check
alerts an insurer that does not pull its file long before). Then, past their periods: the
inbound archive (each partner's raw files on the SFTP server, by day of receipt, and their
landing copies in the state folder), the copies of the e-mails sent that the embedded relay
keeps (``<state>/mail``) and the e-mail addresses on the statements they were sent to, the
leftovers of crashed steps (``.fetch-*.tmp`` landing files, the work folders of files whose
outcome is decided), and whole months of the database: of the audit trail, and of the message
store (every table a file fills: its records, errors and rule results, partitioned by the
month of the file's receipt, migration 0021). Months are partitions dropped, never rows
deleted; a file whose month went keeps its row in ``edi.inbound_file`` (``data_purged_at``).

Periods, in days, from the environment (defaults in ``RetentionPolicy``)::

    EDIHUB_RETAIN_INBOUND_DAYS       inbound files: archive, landing copies, data     3650
    EDIHUB_RETAIN_EXPORT_GRACE_DAYS  an export on the server after its download          3
    EDIHUB_RETAIN_EXPORT_MAX_DAYS    an export on the server, downloaded or not         30
    EDIHUB_RETAIN_MAIL_DAYS          statement e-mails: copies, addresses once used    90
    EDIHUB_RETAIN_AUDIT_DAYS         audit events (whole months past it are dropped)  3650
    EDIHUB_RETAIN_TEMP_DAYS          leftovers of crashed steps                          2

Times are compared with the clock that wrote them: the hub's (``edihub.clock``) for a file's
receipt, a statement's delivery and an export's publication, the database's for audit events
(downloads included) and the files' own times for local leftovers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import posixpath
import shutil
import stat
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import paramiko
from psycopg2 import sql

from edihub import audit, clock
from edihub.collect import FINAL_STATES
from edihub.config import Settings, env_fields
from edihub.load import RECEIPT_MONTH
from edihub.load.db import connect
from edihub.sftp import client, downloads, layout
from edihub.sftp.downloads import MANIFEST_SUFFIX

log = logging.getLogger(__name__)

ACTION = "retention.purge"
MAIL_FOLDER = "mail"  # the embedded relay's mailbox in the state folder (notify.catcher)
AUDIT_TRAIL = "edi.audit_event"  # partitioned by month of ``at``, the database's clock
MONTHS_AHEAD = 3  # partitions created ahead, so that no row lands in a default one
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of data is kept, in days."""

    inbound_days: int = 3650
    export_grace_days: int = 3
    export_max_days: int = 30
    mail_days: int = 90
    audit_days: int = 3650
    temp_days: int = 2

    def __post_init__(self) -> None:
        for item in fields(self):
            if getattr(self, item.name) < 0:
                raise ValueError(f"retention: {item.name} must be 0 or more days")
        if self.export_max_days < self.export_grace_days:
            raise ValueError("retention: export_max_days is shorter than export_grace_days")
        if self.temp_days < 1:  # younger leftovers may belong to a step still running
            raise ValueError("retention: temp_days must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetentionPolicy:
        return cls(**env_fields(cls, "EDIHUB_RETAIN_", environ))


@dataclass(frozen=True)
class Purge:
    """One thing purged (or, in a dry run, to purge)."""

    kind: str  # export, archive, landing, mail, email, temp, work, audit, records
    # a path on the SFTP server, state:<path> in the state folder, a partition, a month of
    # the message store (received_month:YYYY-MM), a column (edi.statement.email)
    subject: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.kind:8} {self.subject}  ({self.reason})"


@dataclass
class RetentionReport:
    dry_run: bool
    purges: list[Purge] = field(default_factory=list)
    partitions_created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what could not be looked at, and why

    def lines(self) -> list[str]:
        verb = "would purge" if self.dry_run else "purged"
        out = [f"{verb}: {p.line()}" for p in self.purges]
        out += [f"partition created: {name}" for name in self.partitions_created]
        out += [f"skipped: {why}" for why in self.skipped]
        counts = Counter(p.kind for p in self.purges)
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing"
        return [*out, f"retention: {verb} {summary}"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Run:
    """One retention run: its inputs, its report, and the recording of each purge."""

    def __init__(
        self, dsn: str, settings: Settings, policy: RetentionPolicy, now: dt.datetime, dry: bool
    ) -> None:
        self.dsn, self.settings, self.policy, self.now = dsn, settings, policy, now
        self.report = RetentionReport(dry)

    def purge(self, cur: Any, item: Purge) -> None:
        """Record ``item`` (its removal done in this transaction, or just before it)."""
        self.report.purges.append(item)
        if not self.report.dry_run:
            audit.record(
                cur, audit.HUB_ACTOR, ACTION, item.subject,
                {"kind": item.kind, "reason": item.reason, **item.detail},
            )  # fmt: skip


def run(
    dsn: str,
    sftp: paramiko.SFTPClient | None,
    settings: Settings,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> RetentionReport:
    """Purge (or list, ``dry_run``) everything past its period. ``sftp``: the hub's service
    account (None: the SFTP server's files are left for a run that has it)."""
    job = _Run(dsn, settings, policy, now or clock.now(), dry_run)
    if not dry_run:
        job.report.partitions_created = ensure_partitions(dsn, job.now)
    if sftp is None:
        job.report.skipped.append("exports and inbound archive: no SFTP session")
    else:
        _exports(job, sftp)
        _archive(job, sftp)
    _landing(job)
    _work_folders(job)
    _mail(job)
    _statement_emails(job)
    _audit_months(job)
    _message_store_months(job)
    for line in job.report.lines():
        log.info("%s", line)
    return job.report


# ---------------------------------------------------------------- partitions


def message_store(cur: Any) -> list[str]:
    """The tables partitioned by month of receipt (migration 0021)."""
    cur.execute(
        "SELECT p.partrelid::regclass::text FROM pg_partitioned_table p"
        " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
        " WHERE a.attname = %s ORDER BY 1",
        (RECEIPT_MONTH,),
    )
    return [name for (name,) in cur.fetchall()]


def _partitions(cur: Any, table: str) -> list[tuple[str, str | None, str | None]]:
    """(partition, lower bound, upper bound) of a range-partitioned table; None, None for its
    DEFAULT partition."""
    cur.execute(
        "SELECT c.oid::regclass::text, pg_get_expr(c.relpartbound, c.oid)"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass ORDER BY 1",
        (table,),
    )
    out = []
    for name, bound in cur.fetchall():
        # FOR VALUES FROM ('<lower>') TO ('<upper>'), or DEFAULT
        values = bound.split("'")[1::2] if " TO ('" in bound else [None, None]
        out.append((name, values[0], values[1]))
    return out


def _months_in_default(cur: Any, table: str) -> list[dt.date]:
    """The months whose rows wait in the table's DEFAULT partition (none once
    ``ensure_partitions`` has run)."""
    default = next((name for name, lower, _ in _partitions(cur, table) if lower is None), None)
    if default is None:
        return []
    cur.execute(
        "SELECT a.attname, a.atttypid = 'date'::regtype FROM pg_partitioned_table p"
        " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
        " WHERE p.partrelid = %s::regclass",
        (table,),
    )
    key, by_day = cur.fetchone()
    month = sql.Identifier(key)
    if not by_day:
        month = sql.SQL("date_trunc('month', {} AT TIME ZONE 'UTC')::date").format(month)
    cur.execute(sql.SQL("SELECT DISTINCT {} FROM {}").format(month, sql.SQL(default)))
    return sorted(month for (month,) in cur.fetchall())


def ensure_partitions(
    dsn: str, now: dt.datetime | None = None, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Every month-partitioned table's partition of this month and the next ones (by the
    clock that writes its key: the database's for the audit trail, the hub's, ``now``, for
    the message store), and of each month whose rows wait in its DEFAULT partition (they move
    in); the names of those created now."""
    hub_today = (now or clock.now()).astimezone(dt.UTC).date()
    created = []
    with connect(dsn) as conn, conn.cursor() as cur:
        for table in [AUDIT_TRAIL, *message_store(cur)]:
            cur.execute(
                "SELECT (date_trunc('month', coalesce(%s, (now() AT TIME ZONE 'UTC')::date))"
                " + make_interval(months => ahead))::date FROM generate_series(0, %s) AS ahead",
                (None if table == AUDIT_TRAIL else hub_today, months_ahead),
            )
            months = {month for (month,) in cur.fetchall()} | set(_months_in_default(cur, table))
            for month in sorted(months):
                cur.execute("SELECT edi.ensure_month_partition(%s, %s)", (table, month))
                name = cur.fetchone()[0]
                if name:
                    created.append(f"{table.split('.')[0]}.{name}")
        conn.commit()
    return created


def _drop_partition(cur: Any, table: str, partition: str, dry_run: bool) -> int:
    """Drop one partition (in a dry run, only count it); its rows. ``partition`` is a name
    from pg_class."""
    cur.execute(f"SELECT count(*) FROM {partition}")
    rows = int(cur.fetchone()[0])
    if not dry_run:
        cur.execute(f"ALTER TABLE {table} DETACH PARTITION {partition}")
        cur.execute(f"DROP TABLE {partition}")
    return rows


def _audit_months(job: _Run) -> None:
    """Drop the months of the audit trail that ended before its period began."""
    with connect(job.dsn) as conn, conn.cursor() as cur:
        for name, _, upper in _partitions(cur, AUDIT_TRAIL):
            if upper is None:
                continue
            cur.execute(
                "SELECT %s::timestamptz <= now() - make_interval(days => %s)",
                (upper, job.policy.audit_days),
            )
            if not cur.fetchone()[0]:
                continue
            rows = _drop_partition(cur, AUDIT_TRAIL, name, job.report.dry_run)
            job.purge(cur, Purge("audit", name, f"ended {upper[:10]}", {"rows": rows}))
            conn.commit()


def _message_store_months(job: _Run) -> None:
    """Drop the months of the message store received before the inbound period began: each
    month in one transaction, every table's partition of it and the mark on its files."""
    cutoff = (job.now - job.policy.inbound_days * _DAY).astimezone(dt.UTC).date()
    with connect(job.dsn) as conn, conn.cursor() as cur:
        tables = message_store(cur)
        months: dict[dt.date, dict[str, str | None]] = {}  # month -> table -> its partition
        for table in tables:
            for name, lower, _ in _partitions(cur, table):
                if lower is not None:
                    months.setdefault(dt.date.fromisoformat(lower), {})[table] = name
            for month in _months_in_default(cur, table):  # in a dry run only
                months.setdefault(month, {}).setdefault(table, None)
        for month, partitions in sorted(months.items()):
            if _next_month(month) > cutoff:
                continue
            rows = {}
            for table in tables:
                if table not in partitions:
                    continue
                name = partitions[table]
                if name is None:
                    cur.execute(
                        sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                            sql.SQL(table), sql.Identifier(RECEIPT_MONTH)
                        ),
                        (month,),
                    )
                    rows[table] = int(cur.fetchone()[0])
                else:
                    rows[table] = _drop_partition(cur, table, name, job.report.dry_run)
            of_month = " WHERE edi.receipt_month(received_at) = %s AND data_purged_at IS NULL"
            if job.report.dry_run:
                cur.execute("SELECT count(*) FROM edi.inbound_file" + of_month, (month,))
            else:
                cur.execute(
                    "WITH marked AS (UPDATE edi.inbound_file SET data_purged_at = now()"
                    + of_month + " RETURNING 1) SELECT count(*) FROM marked",
                    (month,),
                )  # fmt: skip
            files = int(cur.fetchone()[0])
            detail = {"files": files, "rows": rows}
            reason = f"received in {month:%Y-%m}, before {cutoff}"
            job.purge(cur, Purge("records", f"{RECEIPT_MONTH}:{month:%Y-%m}", reason, detail))
            conn.commit()


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


# ---------------------------------------------------------------- exports


_EXPORTS_SQL = """
SELECT f.insurer_id, f.sftp_account, f.file_name, s.since, d.at AS downloaded_at,
       d.at <= now() - make_interval(days => %(grace)s) AS past_grace
FROM edi.export_file f
CROSS JOIN LATERAL (
    SELECT '/partners/' || f.sftp_account || '/outbound/statements/' || f.file_name AS path
) p
-- A file put back on the server (edihub reprocess insurer: export.republish) is there anew:
-- its grace and maximum age count from then, and only the downloads and purges since.
CROSS JOIN LATERAL (
    SELECT coalesce(max(r.at), '-infinity') AS put_back FROM edi.audit_event r
    WHERE r.action = 'export.republish' AND r.subject = p.path
      AND (r.detail->>'uploaded')::boolean
) b
CROSS JOIN LATERAL (SELECT greatest(f.published_at, b.put_back) AS since) s
LEFT JOIN LATERAL (
    SELECT min(e.at) AS at FROM edi.audit_event e
    WHERE e.action = 'export.download' AND e.detail->>'file_name' = f.file_name
      AND e.detail->>'insurer_id' = f.insurer_id
      AND (e.detail->>'bytes')::bigint >= f.size_bytes AND e.at >= b.put_back
) d ON true
WHERE f.state = 'published'
  -- Older ones left long ago, and the audit months that said so may be gone.
  AND s.since > %(now)s - make_interval(days => %(audit)s)
  AND (d.at <= now() - make_interval(days => %(grace)s)
       OR s.since <= %(now)s - make_interval(days => %(max)s))
  AND NOT EXISTS (
    SELECT 1 FROM edi.audit_event u
    WHERE u.action = 'retention.purge' AND u.subject = p.path AND u.at >= b.put_back)
ORDER BY f.insurer_id, f.export_day
"""


def _exports(job: _Run, sftp: paramiko.SFTPClient) -> None:
    args = {
        "grace": job.policy.export_grace_days,
        "max": job.policy.export_max_days,
        "now": job.now,
        "audit": job.policy.audit_days,
    }
    with connect(job.dsn) as conn, conn.cursor() as cur:
        cur.execute(_EXPORTS_SQL, args)
        due = cur.fetchall()
        conn.commit()
        for insurer_id, account, file_name, since, downloaded_at, past_grace in due:
            path = posixpath.join(layout.statements_dir(account), file_name)
            if past_grace:
                reason = f"downloaded {downloaded_at:%Y-%m-%d %H:%M}Z, grace over"
            else:
                reason = f"on the server since {since:%Y-%m-%d}, maximum age reached"
            detail = {
                "insurer_id": insurer_id,
                "file_name": file_name,
                "published_at": since.isoformat(),
                "downloaded_at": downloaded_at.isoformat() if downloaded_at else None,
            }
            # The manifest first: a manifest on the server says its file is complete.
            for target in (path + MANIFEST_SUFFIX, path):
                if _remove(sftp, target, job.report.dry_run):
                    job.purge(cur, Purge("export", target, reason, detail))
            conn.commit()


def _remove(sftp: paramiko.SFTPClient, path: str, dry_run: bool) -> bool:
    """Remove a file on the server (in a dry run, only look); False if it is not there."""
    try:
        if dry_run:
            sftp.stat(path)
        else:
            sftp.remove(path)
    except FileNotFoundError:
        return False
    return True


# ---------------------------------------------------------------- inbound archive


def _listdir(sftp: paramiko.SFTPClient, path: str) -> list[paramiko.SFTPAttributes]:
    try:
        return sorted(sftp.listdir_attr(path), key=lambda a: a.filename)
    except FileNotFoundError:
        return []


def _archive(job: _Run, sftp: paramiko.SFTPClient) -> None:
    """The day folders (``/archive/<partner>/<feed>/<day>``) received before the period."""
    cutoff = (job.now - dt.timedelta(days=job.policy.inbound_days)).date().isoformat()
    root = "/" + layout.ARCHIVE
    with connect(job.dsn) as conn, conn.cursor() as cur:
        for partner in _folders(sftp, root):
            for feed in _folders(sftp, partner):
                for day in _folders(sftp, feed):
                    name = posixpath.basename(day)
                    if not (_is_day(name) and name < cutoff):
                        continue
                    files = [a for a in _listdir(sftp, day) if stat.S_ISREG(a.st_mode or 0)]
                    if not job.report.dry_run:
                        for entry in files:
                            sftp.remove(posixpath.join(day, entry.filename))
                        sftp.rmdir(day)
                    detail = {"files": len(files), "bytes": sum(a.st_size or 0 for a in files)}
                    job.purge(cur, Purge("archive", day, f"received {name}", detail))
                    conn.commit()


def _folders(sftp: paramiko.SFTPClient, path: str) -> Iterator[str]:
    for entry in _listdir(sftp, path):
        if stat.S_ISDIR(entry.st_mode or 0):
            yield posixpath.join(path, entry.filename)


def _is_day(name: str) -> bool:
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return len(name) == 10


# ---------------------------------------------------------------- the state folder


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.lstat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _state_subject(job: _Run, path: Path) -> str:
    return f"state:{path.relative_to(job.settings.state_dir)}"


def _landing(job: _Run) -> None:
    """Landing copies of raw files last received before the period; stale fetch temps."""
    landing = job.settings.landing_dir
    if not landing.is_dir():
        return
    real_now = dt.datetime.now(dt.UTC)
    temp_cutoff = (real_now - job.policy.temp_days * _DAY).timestamp()
    inbound_cutoff = job.now - job.policy.inbound_days * _DAY
    with connect(job.dsn) as conn, conn.cursor() as cur:
        for temp in sorted(landing.glob(".fetch-*.tmp")):
            if _older(temp, temp_cutoff):
                _unlink(job, temp)
                job.purge(cur, Purge("temp", _state_subject(job, temp), "crashed fetch"))
        # Copies on disk for longer than the period (their own time), then of those only the
        # ones whose every receipt (the hub's time) is older than it: a resend keeps its copy.
        on_disk = (real_now - job.policy.inbound_days * _DAY).timestamp()
        old = {
            copy.name: copy
            for shard in sorted(landing.iterdir())
            if shard.is_dir() and len(shard.name) == 2
            for copy in sorted(shard.iterdir())
            if _older(copy, on_disk)
        }
        cur.execute(
            "SELECT sha256, array_agg(id ORDER BY id) FROM edi.inbound_file"
            " WHERE sha256 = ANY(%s) GROUP BY sha256 HAVING max(received_at) < %s",
            (list(old), inbound_cutoff),
        )
        for sha256, file_ids in cur.fetchall():
            copy = old[sha256.strip()]
            _unlink(job, copy)
            reason = f"received before {inbound_cutoff:%Y-%m-%d}"
            job.purge(
                cur, Purge("landing", _state_subject(job, copy), reason, {"file_ids": file_ids})
            )
        conn.commit()


def _work_folders(job: _Run) -> None:
    """Work folders (verdict, staging) of files whose outcome is decided."""
    work = job.settings.state_dir / "work"
    if not work.is_dir():
        return
    cutoff = (dt.datetime.now(dt.UTC) - job.policy.temp_days * _DAY).timestamp()
    stale = {int(p.name): p for p in work.iterdir() if p.name.isdigit() and _older(p, cutoff)}
    with connect(job.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM edi.inbound_file WHERE id = ANY(%s) AND state <> ALL(%s)",
            (list(stale), list(FINAL_STATES)),
        )
        undecided = {row[0] for row in cur.fetchall()}
        for file_id, folder in sorted(stale.items()):
            if file_id in undecided:
                continue  # its load is still to come
            if not job.report.dry_run:
                shutil.rmtree(folder)
            job.purge(cur, Purge("work", _state_subject(job, folder), "outcome decided"))
        conn.commit()


def _mail(job: _Run) -> None:
    folder = job.settings.state_dir / MAIL_FOLDER
    if not folder.is_dir():
        return
    cutoff = (dt.datetime.now(dt.UTC) - job.policy.mail_days * _DAY).timestamp()
    with connect(job.dsn) as conn, conn.cursor() as cur:
        for message in sorted(folder.glob("*.eml")):
            if _older(message, cutoff):
                _unlink(job, message)
                reason = f"sent more than {job.policy.mail_days} days ago"
                job.purge(cur, Purge("mail", _state_subject(job, message), reason))
        conn.commit()


# Statements whose e-mail address served its purpose: the delivery is decided (e-mailed, or
# printed after all) and the mail period has passed since.
_EMAILS_DUE = """
FROM edi.statement s JOIN edi.statement_delivery d USING (statement_id)
WHERE s.email IS NOT NULL AND d.state IN ('sent', 'printed') AND d.delivered_at <= %s
"""


def _statement_emails(job: _Run) -> None:
    """The e-mail addresses on statements (the statements stay: they are the funds' account
    of what was paid); ``email_purged_at`` says when."""
    cutoff = job.now - job.policy.mail_days * _DAY
    with connect(job.dsn) as conn, conn.cursor() as cur:
        if job.report.dry_run:
            cur.execute("SELECT count(*), min(s.issued_on), max(s.issued_on)" + _EMAILS_DUE,
                        (cutoff,))  # fmt: skip
        else:
            cur.execute(
                "WITH due AS (SELECT s.statement_id" + _EMAILS_DUE + " FOR UPDATE OF s),"
                " purged AS (UPDATE edi.statement s SET email = NULL, email_purged_at = now()"
                " FROM due WHERE s.statement_id = due.statement_id RETURNING s.issued_on)"
                " SELECT count(*), min(issued_on), max(issued_on) FROM purged",
                (cutoff,),
            )
        count, first, last = cur.fetchone()
        if count:
            detail = {"statements": count, "issued_from": str(first), "issued_to": str(last)}
            reason = f"delivered before {cutoff:%Y-%m-%d}"
            job.purge(cur, Purge("email", "edi.statement.email", reason, detail))
        conn.commit()


def _unlink(job: _Run, path: Path) -> None:
    if not job.report.dry_run:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- the command


def command(dsn: str, dry_run: bool) -> int:
    """``edihub retention run [--dry-run]``: OpenSSH's log into the download audit (not in a
    dry run), then the purges; prints each purge and a summary."""
    log_path = downloads.configured_log()
    if log_path is not None and not dry_run:
        ingested = downloads.ingest_log(dsn, log_path)
        print(f"downloads: {ingested.downloads} recorded from {ingested.lines} lines of {log_path}")
    endpoint = client.hub_endpoint_from_env()
    with client.connect(endpoint) if endpoint else contextlib.nullcontext() as sftp:
        report = run(dsn, sftp, Settings.from_env(), RetentionPolicy.from_env(), dry_run=dry_run)
    print("\n".join(report.lines()))
    return 0
