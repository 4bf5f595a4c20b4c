"""Export benchmark: a France-scale day of statement lines fanned out to the 52 insurers.

    .venv/bin/python bench/exports.py [--lines N] [--workers W]

In a temporary folder: an embedded PostgreSQL (migrated) and the embedded SFTP server with one
account per insurer. One day's statements are written straight into the hub's tables (N
statement lines, 3.5 M by default: France's daily volume, on about a million statements, each
line copied to one of the 52 insurers; a third of them take CSV, a third XML, a third
Parquet), as ``build_statements`` would leave them. Then, in the same run:

- the baseline: one bare ``COPY (SELECT ...) TO STDOUT`` of every insurer's rows (the same
  joins and columns as ``exports.ledger``), what PostgreSQL alone needs to hand them out;
- the hub: ``exports.publish`` for every insurer (plan the file's lines, render it, check the
  XML against its XSD, upload it and its manifest over SFTP, record it), on W worker
  processes as Airflow's mapped ``export_insurer`` tasks would run (default: one per CPU).

The target of issue 6 is the 52 files in under 2 minutes. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

DAY = dt.date(2026, 11, 30)
LINES_PER_STATEMENT = 3.5
TARGET_SECONDS = 120.0
HUB = "edihub"


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def insurers() -> list[tuple[str, str, str]]:
    """(insurer id, SFTP account, format) of the 52: the demo's, each format in turn."""
    from edihub.demo import INSURERS, insurer_account

    return [(iid, insurer_account(iid), fmt) for iid, _, fmt, _ in INSURERS]


def seed_day(dsn: str, lines: int) -> None:
    """The day's statements and lines, generated in SQL (about a minute for 3.5 M lines)."""
    import psycopg2

    statements = int(lines / LINES_PER_STATEMENT)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path,"
                " remote_path_raw, size_bytes, state) VALUES ('fse', 'P10001', 'bench.xml',"
                " '/bench.xml', '\\x00'::bytea, 0, 'loaded') RETURNING id"
            )
            (file_id,) = cur.fetchone()
            for n, (iid, account, fmt) in enumerate(insurers()):
                cur.execute(
                    "INSERT INTO edi.registry_insurer (file_id, sender, record_no, insurer_id,"
                    " name, convention_signed_on, status, sftp_account, export_format,"
                    " export_time, unchanged_since) VALUES (%s, 'csm-core', %s, %s, %s,"
                    " '2015-01-01', 'active', %s, %s, '06:00', '2015-01-01')",
                    (file_id, n + 1, iid, f"Mutuelle {iid}", account, fmt),
                )
            _say(f"seed: {statements:,} statements")
            cur.execute(
                "INSERT INTO edi.statement (statement_id, statement_number, registration_number,"
                " issued_on, payment_date, channel, insurer_id, insurer_member_number,"
                " line_count, total_billed, total_reimbursed, total_patient_share)"
                " SELECT s, to_char(%(day)s::date, 'YYYYMMDD') || '-' || lpad(s::text, 7, '0'),"
                "        s::text, %(day)s, %(day)s::date + 1, 'paper',"
                "        'MUT' || lpad((s %% 52 + 1)::text, 3, '0'), 'A' || lpad(s::text, 8, '0'),"
                "        0, 0, 0, 0"
                "   FROM generate_series(1, %(statements)s) s",
                {"day": DAY, "statements": statements},
            )
            _say(f"seed: {lines:,} claim and statement lines")
            cur.execute(
                "INSERT INTO edi.claim_line (claim_line_id, source_kind, source_file_id,"
                " source_sender, source_record_no, source_record_id, source_line_no,"
                " registration_number, beneficiary_rank, care_date, practitioner_id,"
                " service_code, category, quantity, billed, base, rate_percent, reimbursed,"
                " patient_share, rate_valid_from, processed_on)"
                " SELECT i, 'fse_act', %(file)s, 'P10001', i, 'S-' || i, 1,"
                "        (i %% %(statements)s + 1)::text, 0, %(day)s::date - (i %% 20), 'P10001',"
                "        (ARRAY['C','CS','K','SC'])[i %% 4 + 1], '*', 1, 2500 + i %% 5000,"
                "        2500 + i %% 5000, 80, (2500 + i %% 5000) * 4 / 5,"
                "        (2500 + i %% 5000) - (2500 + i %% 5000) * 4 / 5, '2000-01-01', %(day)s"
                "   FROM generate_series(1, %(lines)s) i",
                {"file": file_id, "statements": statements, "day": DAY, "lines": lines},
            )
            cur.execute(
                "INSERT INTO edi.statement_line (statement_id, line_no, claim_line_id, kind,"
                " billed, reimbursed, patient_share)"
                " SELECT (c.claim_line_id - 1) %% %(statements)s + 1,"
                "        (c.claim_line_id - 1) / %(statements)s + 1, c.claim_line_id,"
                "        'original', c.billed, c.reimbursed, c.patient_share"
                "   FROM edi.claim_line c",
                {"statements": statements},
            )
            cur.execute(
                "UPDATE edi.statement s SET line_count = t.n, total_billed = t.b,"
                " total_reimbursed = t.r, total_patient_share = t.p FROM (SELECT statement_id,"
                " count(*) AS n, sum(billed) AS b, sum(reimbursed) AS r, sum(patient_share) AS p"
                " FROM edi.statement_line GROUP BY statement_id) t"
                " WHERE t.statement_id = s.statement_id"
            )
            cur.execute(
                "INSERT INTO edi.statement_day (issued_on, statements, lines) VALUES (%s, %s, %s)",
                (DAY, statements, lines),
            )
            for sequence in ("edi.claim_line_claim_line_id_seq", "edi.statement_statement_id_seq"):
                cur.execute(f"SELECT setval('{sequence}', 1 << 40)")
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()


BARE = """
COPY (
    SELECT s.insurer_id, s.statement_number, sl.line_no, sl.kind, s.issued_on, s.payment_date,
           s.insurer_member_number, c.beneficiary_rank, c.care_date, c.source_kind,
           c.service_code, c.category, c.quantity, c.practitioner_id, sl.billed, c.base,
           c.rate_percent, sl.reimbursed, sl.patient_share
      FROM edi.statement s
      JOIN edi.statement_line sl USING (statement_id)
      JOIN edi.claim_line c ON c.claim_line_id = sl.claim_line_id
     WHERE s.issued_on = %s AND s.insurer_id IS NOT NULL
     ORDER BY s.insurer_id, s.statement_number, sl.line_no
) TO STDOUT WITH (FORMAT csv)
"""


class _Counter(io.RawIOBase):
    """Where the bare COPY writes: bytes counted, then dropped."""

    def __init__(self) -> None:
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.bytes += len(data)
        return len(data)


def bare_copy(dsn: str) -> tuple[float, int]:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        sink = _Counter()
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.copy_expert(cur.mogrify(BARE, (DAY,)).decode(), sink)
        return time.perf_counter() - started, sink.bytes
    finally:
        conn.close()


def publish_one(dsn: str, endpoint: dict[str, Any], insurer_id: str) -> tuple[str, int, float]:
    """One insurer's file, as its export_insurer task publishes it (in a worker process)."""
    from edihub.exports import publish
    from edihub.sftp.client import SftpEndpoint, connect

    started = time.perf_counter()
    with connect(SftpEndpoint(**endpoint)) as sftp:
        published = publish(dsn, sftp, insurer_id, DAY)
    return insurer_id, published.rows, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=3_500_000, help="statement lines of the day")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    from edihub.load.db import migrate
    from edihub.sftp.server import EmbeddedSftpServer, SftpAccount
    from edihub.stack.postgres import EmbeddedPostgres, ensure_database, with_database
    from edihub.stack.run import _key_pair

    print(f"# bench/exports.py --lines {args.lines:,} --workers {args.workers}; Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="edihub-bench-exports-") as temp:
        folder = Path(temp)
        _say("start an embedded PostgreSQL and migrate it")
        server = EmbeddedPostgres(folder / "pg")
        server.start()
        try:
            ensure_database(server.url(), "bench")
            dsn = with_database(server.url(), "bench")
            migrate(dsn)
            started = time.perf_counter()
            seed_day(dsn, args.lines)
            _say(f"seeded in {time.perf_counter() - started:.1f} s")

            root, keys = folder / "sftp", folder / "keys"
            hub_key, hub_public = _key_pair(keys, "hub")
            accounts = [SftpAccount(HUB, root, [hub_public])]
            for _, account, _ in insurers():
                (root / "partners" / account / "outbound" / "statements").mkdir(parents=True)
            sftp = EmbeddedSftpServer(root, keys / "host", accounts).start()
            endpoint = {"host": sftp.host, "port": sftp.port, "username": HUB,
                        "private_key_path": hub_key, "host_key": sftp.host_key_line}  # fmt: skip
            try:
                _say("baseline: one bare COPY of every insurer's rows")
                bare, bare_bytes = bare_copy(dsn)
                _say(f"the hub: exports.publish for 52 insurers on {args.workers} workers")
                started = time.perf_counter()
                with ProcessPoolExecutor(max_workers=args.workers) as pool:
                    done = list(pool.map(publish_one, [dsn] * 52, [endpoint] * 52,
                                         [iid for iid, _, _ in insurers()]))  # fmt: skip
                hub = time.perf_counter() - started
            finally:
                sftp.stop()
            published = sum(p.stat().st_size for p in root.rglob("CSM_*") if p.is_file())
        finally:
            server.stop()

    rows = sum(n for _, n, _ in done)
    by_format: dict[str, float] = {}
    formats = {iid: fmt for iid, _, fmt in insurers()}
    for iid, _, seconds in done:
        by_format[formats[iid]] = by_format.get(formats[iid], 0.0) + seconds
    print(f"{'what':<50} {'rows':>10} {'seconds':>9} {'M rows/s':>9} {'vs bare':>8}")
    bare_row = f"{'bare COPY (SELECT ...) TO STDOUT, all insurers':<50} {rows:>10,} {bare:>9.1f}"
    print(f"{bare_row} {rows / bare / 1e6:>9.2f} {'1.00x':>8}   {bare_bytes / 1e6:,.0f} MB CSV")
    hub_row = f"{'exports.publish x 52 (plan, render, SFTP, record)':<50} {rows:>10,} {hub:>9.1f}"
    print(f"{hub_row} {rows / hub / 1e6:>9.2f} {hub / bare:>7.2f}x   "
          f"{published / 1e6:,.0f} MB published")  # fmt: skip
    for fmt, seconds in sorted(by_format.items()):
        n = sum(1 for f in formats.values() if f == fmt)
        print(f"  {fmt}: {n} insurers, {seconds:.1f} s of worker time")
    print(f"target: the 52 exports in under {TARGET_SECONDS:.0f} s: "
          f"{'met' if hub < TARGET_SECONDS else 'NOT met'} ({hub:.1f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
