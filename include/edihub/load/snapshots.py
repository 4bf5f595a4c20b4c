"""Registry snapshots: a snapshot replaces its document's table whole, in the load's transaction.

Readers (the contracts of other feeds checking against the registry) see the old rows or the
new ones, never half of each: the rows are deleted, not truncated, so that MVCC keeps the old
version visible until the commit. Two snapshots of one document load one after the other (a
table lock that readers do not wait for), and an older one never replaces a newer one. Each
row's versions are kept in ``edi.registry_history``, valid from the snapshot that brought them
until the one that changed or dropped them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg2 import sql

from edihub.formats.contract import FormatContract

# Columns of every loaded table that say where a row came from, not what it is.
BOOKKEEPING = ("file_id", "sender", "record_no")


class StaleSnapshot(Exception):
    """A snapshot as recent or more recent of the same document was loaded first."""


def _table(fmt: FormatContract) -> sql.Identifier:
    return sql.Identifier("edi", f"{fmt.feed}_{fmt.record.table}")


def _snapshot_date(header: dict[str, str]) -> dt.date:
    return dt.date.fromisoformat(header["snapshot_date"])


def replace(cur: Any, fmt: FormatContract, file_id: int, header: dict[str, str]) -> None:
    """Before the COPY: wait for any other load of this document, then empty its table."""
    day = _snapshot_date(header)
    # SHARE ROW EXCLUSIVE conflicts with itself and with writers, not with readers.
    cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(_table(fmt)))
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
    cur.execute(sql.SQL("DELETE FROM {}").format(_table(fmt)))


def record(cur: Any, fmt: FormatContract, file_id: int, header: dict[str, str]) -> None:
    """After the COPY: register the snapshot and bring the rows' history up to date."""
    day = _snapshot_date(header)
    document = fmt.record.table
    cur.execute(
        sql.SQL(
            "INSERT INTO edi.registry_snapshot (document, snapshot_date, file_id, row_count)"
            " SELECT %s, %s, %s, count(*) FROM {}"
        ).format(_table(fmt)),
        (document, day, file_id),
    )
    current = sql.SQL(
        "SELECT concat_ws('/', {key}) AS key, to_jsonb(t) - %(drop)s::text[] AS row FROM {table} t"
    ).format(
        key=sql.SQL(", ").join(sql.Identifier("t", k) for k in fmt.record.snapshot_key),
        table=_table(fmt),
    )
    params = {"document": document, "day": day, "file_id": file_id, "drop": list(BOOKKEEPING)}
    # Close the versions this snapshot changed or dropped...
    cur.execute(
        sql.SQL(
            "WITH current AS ({current}) UPDATE edi.registry_history h"
            " SET valid_to = %(day)s WHERE h.document = %(document)s AND h.valid_to IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM current c WHERE c.key = h.key AND c.row = h.row)"
        ).format(current=current),
        params,
    )
    # ...and open a version for each row that has none open (new, or changed). In key order:
    # both indexes lead with the key, and rows inserted in random key order scatter the index
    # writes over pages that no longer fit in memory (1.7 times slower for a 1 M-row
    # snapshot, far worse for 17.5 M).
    cur.execute(
        sql.SQL(
            "WITH current AS ({current}) INSERT INTO edi.registry_history"
            " (document, key, valid_from, row, file_id)"
            " SELECT %(document)s, c.key, %(day)s, c.row, %(file_id)s FROM current c"
            " WHERE NOT EXISTS (SELECT 1 FROM edi.registry_history h"
            " WHERE h.document = %(document)s AND h.key = c.key AND h.valid_to IS NULL)"
            " ORDER BY c.key"
        ).format(current=current),
        params,
    )
