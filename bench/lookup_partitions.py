"""Lookup benchmark: a data contract's "already loaded" lookup on the partitioned message store.

    .venv/bin/python bench/lookup_partitions.py [--rows N] [--keys K] [--months 0,24,100]

The message store is partitioned by month of receipt (migration 0021), and PostgreSQL has no
index across partitions: a lookup probes the index of every partition it cannot exclude. So,
on the embedded PostgreSQL: ``edi.pharmacy_invoice`` with N invoices received this month, and
beside it a plain table of the same shape and rows (the baseline); then the lookup the
pharmacy contract makes (``invoices_already_loaded``, ``validation.DatabaseLookup.present``)
of K invoice numbers absent from both, as a chunk of a new file brings them, with the
partitioned table holding the migration's months (this one, 3 ahead, DEFAULT) and then that
many older months more. Best of 3 each. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Any

PARTITIONED = "edi.pharmacy_invoice"
PLAIN = "edi.bench_plain_invoice"


def _best(lookup: Any, table: str, keys: list[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        lookup.present(table, "invoice_number", keys, {"sender": "PH1"})
        best = min(best, time.perf_counter() - started)
    return best


def _load(conn: Any, rows: int) -> None:
    """``rows`` invoices received this month, in the partitioned table and in its plain twin."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path,"
            " remote_path_raw, size_bytes, state) VALUES ('pharmacy', 'PH1', 'a.txt',"
            " '/a.txt', '\\x00', 1, 'loaded') RETURNING id"
        )
        file_id = cur.fetchone()[0]
        cur.execute(f"CREATE TABLE {PLAIN} (LIKE {PARTITIONED} INCLUDING ALL)")
        for table in (PARTITIONED, PLAIN):
            cur.execute(
                f"INSERT INTO {table} (sender, invoice_number, file_id, record_no,"
                " registration_number, beneficiary_rank, prescription_ref, prescriber_id,"
                " dispensing_date, total, received_month)"
                " SELECT 'PH1', 'F' || n, %s, n, '100001', 1, 'ORD', 'P1', current_date, 700,"
                " date_trunc('month', now())::date FROM generate_series(1, %s) AS n",
                (file_id, rows),
            )
        cur.execute("ANALYZE")
    conn.commit()


def _older_months(conn: Any, first: int, last: int) -> int:
    """Partitions for the older months ``first`` to ``last`` (from January 2000); the count
    of the table's partitions then."""
    with conn.cursor() as cur:
        for k in range(first, last):
            month = dt.date(2000 + k // 12, k % 12 + 1, 1)
            cur.execute("SELECT edi.ensure_month_partition(%s, %s)", (PARTITIONED, month))
        cur.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", (PARTITIONED,)
        )
        partitions = int(cur.fetchone()[0])
    conn.commit()
    return partitions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="invoices already loaded")
    parser.add_argument("--keys", type=int, default=50_000, help="invoice numbers looked up")
    parser.add_argument("--months", default="0,24,100", help="older months added, in turn")
    args = parser.parse_args(argv)

    import psycopg2

    from edihub.load import db
    from edihub.stack.postgres import EmbeddedPostgres
    from edihub.validation import DatabaseLookup

    print(
        f"# bench/lookup_partitions.py --rows {args.rows:,} --keys {args.keys:,};"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )
    print(f"{'partitions':>10} {'partitioned s':>14} {'plain s':>9} {'ratio':>7}")
    with (
        tempfile.TemporaryDirectory(prefix="edihub-bench-lookups-") as temp,
        EmbeddedPostgres(Path(temp) / "pg") as pg,
    ):
        dsn = pg.ensure_database("bench")
        db.migrate(dsn)
        conn = psycopg2.connect(dsn)
        try:
            _load(conn, args.rows)
            absent = [f"F{n}" for n in range(args.rows + 1, args.rows + 1 + args.keys)]
            lookup = DatabaseLookup(conn)
            added = 0
            for more in sorted(int(m) for m in args.months.split(",")):
                partitions = _older_months(conn, added, more)
                added = more
                slow, plain = _best(lookup, PARTITIONED, absent), _best(lookup, PLAIN, absent)
                print(f"{partitions:>10} {slow:>14.3f} {plain:>9.3f} {slow / plain:>6.1f}x")
        finally:
            conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
