"""Registry snapshots: a snapshot replaces its document's table whole, in the load's transaction.

Readers (the contracts of other feeds checking against the registry) see the old rows or the
new ones, never half of each: rows are deleted, not truncated, so that MVCC keeps the old
version visible until the commit. Two snapshots of one document load one after the other (a
table lock that readers do not wait for), and an older one never replaces a newer one.

Each row's history costs only what a snapshot changes. The current version of a row is its row
in the document's table, with ``unchanged_since``, the date of the snapshot that brought it;
``edi.registry_past_version`` holds the versions later snapshots changed or dropped, and the
view ``edi.registry_history`` shows both. A document's first snapshot is COPYed straight into
its table; a later one is COPYed into a staging table, then merged: the rows it changed or
dropped leave the table for the past versions, its new and changed rows go in, and the rows it
left as they were are not written at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from psycopg2 import sql

from edihub.formats.contract import FormatContract

# Columns of every loaded table that say where a row came from, not what it is.
BOOKKEEPING = ("file_id", "sender", "record_no")
SINCE = "unchanged_since"
_STAGE = sql.Identifier("registry_stage")  # a temporary table, dropped at commit


class StaleSnapshot(Exception):
    """A snapshot as recent or more recent of the same document was loaded first."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One snapshot being loaded: its document, its date, and where its rows are COPYed."""

    fmt: FormatContract
    day: dt.date
    target: sql.Composable
    staged: bool


def _table(fmt: FormatContract) -> sql.Identifier:
    return sql.Identifier("edi", f"{fmt.feed}_{fmt.record.table}")


def prepare(cur: Any, fmt: FormatContract, header: dict[str, str]) -> Snapshot:
    """Before the COPY: wait for any other load of this document, refuse a snapshot that is
    not newer than the loaded one, and choose where the rows go."""
    day = dt.date.fromisoformat(header["snapshot_date"])
    table = _table(fmt)
    # SHARE ROW EXCLUSIVE conflicts with itself and with writers, not with readers.
    cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table))
    cur.execute(
        "SELECT max(snapshot_date) FROM edi.registry_snapshot WHERE document = %s",
        (fmt.record.table,),
    )
    newest = cur.fetchone()[0]
    if newest is not None and newest >= day:
        raise StaleSnapshot(
            f"the {fmt.record.table} snapshot of {newest.isoformat()} was loaded first; "
            f"this one of {day.isoformat()} is not more recent and is not loaded"
        )
    cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table))
    if not cur.fetchone()[0]:
        return Snapshot(fmt, day, table, staged=False)
    cur.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
            _STAGE, table
        )
    )
    return Snapshot(fmt, day, _STAGE, staged=True)


def record(cur: Any, snapshot: Snapshot, file_id: int) -> None:
    """After the COPY: merge a staged snapshot into its table, then register the snapshot."""
    fmt = snapshot.fmt
    if snapshot.staged:
        _merge(cur, snapshot)
    cur.execute(
        sql.SQL(
            "INSERT INTO edi.registry_snapshot (document, snapshot_date, file_id, row_count)"
            " SELECT %s, %s, %s, count(*) FROM {}"
        ).format(_table(fmt)),
        (fmt.record.table, snapshot.day, file_id),
    )


def _merge(cur: Any, snapshot: Snapshot) -> None:
    fmt = snapshot.fmt
    table = _table(fmt)
    keys = list(fmt.record.snapshot_key)
    content = [f.name for f in fmt.record.fields] + list(fmt.record.from_header)
    written = [*BOOKKEEPING, *content, SINCE]

    def cols(alias: str, names: list[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)

    same_key = sql.SQL("({}) = ({})").format(cols("s", keys), cols("t", keys))
    params = {
        "document": fmt.record.table,
        "day": snapshot.day,
        "drop": [*BOOKKEEPING, SINCE],
    }
    # The planner needs the staging table's size; joins of a million rows want more than the
    # default 4 MB of work memory, for this transaction only.
    cur.execute(sql.SQL("ANALYZE {}").format(_STAGE))
    cur.execute("SET LOCAL work_mem = '64MB'")
    # The rows this snapshot changed or dropped leave the table as closed versions (in key
    # order: the past versions' index leads with the key)...
    cur.execute(
        sql.SQL(
            "WITH gone AS (DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM {stage} s"
            " WHERE {same_key} AND ({s_content}) IS NOT DISTINCT FROM ({t_content}))"
            " RETURNING t.*)"
            " INSERT INTO edi.registry_past_version"
            " (document, key, valid_from, valid_to, row, file_id)"
            " SELECT %(document)s, concat_ws('/', {g_keys}), g.{since}, %(day)s,"
            " to_jsonb(g) - %(drop)s::text[], g.file_id FROM gone g ORDER BY 2"
        ).format(
            table=table,
            stage=_STAGE,
            same_key=same_key,
            s_content=cols("s", content),
            t_content=cols("t", content),
            g_keys=cols("g", keys),
            since=sql.Identifier(SINCE),
        ),
        params,
    )
    # ...and its rows with no current version (new, or changed) come in from the staging table.
    cur.execute(
        sql.SQL(
            "INSERT INTO {table} ({written}) SELECT {s_written} FROM {stage} s"
            " WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key})"
        ).format(
            table=table,
            written=sql.SQL(", ").join(map(sql.Identifier, written)),
            s_written=cols("s", written),
            stage=_STAGE,
            same_key=same_key,
        ),
        params,
    )
