"""What happened to file X: an inbound file's whole journey, from its name, sha256 or id.

Received (from which account, size, sha256), validated (the format and data contracts'
verdict, the failed rules, the errors by record and rule), loaded (rows per table),
archived, acknowledged (and downloaded by the sender, from the audit trail), and the
statements and insurer exports that carry its records (claim_line.source_file_id ->
statement_line -> export_line), with the audit events whose subject is the file. Read only:
``edihub trace`` prints it, the "File journey" page of the Airflow UI shows it.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
from decimal import Decimal
from typing import Any

import psycopg2.extras
from psycopg2 import sql

from edihub import audit
from edihub.clock import MONACO
from edihub.load import RECEIPT_MONTH
from edihub.load.db import connect, receipt_month

# Errors and statements shown per file: a rejected 100,000-record file has as many errors.
MAX_ERRORS = 50
MAX_STATEMENTS = 100
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

_FILE_COLUMNS = (
    "id, feed, sender, remote_name, remote_path, sha256, size_bytes, batch_number,"
    " format_version, document, state, reason_code, reason,"
    " records_total, records_loaded, records_rejected, duplicate_of, received_at, decided_at,"
    " archive_path, archived_at, ack_path, acked_at, data_purged_at"
)


def find(cur: Any, query: str) -> list[int]:
    """The ids of the files named ``query`` (as the sender named them), or with that sha256
    or id: newest first, since a name is often sent again."""
    query = query.strip()
    by_id = int(query) if query.isdigit() and len(query) < 19 else None
    sha = query.lower() if _SHA256.fullmatch(query) else None
    cur.execute(
        "SELECT id FROM edi.inbound_file WHERE remote_name = %s OR id = %s OR sha256 = %s"
        " ORDER BY received_at DESC, id DESC",
        (query, by_id, sha),
    )
    return [int(r[0]) for r in cur.fetchall()]


def journey(conn: Any, file_id: int) -> dict[str, Any]:
    """Everything the hub knows of one file (values JSON-able through ``to_json``)."""
    cur = conn.cursor()
    dict_cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)

    def rows(statement: str, *args: Any) -> list[dict[str, Any]]:
        dict_cur.execute(statement, args)
        return [dict(r) for r in dict_cur.fetchall()]

    def count(statement: str, *args: Any) -> int:
        cur.execute(statement, args)
        return int(cur.fetchone()[0])

    found = rows(f"SELECT {_FILE_COLUMNS} FROM edi.inbound_file WHERE id = %s", file_id)
    if not found:
        raise LookupError(f"no inbound file with id {file_id}")
    file = found[0]
    ack_name = posixpath.basename(file["ack_path"]) if file["ack_path"] else ""
    return {
        "file": file,
        "rules": rows(
            "SELECT table_name, rule, on_failure, checked, failed FROM edi.validation_result"
            " WHERE file_id = %s ORDER BY failed = 0, table_name, rule",
            file_id,
        ),
        "errors": rows(
            "SELECT level, record_no, record_id, field, rule, value, message FROM edi.file_error"
            " WHERE file_id = %s ORDER BY seq LIMIT %s",
            file_id,
            MAX_ERRORS,
        ),
        "error_total": count("SELECT count(*) FROM edi.file_error WHERE file_id = %s", file_id),
        "tables": rows_per_table(cur, file["feed"], file_id),
        # The download recorder names the ack by its path as the account saw it (chrooted
        # for OpenSSH, the hub's view for the embedded server) and by its file name.
        "ack_downloads": rows(
            "SELECT at, actor, detail->>'bytes' AS bytes FROM edi.audit_event"
            " WHERE action = 'ack.download'"
            "   AND (right(subject, %s) = %s OR detail->>'file_name' = %s) ORDER BY at, id",
            len(ack_name) + 1,
            f"/{ack_name}",
            ack_name,
        )
        if ack_name
        else [],
        "claim_lines": count(
            "SELECT count(*) FROM edi.claim_line WHERE source_file_id = %s", file_id
        ),
        "statements": rows(
            "SELECT s.statement_number, s.issued_on, s.channel, s.insurer_id, s.created_at,"
            "       count(*) AS lines, count(*) OVER () AS total"
            "  FROM edi.claim_line c JOIN edi.statement_line sl USING (claim_line_id)"
            "  JOIN edi.statement s USING (statement_id)"
            " WHERE c.source_file_id = %s GROUP BY s.statement_id"
            " ORDER BY s.issued_on, s.statement_number LIMIT %s",
            file_id,
            MAX_STATEMENTS,
        ),
        "exports": rows(
            "SELECT e.export_id, e.insurer_id, e.export_day, e.sequence, e.format,"
            "       e.sftp_account, e.file_name, e.state, e.published_at, e.sha256,"
            "       count(*) AS lines"
            "  FROM edi.claim_line c JOIN edi.statement_line sl USING (claim_line_id)"
            "  JOIN edi.export_line el"
            "    ON el.statement_id = sl.statement_id AND el.statement_line_no = sl.line_no"
            "  JOIN edi.export_file e USING (export_id)"
            " WHERE c.source_file_id = %s GROUP BY e.export_id"
            " ORDER BY e.export_day, e.insurer_id",
            file_id,
        ),
        "audit": audit.events(cur, subject=str(file_id)),
        **_reprocessing(cur, file_id),
    }


def rows_per_table(cur: Any, feed: str, file_id: int) -> dict[str, int]:
    """Rows of the file in each of its feed's tables (``edi.<feed>_*`` with a file_id; a
    partitioned table counts once, and only its partition of the file's month is read)."""
    cur.execute(
        "SELECT c.relname, m.attname IS NOT NULL FROM pg_class c"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'file_id'"
        " LEFT JOIN pg_attribute m ON m.attrelid = c.oid AND m.attname = %s"
        " WHERE c.relnamespace = 'edi'::regnamespace AND c.relkind IN ('r', 'p')"
        "   AND NOT c.relispartition AND starts_with(c.relname, %s)"
        " ORDER BY c.relname",
        (RECEIPT_MONTH, f"{feed}_"),
    )
    tables = cur.fetchall()
    month = receipt_month(cur, file_id)
    counts = {}
    for table, by_month in tables:
        query = sql.SQL("SELECT count(*) FROM {} WHERE file_id = %s").format(
            sql.Identifier("edi", table)
        )
        args: tuple[Any, ...] = (file_id,)
        if by_month:  # the message store (migration 0021): read the file's month only
            query += sql.SQL(" AND {} = %s").format(sql.Identifier(RECEIPT_MONTH))
            args += (month,)
        cur.execute(query, args)
        n = int(cur.fetchone()[0])
        if n:
            counts[f"edi.{table}"] = n
    return counts


def _reprocessing(cur: Any, file_id: int) -> dict[str, Any]:
    """The attempt this file reprocesses and the attempts that reprocess it, once migration
    0015 has added ``original_file_id`` (absent before: nothing to show)."""
    cur.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = 'edi'"
        " AND table_name = 'inbound_file' AND column_name = 'original_file_id'"
    )
    if cur.fetchone() is None:
        return {"reprocess_of": None, "reprocessed_as": []}
    cur.execute("SELECT original_file_id FROM edi.inbound_file WHERE id = %s", (file_id,))
    (original,) = cur.fetchone()
    cur.execute(
        "SELECT id FROM edi.inbound_file WHERE original_file_id = %s ORDER BY id", (file_id,)
    )
    return {"reprocess_of": original, "reprocessed_as": [int(r[0]) for r in cur.fetchall()]}


def journeys(conn: Any, query: str) -> list[dict[str, Any]]:
    """The journeys of every file ``query`` names, newest first."""
    with conn.cursor() as cur:
        file_ids = find(cur, query)
    return [journey(conn, file_id) for file_id in file_ids]


def trace(dsn: str, query: str) -> list[dict[str, Any]]:
    with connect(dsn) as conn:
        conn.set_session(readonly=True)
        return journeys(conn, query)


# ---------------------------------------------------------------- output


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):  # and datetimes
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON-able: {value!r}")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_plain, indent=2, ensure_ascii=False)


def when(value: dt.datetime | None) -> str:
    """A moment in Monaco local time, as the funds' staff read it."""
    if value is None:
        return " " * 19
    return value.astimezone(MONACO).strftime("%Y-%m-%d %H:%M:%S")


def timeline(j: dict[str, Any]) -> list[tuple[dt.datetime | None, str, str]]:
    """The journey as (when, step, what) lines, in the order they happened."""
    f = j["file"]
    steps: list[tuple[dt.datetime | None, str, str]] = [
        (
            f["received_at"],
            "received",
            f"from {f['sender']} at {f['remote_path']}, {f['size_bytes']:,} bytes,"
            f" sha256 {f['sha256'] or '(unread)'}",
        )
    ]
    fmt = f"{f['feed']} v{f['format_version']}" if f["format_version"] else f["feed"]
    fmt += f" {f['document']}" if f["document"] else ""
    verdict = f"{fmt}: {f['state']}"
    if f["reason_code"]:
        verdict += f" {f['reason_code']} ({f['reason']})"
    if f["records_total"] is not None:
        verdict += (
            f"; {f['records_total']} records, {f['records_loaded'] or 0} loaded,"
            f" {f['records_rejected'] or 0} rejected"
        )
    if f["duplicate_of"]:
        verdict += f"; duplicate of #{f['duplicate_of']}"
    steps.append((f["decided_at"], "validated", verdict))
    failed = [r for r in j["rules"] if r["failed"]]
    if j["rules"]:
        steps.append((None, "", f"data contract: {len(j['rules'])} rules, {len(failed)} failed"))
    for r in failed:
        steps.append(
            (None, "", f"  {r['rule']} on {r['table_name']}: {r['failed']} of {r['checked']} rows")
        )
    for e in j["errors"]:
        where = f"record {e['record_no']}" if e["record_no"] else "file"
        where += f" ({e['record_id']})" if e["record_id"] else ""
        field = f" {e['field']}" if e["field"] else ""
        steps.append((None, "", f"  {where} {e['rule']}{field}: {e['message']}"))
    if j["error_total"] > len(j["errors"]):
        steps.append((None, "", f"  ... {j['error_total'] - len(j['errors'])} more errors"))
    if j["tables"]:
        loaded = ", ".join(f"{t} {n:,} rows" for t, n in j["tables"].items())
        steps.append((f["decided_at"], "loaded", loaded))
    if f["archived_at"]:
        steps.append((f["archived_at"], "archived", f["archive_path"]))
    if f["acked_at"]:
        steps.append((f["acked_at"], "acknowledged", posixpath.basename(f["ack_path"])))
    if f["data_purged_at"]:
        steps.append(
            (
                f["data_purged_at"],
                "purged",
                "retention dropped its month of receipt: its records, errors and rule results",
            )
        )
    for d in j["ack_downloads"]:
        steps.append((d["at"], "ack read", f"downloaded by {d['actor']}"))
    if j["claim_lines"]:
        total = j["statements"][0]["total"] if j["statements"] else 0
        steps.append((None, "priced", f"{j['claim_lines']} claim lines on {total} statements"))
    for s in j["statements"]:
        copy = f", copy to {s['insurer_id']}" if s["insurer_id"] else ""
        steps.append(
            (
                s["created_at"],
                "statement",
                f"{s['statement_number']} of {s['issued_on']} ({s['channel']}"
                f"{copy}): {s['lines']} lines",
            )
        )
    for e in j["exports"]:
        steps.append(
            (
                e["published_at"],
                "exported",
                f"{e['insurer_id']} #{e['sequence']} {e['file_name']}"
                f" ({e['state']}, day {e['export_day']}): {e['lines']} lines",
            )
        )
    for a in reversed(j["audit"]):
        detail = json.dumps(a["detail"], ensure_ascii=False, default=_plain)
        steps.append((a["at"], a["action"], f"by {a['actor']} {detail}"))
    if j["reprocess_of"]:
        steps.append((None, "reprocess", f"reprocess of #{j['reprocess_of']}"))
    for other in j["reprocessed_as"]:
        steps.append((None, "reprocess", f"reprocessed as #{other}"))
    return steps


def render_text(query: str, found: list[dict[str, Any]]) -> str:
    """The found as a readable timeline, one block per file."""
    if not found:
        return f"no inbound file named {query!r}, with that sha256 or id\n"
    out = []
    if len(found) > 1:
        out.append(f"{len(found)} files match {query!r}, newest first\n")
    for j in found:
        f = j["file"]
        out.append(f"{f['feed']}-{f['id']}  {f['remote_name']}  ({f['state']})")
        for at, step, what in timeline(j):
            out.append(f"  {when(at)}  {step:<14} {what}")
        out.append("")
    return "\n".join(out) + "\n"
