"""The inbound flow, one step per function: list, fetch, validate, load, archive, acknowledge.

Each step reads and writes the file's row in ``edi.inbound_file``, so any step can crash and be
rerun: the row says what is done. Content problems never raise; they become the file's state
(loaded, loaded_with_errors, rejected, quarantined, duplicate) and its acknowledgment.
Infrastructure problems (database or SFTP down) do raise, so that Airflow retries the step.

Order of effects, which the exactly-once guarantee rests on:
  fetch     download to a content-addressed landing copy; the file stays on the server
  validate  format + data contracts; accepted rows to a Parquet staging area (bounded memory)
  load      one transaction: COPY the rows, record the errors, set the final state
  archive   only after that commit, move the remote file out of the partner's inbox
  ack       write the acknowledgment to the partner's outbound folder (atomic rename)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import logging
import posixpath
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import paramiko
import psycopg2
import psycopg2.errors
import psycopg2.extras
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg2 import sql

from edihub import clock
from edihub.acks.ack import MAX_LISTED_ERRORS, AckError, ack_file_name, build_ack
from edihub.config import Settings
from edihub.faults import crash_point
from edihub.feeds import NAME_IS_CONTENT
from edihub.formats.contract import FormatContract, feed_formats
from edihub.load import RECEIPT_MONTH, snapshots
from edihub.load.db import connect, receipt_month
from edihub.sftp import client as sftp_client
from edihub.sftp import layout
from edihub.validation import (
    ERROR_SCHEMA,
    DatabaseLookup,
    StagingSink,
    Verdict,
    check_file,
    file_error,
)

log = logging.getLogger(__name__)

# Control characters, and the bidi controls that make a name display as another one.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f" + "".join(sorted(sftp_client.BIDI_CONTROLS)) + "]")
FINAL_STATES = ("loaded", "loaded_with_errors", "rejected", "quarantined", "duplicate")


@dataclass(frozen=True)
class InboundFile:
    """A file ready on the server, as handed from the list step to the others (JSON-able)."""

    partner: str
    feed: str
    name: str
    path: str
    size: int
    mtime: float
    not_regular: str = ""  # a symlink, FIFO...: refused unread (sftp.client.ListResult)


# ---------------------------------------------------------------- list


def list_inbound(sftp: paramiko.SFTPClient, feed: str, settle_seconds: int) -> list[InboundFile]:
    """Files ready in every partner's inbound folder for ``feed`` (half uploads are left)."""
    ready: list[InboundFile] = []
    partners_root = "/" + layout.PARTNERS
    try:
        partners = sorted(sftp.listdir(partners_root))
    except FileNotFoundError:
        return []
    folders = {partner: layout.inbound_dir(partner, feed) for partner in partners}
    listings = sftp_client.list_ready_many(sftp, list(folders.values()), settle_seconds)
    for partner, folder in folders.items():
        listing = listings[folder]
        for name, reason in listing.ignored:
            log.info("skip %s/%s: %s", folder, _shown(name), reason)
        for f in listing.waiting:
            log.info("wait %s: still being written or too recent", _shown(f.path))
        ready += [
            InboundFile(partner, feed, f.name, f.path, f.size, f.mtime, f.not_regular)
            for f in listing.ready
        ]
    log.info("%d %s file(s) ready", len(ready), feed)
    return ready


def batches(items: list[InboundFile], max_files: int, max_bytes: int) -> list[list[InboundFile]]:
    """The ready files cut into the batches one mapped task takes each: ``max_files`` at most,
    and no more than ``max_bytes`` unless a file is that large alone. A drop of a thousand
    small files is a few dozen tasks, not five thousand (Airflow maps at most 1,024 and pays
    about a second to start each); large files still get a task, and parallelism, of their own.
    In listing order, so a partner's files stay together."""
    out: list[list[InboundFile]] = []
    size = 0
    for item in items:
        if not out or len(out[-1]) >= max_files or size + item.size > max_bytes:
            out.append([])
            size = 0
        out[-1].append(item)
        size += item.size
    return out


# ---------------------------------------------------------------- fetch


def _insert_file(cur: Any, item: InboundFile, **values: Any) -> int:
    row = {
        "feed": item.feed,
        "sender": item.partner,
        "remote_name": _shown(item.name),
        "remote_path": _shown(item.path),
        "remote_path_raw": _raw(item.path),
        "size_bytes": item.size,
        "remote_mtime": dt.datetime.fromtimestamp(item.mtime, dt.UTC),
        "received_at": _now(),
        "identity_name": _identity_name(item),
    } | values
    cur.execute(
        sql.SQL("INSERT INTO edi.inbound_file ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        ),
        list(row.values()),
    )
    return int(cur.fetchone()[0])


def _identity_name(item: InboundFile) -> str:
    """The part of a file's name that is part of its identity with its sha256 (exactly once):
    all of it for the feeds whose names say what their bytes do not, else nothing."""
    return _shown(item.name) if item.feed in NAME_IS_CONTENT else ""


def _in_flight(cur: Any, item: InboundFile, sha256: str | None) -> int | None:
    """The row a crashed earlier run made for this very file, if it is not archived yet.

    Files quarantined unread have no sha256; they are matched by path and size.
    """
    cur.execute(
        "SELECT id FROM edi.inbound_file WHERE remote_path_raw = %s"
        " AND sha256 IS NOT DISTINCT FROM %s AND size_bytes = %s AND archived_at IS NULL",
        (_raw(item.path), sha256, item.size),
    )
    found = cur.fetchone()
    return None if found is None else int(found[0])


def _quarantine_row(cur: Any, item: InboundFile, code: str, reason: str) -> int:
    """Register a file refused unread; a rerun after a crash finds the row it already made."""
    existing = _in_flight(cur, item, None)
    if existing is not None:
        return existing
    file_id = _insert_file(
        cur, item, state="quarantined", reason_code=code, reason=reason, decided_at=_now()
    )
    _record_errors(cur, file_id, [file_error(code, reason)])
    return file_id


def _refused_unread(item: InboundFile, settings: Settings) -> tuple[str, str] | None:
    """Why ``item`` is quarantined without being read (its rule and reason), if it is."""
    unsafe = sftp_client.unsafe_name_reason(item.name)
    if unsafe:
        return "UNSAFE_NAME", f"file name refused: {unsafe}"
    if item.not_regular:
        return "NOT_A_REGULAR_FILE", (
            f"this is a {item.not_regular}, not a regular file: it was not read or "
            "followed; upload the file itself"
        )
    if item.size > settings.max_file_bytes:
        return (
            "TOO_LARGE",
            f"{item.size} bytes is over the limit of {settings.max_file_bytes} bytes",
        )
    return None


def _path_key(remote_path: str) -> str:
    """A remote path as the key of its lock (its raw bytes: a name may not be UTF-8)."""
    return remote_path.encode("utf-8", "surrogateescape").hex()


def fetch(sftp: paramiko.SFTPClient, dsn: str, settings: Settings, item: InboundFile) -> int | None:
    """Download ``item`` to the landing area and register it; return its file id, or None if
    it left the inbox after it was listed (another run took it, or its sender removed it)."""
    with connect(dsn) as conn, conn.cursor() as cur:
        # A second run waits here, then finds the row in flight, or the file archived (the
        # archive step takes the same lock), never half of either.
        _claim(cur, "path", _path_key(item.path))
        refusal = _refused_unread(item, settings)
        try:
            if refusal:
                sftp_client.lstat(sftp, item.path)  # still there: it is refused only once
                file_id = _quarantine_row(cur, item, *refusal)
                conn.commit()
                return file_id
            fetched = sftp_client.fetch(
                sftp, item.path, settings.landing_dir, settings.max_file_bytes
            )
        except sftp_client.FileTooLarge as exc:  # it grew after it was listed
            file_id = _quarantine_row(cur, item, "TOO_LARGE", str(exc))
            conn.commit()
            return file_id
        except FileNotFoundError:
            log.info(
                "gone %s: it left the inbox after it was listed (another run took it, or its "
                "sender removed it)",
                _shown(item.path),
            )
            return None
        crash_point("collect.after_download")
        file_id = _register(cur, item, fetched.sha256, fetched.size)
        conn.commit()
        log.info(
            "fetched %s as %s-%d sha256=%s", _shown(item.path), item.feed, file_id, fetched.sha256
        )
        return file_id


def _register(cur: Any, item: InboundFile, sha256: str, size: int, **values: Any) -> int:
    """The file's row, once its landing copy is safe: new, a duplicate of a loaded file, or
    (after a crash) the row an earlier run made. ``values``: more columns of a new row."""
    existing = _in_flight(cur, item, sha256)
    if existing is not None:
        return existing
    cur.execute(
        "SELECT id FROM edi.inbound_file WHERE sha256 = %s AND identity_name = %s"
        " AND state IN ('loaded', 'loaded_with_errors')",
        (sha256, _identity_name(item)),
    )
    loaded = cur.fetchone()
    common = {"sha256": sha256, "size_bytes": size} | values
    if not loaded:
        return _insert_file(cur, item, **common)
    named = " under the same name" if _identity_name(item) else ""
    reason = f"the same file (sha256){named} was already loaded as {item.feed}-{loaded[0]}"
    file_id = _insert_file(
        cur,
        item,
        **common,
        state="duplicate",
        duplicate_of=loaded[0],
        reason_code="DUPLICATE_FILE",
        reason=reason,
        decided_at=_now(),
    )
    _record_errors(cur, file_id, [file_error("DUPLICATE_FILE", reason)])
    return file_id


def register_attempt(cur: Any, original: dict[str, Any], sha256: str, size: int) -> int:
    """A new attempt at an archived file (``edihub.reprocess``), read back from its archive:
    a new row linked to ``original`` (its ``edi.inbound_file`` row), under the same
    exactly-once rules as a file fetched from an inbox. It is archived already: its archive
    is the original's, which it leaves where it is."""
    source = original["archive_path"]
    item = InboundFile(
        original["sender"], original["feed"], original["remote_name"], source, size, 0.0
    )
    return _register(
        cur,
        item,
        sha256,
        size,
        original_file_id=original["id"],
        remote_mtime=original["remote_mtime"],
        archive_path=source,
        archived_at=_now(),
    )


def ingest_local(dsn: str, settings: Settings, feed: str, path: Path, sender: str) -> int:
    """Validate and load a file handed over on this machine rather than through SFTP (how an
    engineer seeds the registry from the core systems' extracts). Same contracts, same
    exactly-once rules; there is no inbox to archive from and no outbox to acknowledge to."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    landing = _landing_path(settings, sha256)
    landing.parent.mkdir(parents=True, exist_ok=True)
    if not landing.exists():
        shutil.copyfile(path, landing)
    stat = path.stat()
    item = InboundFile(
        sender, feed, path.name, f"local:{path.resolve()}", stat.st_size, stat.st_mtime
    )
    with connect(dsn) as conn, conn.cursor() as cur:
        file_id = _register(cur, item, sha256, stat.st_size)
        conn.commit()
    validate(dsn, settings, file_id)
    load(dsn, settings, file_id)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE edi.inbound_file SET archive_path = remote_path, archived_at = %s"
            " WHERE id = %s AND archived_at IS NULL",
            (_now(), file_id),
        )
        conn.commit()
    return file_id


# ---------------------------------------------------------------- validate


def _work_dir(settings: Settings, file_id: int) -> Path:
    return settings.state_dir / "work" / str(file_id)


def validate(dsn: str, settings: Settings, file_id: int) -> int:
    """Check a fetched file against its contracts; the verdict waits in the work folder."""
    with connect(dsn) as conn:
        with conn.cursor() as cur:
            _claim(cur, "file", file_id)
        row = _file_row(conn, file_id)
        if row["state"] != "received":
            return file_id  # decided at fetch (quarantine, duplicate) or by an earlier run
        work = _work_dir(settings, file_id)
        if (work / "verdict.json").is_file():
            return file_id  # validated by an earlier run; the load is next
        sink = StagingSink(work / "staging")
        landing = _landing_path(settings, row["sha256"])
        try:
            verdict, errors = check_file(
                landing,
                settings,
                row["feed"],
                row["sender"],
                DatabaseLookup(conn),
                sink,
                name=row["remote_name"],
            )
        finally:
            sink.close()
        if verdict.batch_number and verdict.state in ("loaded", "loaded_with_errors"):
            earlier = _loaded_batch(conn, row["feed"], row["sender"], verdict.batch_number)
            if earlier is not None:
                verdict.state, verdict.duplicate_of = "duplicate", earlier
                verdict.reason_code = "DUPLICATE_BATCH"
                verdict.reason = (
                    f"batch {verdict.batch_number} of {row['sender']} was already loaded "
                    f"as {row['feed']}-{earlier}"
                )
                errors = [file_error("DUPLICATE_BATCH", verdict.reason)]
        pq.write_table(pa.Table.from_pylist(errors, schema=ERROR_SCHEMA), work / "errors.parquet")
        crash_point("collect.mid_validation")
        # Last, and whole or not at all: its presence says the staging is complete.
        (work / "verdict.json.tmp").write_text(json.dumps(asdict(verdict)))
        (work / "verdict.json.tmp").replace(work / "verdict.json")
        conn.rollback()
    log.info(
        "validated %s-%d: %s, %d records, %d rejected%s",
        row["feed"],
        file_id,
        verdict.state,
        verdict.records_total,
        verdict.records_rejected,
        f" ({verdict.reason})" if verdict.reason else "",
    )
    return file_id


def _loaded_batch(conn: Any, feed: str, sender: str, batch: str) -> int | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM edi.inbound_file WHERE feed = %s AND sender = %s"
            " AND batch_number = %s AND state IN ('loaded', 'loaded_with_errors')",
            (feed, sender, batch),
        )
        found = cur.fetchone()
    return None if found is None else int(found[0])


# ---------------------------------------------------------------- load


def _bookkeeping(fmt: FormatContract) -> list[str]:
    """The load's own columns of every row a file of ``fmt`` brings."""
    return ["file_id", "sender"] + ([] if fmt.record.snapshot_key else [RECEIPT_MONTH])


def record_columns(fmt: FormatContract) -> list[str]:
    """The columns the load COPYs into a record table: the load's bookkeeping, the record's
    fields, those its format fills from the file's header (``from_header``), and for a
    registry snapshot the date its rows are unchanged since."""
    columns = [*_bookkeeping(fmt), "record_no", *(f.name for f in fmt.record.fields),
               *fmt.record.from_header]  # fmt: skip
    return [*columns, snapshots.SINCE] if fmt.record.snapshot_key else columns


def child_columns(fmt: FormatContract) -> list[str]:
    """The columns the load COPYs into a child table (a format with ``record.children``)."""
    children = fmt.record.children
    assert children is not None, f"{fmt.feed}: its records have no children"
    return [*_bookkeeping(fmt), fmt.record.id, "child_no", *(f.name for f in children.fields)]


def copy_rows(rows: pa.Table, columns: list[str], constants: dict[str, Any]) -> pa.Table:
    """Staged rows as the COPY sends them: ``constants`` (column -> the file's one value, such
    as its id and sender) added to every row, in the table's column order."""
    for name, value in constants.items():
        rows = rows.append_column(name, pa.array([value] * rows.num_rows))
    return rows.select(columns)


def _copy_parquet(
    cur: Any, path: Path, table: sql.Composable, columns: list[str], constants: dict[str, Any]
) -> int:
    """COPY a Parquet staging file into ``table``, one row group at a time."""
    if not path.is_file():
        return 0
    rows = 0
    target = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    for batch in pq.ParquetFile(path).iter_batches(batch_size=100_000):
        if batch.num_rows == 0:
            continue
        tbl = copy_rows(pa.Table.from_batches([batch]), columns, constants)
        buf = pa.BufferOutputStream()
        pacsv.write_csv(tbl, buf, pacsv.WriteOptions(include_header=False))
        cur.copy_expert(target.as_string(cur), pa.BufferReader(buf.getvalue()))
        rows += batch.num_rows
    return rows


def load(dsn: str, settings: Settings, file_id: int) -> int:
    """Load the accepted rows and set the file's final state, in one transaction."""
    with connect(dsn) as conn:
        with conn.cursor() as cur:
            _claim(cur, "file", file_id)
        row = _file_row(conn, file_id, lock=True)
        if row["state"] != "received":
            conn.rollback()
            return file_id
        work = _work_dir(settings, file_id)
        verdict = Verdict(**json.loads((work / "verdict.json").read_text()))
        errors = pq.read_table(work / "errors.parquet").to_pylist()
        try:
            with conn.cursor() as cur:
                if verdict.state in ("loaded", "loaded_with_errors"):
                    fmt = _format_of(settings, row["feed"], verdict)
                    of_file = {"file_id": file_id, "sender": row["sender"]}
                    if not fmt.record.snapshot_key:
                        of_file[RECEIPT_MONTH] = receipt_month(cur, file_id)
                    from_header = {
                        column: verdict.header.get(field)
                        for column, field in fmt.record.from_header.items()
                    }
                    target = sql.Identifier("edi", f"{fmt.feed}_{fmt.record.table}")
                    snapshot = None
                    if fmt.record.snapshot_key:
                        snapshot = snapshots.prepare(cur, fmt, verdict.header)
                        target = snapshot.target
                        from_header[snapshots.SINCE] = snapshot.day
                    _copy_parquet(
                        cur,
                        work / "staging" / "records.parquet",
                        target,
                        record_columns(fmt),
                        of_file | from_header,
                    )
                    crash_point("collect.mid_copy")
                    if fmt.record.children:
                        _copy_parquet(
                            cur,
                            work / "staging" / "children.parquet",
                            sql.Identifier("edi", f"{fmt.feed}_{fmt.record.children.table}"),
                            child_columns(fmt),
                            of_file,
                        )
                    if snapshot:
                        snapshots.record(cur, snapshot, file_id)
                    if row["feed"] in AFTER_LOAD:
                        _hook(AFTER_LOAD[row["feed"]])(cur, file_id, verdict.header)
                _record_errors(cur, file_id, errors)
                _record_rule_results(cur, file_id, verdict.rule_results)
                _set_state(cur, file_id, verdict)
            conn.commit()
            crash_point("collect.after_commit")
        except snapshots.StaleSnapshot as stale:
            # A newer snapshot was loaded since this one was validated: it stays in force.
            conn.rollback()
            verdict = _decide_instead(
                conn, file_id, verdict, "rejected", "STALE_SNAPSHOT", str(stale)
            )
        except psycopg2.errors.UniqueViolation as exc:
            # Another run loaded the same file or batch first: this copy is a duplicate.
            conn.rollback()
            reason = f"loaded concurrently by another run ({exc.diag.constraint_name})"
            verdict = _decide_instead(conn, file_id, verdict, "duplicate", "DUPLICATE_FILE", reason)
    shutil.rmtree(work / "staging", ignore_errors=True)
    log.info(
        "loaded %s-%d: %s, %d rows", row["feed"], file_id, verdict.state, verdict.records_loaded
    )
    return file_id


def _decide_instead(
    conn: Any, file_id: int, verdict: Verdict, state: str, code: str, reason: str
) -> Verdict:
    """The load found the file cannot be loaded after all: commit that outcome instead."""
    instead = Verdict(
        state,
        verdict.records_total,
        verdict.records_total if state == "rejected" else 0,
        code,
        reason,
        verdict.batch_number,
        verdict.format_version,
        verdict.document,
    )
    with conn.cursor() as cur:
        _file_row(conn, file_id, lock=True)
        _record_errors(cur, file_id, [file_error(code, reason)])
        _set_state(cur, file_id, instead)
    conn.commit()
    return instead


# Feed-specific work (module:function): on the loaded rows, in the load's transaction; and
# what is returned to the sender besides the ack, written just before it.
AFTER_LOAD = {"payroll": "edihub.payroll.declarations:compute_file"}
AFTER_ACK = {"payroll": "edihub.payroll.payslips:publish"}


def _hook(target: str) -> Any:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def _format_of(settings: Settings, feed: str, verdict: Verdict) -> FormatContract:
    """The format the file was validated against (its version and, if any, its document)."""
    for fmt in feed_formats(settings.formats_dir, feed):
        if str(fmt.version) == verdict.format_version and (fmt.document or None) == (
            verdict.document
        ):
            return fmt
    raise LookupError(
        f"format {feed}/v{verdict.format_version} {verdict.document or ''} disappeared "
        "between validate and load"
    )


def _set_state(cur: Any, file_id: int, verdict: Verdict) -> None:
    cur.execute(
        "UPDATE edi.inbound_file SET state = %s, reason_code = %s, reason = %s,"
        " batch_number = %s, format_version = %s, document = %s, records_total = %s,"
        " records_loaded = %s,"
        " records_rejected = %s, duplicate_of = %s, header = %s, decided_at = %s"
        " WHERE id = %s",
        (
            verdict.state,
            verdict.reason_code,
            verdict.reason,
            verdict.batch_number,
            verdict.format_version,
            verdict.document,
            verdict.records_total,
            verdict.records_loaded,
            verdict.records_rejected,
            verdict.duplicate_of,
            psycopg2.extras.Json(verdict.header or None),
            _now(),
            file_id,
        ),
    )


def _record_rule_results(cur: Any, file_id: int, results: list[dict[str, Any]]) -> None:
    month = receipt_month(cur, file_id)
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO edi.validation_result (file_id, received_month, table_name, rule,"
        " on_failure, checked, failed) VALUES %s"
        " ON CONFLICT (file_id, table_name, rule, received_month) DO NOTHING",
        [
            (file_id, month, r["table"], r["rule"], r["on_failure"], r["checked"], r["failed"])
            for r in results
        ],
    )


def _record_errors(cur: Any, file_id: int, errors: list[dict[str, Any]]) -> None:
    cur.execute("DELETE FROM edi.file_error WHERE file_id = %s", (file_id,))
    if not errors:
        return
    month = receipt_month(cur, file_id)
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO edi.file_error (file_id, received_month, seq, level, record_no, record_id,"
        " field, rule, value, message) VALUES %s",
        [
            (
                file_id,
                month,
                i,
                e["level"],
                e["record_no"],
                e["record_id"],
                e["field"],
                e["rule"],
                e["value"],
                e["message"],
            )
            for i, e in enumerate(errors, start=1)
        ],
        page_size=1000,
    )


# ---------------------------------------------------------------- archive


def archive(sftp: paramiko.SFTPClient, dsn: str, file_id: int) -> int:
    """Move the remote file out of the inbox, now that its state is committed."""
    with connect(dsn) as conn, conn.cursor() as cur:
        _claim(cur, "file", file_id)
        row = _file_row(conn, file_id)
        if row["archived_at"] is not None:
            return file_id
        if row["state"] not in FINAL_STATES:
            raise RuntimeError(f"{row['feed']}-{file_id} is {row['state']}: not archived yet")
        day = row["received_at"].astimezone(dt.UTC).date().isoformat()
        # The archive name is ours, never the partner's (which may be hostile).
        target = posixpath.join(
            layout.archive_dir(row["sender"], row["feed"], day),
            f"{file_id}.{row['state']}.{(row['sha256'] or 'unread')[:16]}",
        )
        source = bytes(row["remote_path_raw"]).decode("utf-8", "surrogateescape")
        _claim(cur, "path", _path_key(source))  # not while a run fetches it (``fetch``)
        sftp_client.move(sftp, source, target)
        crash_point("collect.after_move")
        cur.execute(
            "UPDATE edi.inbound_file SET archive_path = %s, archived_at = %s WHERE id = %s",
            (target, _now(), file_id),
        )
        conn.commit()
    crash_point("collect.after_archive")
    log.info("archived %s-%d to %s", row["feed"], file_id, target)
    return file_id


# ---------------------------------------------------------------- acknowledge


def acknowledge(sftp: paramiko.SFTPClient, dsn: str, file_id: int) -> int:
    """Write the acknowledgment into the sender's outbound folder (idempotent)."""
    with connect(dsn) as conn, conn.cursor() as cur:
        _claim(cur, "file", file_id)
        row = _file_row(conn, file_id)
        if row["acked_at"] is not None:
            return file_id
        cur.execute(
            "SELECT level, rule, message, record_no, record_id, field, value"
            " FROM edi.file_error WHERE file_id = %s ORDER BY seq LIMIT %s",
            (file_id, MAX_LISTED_ERRORS),
        )
        errors = [AckError(*r) for r in cur.fetchall()]
        cur.execute("SELECT count(*) FROM edi.file_error WHERE file_id = %s", (file_id,))
        total = int(cur.fetchone()[0])
        if row["feed"] in AFTER_ACK and row["state"] in ("loaded", "loaded_with_errors"):
            # Before the ack: the ack marks the file done, so a crash here is redone.
            _hook(AFTER_ACK[row["feed"]])(sftp, conn, row)
        body = build_ack(row, errors, total, _now())
        path = posixpath.join(
            layout.acks_dir(row["sender"]), ack_file_name(file_id, row["remote_name"])
        )
        sftp_client.put_atomic(sftp, body, path)
        crash_point("collect.after_ack_upload")
        cur.execute(
            "UPDATE edi.inbound_file SET ack_path = %s, acked_at = %s WHERE id = %s",
            (path, _now(), file_id),
        )
        conn.commit()
    log.info("acknowledged %s-%d (%s) at %s", row["feed"], file_id, row["state"], path)
    return file_id


# ---------------------------------------------------------------- shared


def _raw(remote: str) -> psycopg2.Binary:
    """Names that are not UTF-8 arrive with surrogate escapes: keep their exact bytes."""
    return psycopg2.Binary(remote.encode("utf-8", "surrogateescape"))


def _shown(remote: str) -> str:
    """A remote name fit for logs, the database and acks: undecodable bytes and control
    characters (newlines, terminal escapes) and bidi controls written as \\xNN or \\uNNNN."""
    text = remote.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _now() -> dt.datetime:
    return clock.now()


def _landing_path(settings: Settings, sha256: str) -> Path:
    return settings.landing_dir / sha256[:2] / sha256


def _claim(cur: Any, kind: str, key: str | int) -> None:
    """Hold, until the transaction ends, the lock of one file (``kind`` "file": its id) or of
    one remote path ("path"): two runs at once (an overlapping schedule, a manual trigger)
    then take a file's steps in turn, and each finds the other's work done."""
    cur.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (f"edihub-{kind}", str(key))
    )


def _file_row(conn: Any, file_id: int, lock: bool = False) -> dict[str, Any]:
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT * FROM edi.inbound_file WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            (file_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"no inbound file with id {file_id}")
    return dict(row)


def process(
    sftp: paramiko.SFTPClient, dsn: str, settings: Settings, item: InboundFile
) -> int | None:
    """Every step for one file, in order (the CLI and tests; the DAG runs them as tasks);
    None if the file left the inbox after it was listed (``fetch``)."""
    file_id = fetch(sftp, dsn, settings, item)
    if file_id is None:
        return None
    validate(dsn, settings, file_id)
    load(dsn, settings, file_id)
    archive(sftp, dsn, file_id)
    return acknowledge(sftp, dsn, file_id)


def finish_interrupted(sftp: paramiko.SFTPClient, dsn: str, feed: str) -> list[int]:
    """Archive and acknowledge the files of ``feed`` whose run died after their outcome was
    committed: one moved to the archive but not recorded is no longer in any inbox, so no
    listing would bring it back. Both steps are no-ops where done, so a file another run is
    finishing at the same moment ends the same. Files handed over locally (``ingest_local``)
    have no outbox: they are never acknowledged."""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM edi.inbound_file WHERE feed = %s AND state = ANY(%s)"
            " AND (archived_at IS NULL OR acked_at IS NULL) AND remote_path NOT LIKE 'local:%%'"
            " ORDER BY id",
            (feed, list(FINAL_STATES)),
        )
        file_ids = [int(r[0]) for r in cur.fetchall()]
    for file_id in file_ids:
        log.warning("finishing %s-%d, interrupted after its outcome was committed", feed, file_id)
        archive(sftp, dsn, file_id)
        acknowledge(sftp, dsn, file_id)
    return file_ids


def collect(sftp: paramiko.SFTPClient, dsn: str, settings: Settings, feed: str) -> Iterator[int]:
    yield from finish_interrupted(sftp, dsn, feed)
    for item in list_inbound(sftp, feed, settings.settle_seconds):
        file_id = process(sftp, dsn, settings, item)
        if file_id is not None:
            yield file_id


def file_summary(dsn: str, file_id: int) -> dict[str, Any]:
    """The file's outcome in a few fields (task return values, asset events, CLI output)."""
    with connect(dsn) as conn:
        row = _file_row(conn, file_id)
    keys = (
        "id",
        "feed",
        "sender",
        "remote_name",
        "state",
        "reason_code",
        "records_total",
        "records_loaded",
        "records_rejected",
        "ack_path",
    )
    return {k: row[k] for k in keys}
