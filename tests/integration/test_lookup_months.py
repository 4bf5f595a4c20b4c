"""A data contract's lookup of records already loaded reads only the months of the message
store it names (``received_within``), on the real PostgreSQL: a lookup over every month
would cost one index probe per month and value, ten years of months after ten years."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import psycopg2

from edihub.contracts.engine import AtLeast
from edihub.validation import DatabaseLookup


class ExplainedLookup(DatabaseLookup):
    """The same queries, with the partitions PostgreSQL's plan reads for each."""

    read: list[set[str]]

    def _rows(self, query: Any, params: list[Any]) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(b"EXPLAIN " + cur.mogrify(query, params))
            plan = "\n".join(line for (line,) in cur.fetchall())
        self.read.append(set(re.findall(r" on (pharmacy_invoice_\w+)", plan)))
        return super()._rows(query, params)


def test_a_lookup_since_a_month_reads_only_the_partitions_from_that_month(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path,"
                " remote_path_raw, size_bytes, state) VALUES"
                " ('pharmacy', 'PH1', 'a.txt', '/a.txt', '\\x00', 1, 'loaded') RETURNING id"
            )
            file_id = cur.fetchone()[0]
            months = [dt.date(2019, m, 1) for m in range(1, 13)]
            for month in months:
                cur.execute(
                    "SELECT edi.ensure_month_partition('edi.pharmacy_invoice', %s)", (month,)
                )
            for number, month in (("F1", months[2]), ("F2", months[10])):
                cur.execute(
                    "INSERT INTO edi.pharmacy_invoice (sender, invoice_number, file_id, record_no,"
                    " registration_number, beneficiary_rank, prescription_ref, prescriber_id,"
                    " dispensing_date, total, received_month)"
                    " VALUES ('PH1', %s, %s, 1, '100001', 1, 'ORD', 'P1', %s, 700, %s)",
                    (number, file_id, month, month),
                )
            cur.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'edi.pharmacy_invoice'::regclass"
            )
            partitions = {name for (name,) in cur.fetchall()}
        conn.commit()
        lookup = ExplainedLookup(conn)
        lookup.read = []
        numbers = ["F1", "F2"]
        since = {"sender": "PH1", "received_month": AtLeast(dt.date(2019, 6, 1))}
        assert lookup.present("edi.pharmacy_invoice", "invoice_number", numbers, since) == {"F2"}
        assert lookup.present("edi.pharmacy_invoice", "invoice_number", numbers, {}) == {"F1", "F2"}
        recent, every = lookup.read
        assert every == partitions
        # From June 2019 on (the migration's months ahead of today too), and the DEFAULT one,
        # where rows of a month not made in time may wait.
        assert recent == {p for p in partitions if p[-6:] >= "201906" or p.endswith("default")}
        assert "pharmacy_invoice_201905" not in recent
    finally:
        conn.close()
