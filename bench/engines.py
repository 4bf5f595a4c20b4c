"""Parse-engine benchmark: each format engine against a bare baseline, measured in one run.

    .venv/bin/python bench/engines.py [--records N] [--repeat R] [--contract-records M]
        [--contract-repeat R] [--phases csv,fixed_width,xml,contract,load] [--workdir DIR]

For each format family a file of N records is written with the project's own writers
(deterministic: fixed seeds and dates), then read by the hub's engine, as the hub calls it
(``edihub.formats.readers.open_reader``, every chunk pulled), and by the bare library call
the engine is built on. Every measurement runs in a fresh interpreter (multiprocessing
"spawn"), so its peak RSS (VmHWM) is its own; files are in the page cache
by then. Then ``edihub.validation.check_file`` (format + data contract, offline: lookup=None)
on M records of each family, and the load of the CSV's rows into an embedded PostgreSQL
started in a temporary folder: the hub's ``collect._copy_parquet`` against a bare
``COPY ... FROM STDIN`` of the same CSV text into a same-shaped table.

Figures are printed as a table on stdout; progress goes to stderr. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from edihub.collect import copy_rows, record_columns
from edihub.config import Settings
from edihub.formats.contract import FormatContract, load_formats
from edihub.formats.xml_engine import PARSER_OPTIONS
from edihub.load.snapshots import SINCE

CHUNK = 50_000  # check_file's default chunk size: what the hub's validate step uses
SEED = 2016
# Fixed dates keep the files identical from run to run. The data contracts' date windows
# (EDIHUB_CARE_WINDOW_DAYS, 730 days by default) accept them until late 2028; after that the
# contract phase would reject rows (and slow down building their errors), not the engines.
DAY = dt.date(2026, 11, 2)
CREATED = dt.datetime(2026, 11, 2, 8, 30)
REGISTRY_SENDER = "csm-core"
PHARMACY = "PH000001"
PRACTITIONER = "P10001"
FSE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ALL_PHASES = ("csv", "fixed_width", "xml", "contract", "load")

Result = dict[str, Any]


def formats_of(feed: str) -> list[FormatContract]:
    """Version 1 of ``feed`` only: the benchmark measures v1, whatever else the tree holds."""
    return load_formats(Settings.from_env().formats_dir / feed / "v1")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- test data


def registration(i: int) -> tuple[str, int]:
    """A unique (registration number, beneficiary rank) for record i: 6 digits, ranks 0-3."""
    q, r = divmod(i, 4)
    return str(100_000 + q % 900_000), r + 4 * (q // 900_000)


def _insured_rows(n: int) -> Iterator[dict[str, Any]]:
    from edihub.demo import insured_row

    rng = random.Random(f"insured-{SEED}")
    for i in range(n):
        yield insured_row(rng, *registration(i), DAY)


def gen_csv(folder: str, n: int) -> Result:
    """A registry v1 ``insured`` snapshot of n rows (registry_writer.write_snapshot)."""
    from edihub.registry_writer import write_snapshot

    path = write_snapshot(Path(folder), "insured", DAY, _insured_rows(n))
    return {"path": str(path), "records": n, "bytes": path.stat().st_size}


def gen_fixed_width(folder: str, n: int) -> Result:
    """A pharmacy v1 file of n invoices of 1-4 lines (pharmacy_writer.write_pharmacy_file)."""
    from edihub.demo import PRACTITIONERS, PRODUCTS
    from edihub.pharmacy_writer import Invoice, Line, write_pharmacy_file

    rng = random.Random(f"pharmacy-{SEED}")
    prescribers = [p for p, kind, _ in PRACTITIONERS if kind != "dentist"]
    invoices = []
    for i in range(1, n + 1):
        number, rank = registration(rng.randrange(max(n, 1)))
        lines = [
            Line(code, rng.choice([1, 1, 1, 2, 3]), price, category)
            for code, _, price, category in rng.sample(PRODUCTS, rng.randint(1, 4))
        ]
        invoices.append(
            Invoice(
                invoice_number=f"{i:012d}",
                registration_number=number,
                beneficiary_rank=rank,
                prescriber_id=rng.choice(prescribers),
                dispensing_date=DAY - dt.timedelta(days=rng.randint(0, 20)),
                lines=lines,
                prescription_ref=f"ORD{rng.randint(0, 999_999_999):09d}",
            )
        )
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / f"PHA_{PHARMACY}_00000001_{n}.txt"
    write_pharmacy_file(path, PHARMACY, "00000001", invoices, DAY)
    children = sum(len(inv.lines) for inv in invoices)
    return {"path": str(path), "records": n, "children": children, "bytes": path.stat().st_size}


def gen_xml(folder: str, n: int) -> Result:
    """An FSE v1 file of n care sheets of 1-3 acts (fse_writer.write_fse_file, streamed)."""
    from edihub.demo import ACTS
    from edihub.fse_writer import Act, CareSheet, write_fse_file

    rng = random.Random(f"fse-{SEED}")
    children = 0

    def sheets() -> Iterator[CareSheet]:
        nonlocal children
        for i in range(1, n + 1):
            number, rank = registration(rng.randrange(max(n, 1)))
            acts = [
                Act(code, rng.randint(1, 2), fee)
                for code, fee in rng.sample(ACTS, rng.randint(1, 3))
            ]
            children += len(acts)
            # id, practitioner, registration number, rank, card code: positional, as the
            # sheet's id is named sheet_id or id depending on the writer's version
            yield CareSheet(
                f"{PRACTITIONER}-{i:09d}",
                PRACTITIONER,
                number,
                rank,
                "".join(rng.choices(FSE_ALPHABET, k=8)),
                care_date=DAY - dt.timedelta(days=rng.randint(0, 20)),
                acts=acts,
            )

    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / f"FSE_{PRACTITIONER}_000001_{n}.xml"
    write_fse_file(path, PRACTITIONER, "000001", sheets(), CREATED)
    return {"path": str(path), "records": n, "children": children, "bytes": path.stat().st_size}


GENERATORS: dict[str, Callable[[str, int], Result]] = {
    "csv": gen_csv,
    "fixed_width": gen_fixed_width,
    "xml": gen_xml,
}


# ---------------------------------------------------------------- measurements


def _timed(work: Callable[[], tuple[int, int]]) -> Result:
    """Wall and CPU seconds of ``work``, which returns (records, child rows) read."""
    wall, cpu = time.perf_counter(), time.process_time()
    records, children = work()
    return {
        "seconds": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "records": records,
        "children": children,
    }


def _engine(path: str, feed: str) -> Result:
    """The hub's engine for ``feed``, as open_reader picks and builds it; every chunk read."""
    from edihub.formats.readers import open_reader

    file = Path(path)
    contracts = formats_of(feed)

    def work() -> tuple[int, int]:
        records = children = 0
        _fmt, reader = open_reader(file, file.name, contracts, CHUNK)
        for chunk in reader:
            records += chunk.records.num_rows
            children += chunk.children.num_rows if chunk.children is not None else 0
        return records, children

    return _timed(work)


def csv_engine(path: str) -> Result:
    return _engine(path, "registry")


def csv_bare(path: str) -> Result:
    """pyarrow.csv.read_csv with its defaults (type inference, multithreaded)."""
    return _timed(lambda: (pacsv.read_csv(path).num_rows, 0))


def csv_stream(path: str) -> Result:
    """What CsvFile asks of pyarrow before converting anything: open_csv, its options, bytes."""
    fmt = next(f for f in formats_of("registry") if f.document == "insured")
    names = [f.name for f in fmt.record.fields]

    def work() -> tuple[int, int]:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=max(1 << 20, CHUNK * 128)),
            parse_options=pacsv.ParseOptions(delimiter=fmt.delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in names},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
        return sum(batch.num_rows for batch in reader), 0

    return _timed(work)


def fixed_width_engine(path: str) -> Result:
    return _engine(path, "pharmacy")


def fixed_width_bare(path: str) -> Result:
    """The lines as one text column: pyarrow.csv.read_csv, no delimiter, no quoting."""

    def work() -> tuple[int, int]:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["line"]),
            parse_options=pacsv.ParseOptions(
                delimiter="\x1f", quote_char=False, escape_char=False, newlines_in_values=False
            ),
            convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}),
        )
        return table.num_rows, 0

    return _timed(work)


def xml_engine(path: str) -> Result:
    return _engine(path, "fse")


def xml_bare(path: str) -> Result:
    """lxml iterparse validating against the same XSD, each care sheet cleared as it ends
    (and the sheets before it dropped, as XmlFile does), nothing extracted."""
    from lxml import etree

    fmt = formats_of("fse")[0]
    schema = etree.XMLSchema(etree.parse(str(fmt.schema_path)))
    tag = f"{{{fmt.namespace}}}{fmt.record.element}"

    options = PARSER_OPTIONS  # the engine's own: no DTD, entities or network

    def work() -> tuple[int, int]:
        records = 0
        with open(path, "rb") as source:
            for _event, el in etree.iterparse(
                source, events=("end",), tag=tag, schema=schema, **options
            ):
                records += 1
                el.clear(keep_tail=False)
                parent = el.getparent()
                if parent is not None:
                    while el.getprevious() is not None:
                        del parent[0]
        return records, 0

    return _timed(work)


def contract_check(path: str, warmup: str, feed: str, account: str) -> Result:
    """check_file (format + data contract) offline, after a warm-up run on a small file (GX's
    import and the suites' first build take seconds, once per process)."""
    from edihub.validation import check_file

    settings = Settings.from_env()
    wall = time.perf_counter()
    check_file(Path(warmup), settings, feed, account, None)
    warmup_seconds = time.perf_counter() - wall
    verdict: Any = None

    def work() -> tuple[int, int]:
        nonlocal verdict
        verdict, _errors = check_file(Path(path), settings, feed, account, None)
        return verdict.records_total, 0

    result = _timed(work)
    result["warmup"] = warmup_seconds
    result["state"] = verdict.state
    result["rejected"] = verdict.records_rejected
    result["reason"] = verdict.reason
    return result


def contract_alone(path: str, feed: str, account: str, engine: str) -> Result:
    """The data contract alone: a FileCheck of ``engine`` (offline, as check_file above) over
    the file's chunks parsed beforehand (untimed), then its summary; a first FileCheck on the
    first chunk pays GX's import and suite build (once per process) beforehand."""
    import dataclasses

    from edihub.contracts.engine import DataContract
    from edihub.formats.readers import open_reader
    from edihub.validation import make_file_check

    settings = Settings.from_env()
    file = Path(path)
    fmt, reader = open_reader(file, file.name, formats_of(feed), CHUNK)
    chunks = list(reader)
    contract = DataContract.load(fmt.contract_dir(settings.contracts_dir))

    def check() -> Any:
        made = make_file_check(fmt, contract, account, None, settings)
        return dataclasses.replace(made, engine=engine)

    check().check_chunk(chunks[0])
    violations = 0

    def work() -> tuple[int, int]:
        nonlocal violations
        timed = check()
        violations = sum(len(timed.check_chunk(chunk)) for chunk in chunks)
        violations += len(timed.check_file(reader.header, reader.trailer))
        children = sum(c.children.num_rows for c in chunks if c.children is not None)
        return sum(c.records.num_rows for c in chunks), children

    result = _timed(work)
    result["violations"] = violations
    return result


# -- load: the CSV's rows into PostgreSQL

BENCH_TABLE = "bench_registry_insured"


def load_prepare(csv_path: str, dsn: str, folder: str) -> Result:
    """Untimed: the staging Parquet validate would leave for a file with no rejected row
    (CsvFile chunks through StagingSink), the file's inbound_file row, a table shaped like
    edi.registry_insured, and the exact CSV text _copy_parquet sends, for the bare COPY."""
    import psycopg2

    from edihub.formats.readers import open_reader
    from edihub.validation import StagingSink

    file = Path(csv_path)
    fmt, reader = open_reader(file, file.name, formats_of("registry"), CHUNK)
    sink = StagingSink(Path(folder) / "staging")
    for chunk in reader:
        sink.write(chunk.records, chunk.children, set())
    sink.close()
    staging = Path(folder) / "staging" / "records.parquet"

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO edi.inbound_file (feed, sender, remote_name, remote_path,"
                " remote_path_raw, size_bytes) VALUES ('registry', %s, %s, %s, %s, %s)"
                " RETURNING id",
                (REGISTRY_SENDER, file.name, str(file), str(file).encode(), file.stat().st_size),
            )
            file_id = int(cur.fetchone()[0])
            cur.execute(f"DROP TABLE IF EXISTS edi.{BENCH_TABLE}")
            cur.execute(f"CREATE TABLE edi.{BENCH_TABLE} (LIKE edi.registry_insured INCLUDING ALL)")
            cur.execute(
                f"ALTER TABLE edi.{BENCH_TABLE} ADD FOREIGN KEY (file_id)"
                " REFERENCES edi.inbound_file (id)"
            )
        conn.commit()
    finally:
        conn.close()

    rows = copy_rows(
        pq.read_table(staging),
        record_columns(fmt),
        {"file_id": file_id, "sender": REGISTRY_SENDER, SINCE: DAY},
    )
    n = rows.num_rows
    text = Path(folder) / "copy.csv"
    pacsv.write_csv(rows, str(text), pacsv.WriteOptions(include_header=False))
    return {
        "file_id": file_id,
        "staging": str(staging),
        "copy_text": str(text),
        "records": n,
        "bytes": text.stat().st_size,
        "parquet_bytes": staging.stat().st_size,
    }


def _empty(conn: Any, table: str) -> None:
    """Start from an empty table and a fresh checkpoint, so both COPYs pay the same."""
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE edi.{table}")
        cur.execute("CHECKPOINT")
    conn.autocommit = False


def _count(conn: Any, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM edi.{table}")
        return int(cur.fetchone()[0])


def load_hub(dsn: str, staging: str, file_id: int) -> Result:
    """collect._copy_parquet, as collect.load calls it for a record table, then COMMIT."""
    import psycopg2
    from psycopg2 import sql

    from edihub.collect import _copy_parquet

    fmt = next(f for f in formats_of("registry") if f.document == "insured")
    table = f"{fmt.feed}_{fmt.record.table}"
    conn = psycopg2.connect(dsn)
    try:
        _empty(conn, table)

        def work() -> tuple[int, int]:
            with conn.cursor() as cur:
                rows = _copy_parquet(
                    cur,
                    Path(staging),
                    sql.Identifier("edi", table),
                    record_columns(fmt),
                    {"file_id": file_id, "sender": REGISTRY_SENDER, SINCE: DAY},
                )
            conn.commit()
            return rows, 0

        result = _timed(work)
        result["in_table"] = _count(conn, table)
        return result
    finally:
        conn.close()


def load_bare(dsn: str, copy_text: str) -> Result:
    """One COPY ... FROM STDIN (FORMAT csv) of the same CSV text into a same-shaped table."""
    import psycopg2

    fmt = next(f for f in formats_of("registry") if f.document == "insured")
    columns = ", ".join(record_columns(fmt))
    conn = psycopg2.connect(dsn)
    try:
        _empty(conn, BENCH_TABLE)

        def work() -> tuple[int, int]:
            with conn.cursor() as cur, open(copy_text, "rb") as text:
                cur.copy_expert(
                    f"COPY edi.{BENCH_TABLE} ({columns}) FROM STDIN WITH (FORMAT csv)",
                    text,
                    size=1 << 20,
                )
                rows = cur.rowcount
            conn.commit()
            return rows, 0

        result = _timed(work)
        result["in_table"] = _count(conn, BENCH_TABLE)
        return result
    finally:
        conn.close()


# ---------------------------------------------------------------- running


def vm_hwm_mb() -> float:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries the parent's
    high-water mark across fork and exec, so a spawned child reports at least its parent's."""
    with open("/proc/self/status") as status:
        line = next(ln for ln in status if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _child(target: Callable[..., Result], args: tuple[Any, ...]) -> Result:
    result = target(*args)
    result["rss_mb"] = vm_hwm_mb()
    return result


def isolated(target: Callable[..., Result], *args: Any) -> Result:
    """``target(*args)`` in a fresh interpreter: its peak RSS is its own."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        return pool.apply(_child, (target, args))
    finally:
        pool.close()  # and join: terminating the worker would leak its semaphores
        pool.join()


def best_of(repeat: int, target: Callable[..., Result], *args: Any) -> Result:
    """The fastest of ``repeat`` runs (each in its own process); peak RSS is the largest."""
    runs = [isolated(target, *args) for _ in range(repeat)]
    best = min(runs, key=lambda r: float(r["seconds"]))
    best["rss_mb"] = max(float(r["rss_mb"]) for r in runs)
    best["runs"] = [round(float(r["seconds"]), 3) for r in runs]
    return best


class Report:
    def __init__(self) -> None:
        self.rows: list[list[str]] = []
        self.notes: list[str] = []

    def add(
        self,
        phase: str,
        what: str,
        result: Result,
        size: int,
        baseline: Result | None = None,
        unit: str = "",
        role: str = "baseline",
    ) -> None:
        """A row; ``baseline`` is what its ratio is to, else the row shows ``role``."""
        seconds = float(result["seconds"])
        records = int(result["records"])
        self.rows.append(
            [
                phase,
                what,
                f"{records:,}{unit}",
                f"{size / 1e6:,.1f}",
                f"{seconds:.3f}",
                f"{float(result['cpu']):.2f}",
                f"{size / 1e6 / seconds:,.1f}" if seconds else "-",
                f"{records / seconds:,.0f}" if seconds else "-",
                f"{seconds / float(baseline['seconds']):.2f}x" if baseline else role,
                f"{float(result['rss_mb']):,.0f}",
            ]
        )

    def print(self) -> None:
        head = ["phase", "measured", "records", "MB", "s", "CPU s", "MB/s", "rec/s"]
        head += ["vs baseline", "peak RSS MB"]
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(len(head))]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        print(line(head))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in self.rows:
            print(line(row))
        for note in self.notes:
            print(f"\n- {note}", end="")
        print()


_GENERATED: dict[tuple[str, int], Result] = {}


def generate(family: str, folder: Path, n: int) -> Result:
    """The file of ``n`` records of ``family``, written once per run."""
    if (family, n) not in _GENERATED:
        say(f"generate {family}: {n:,} records")
        wall = time.perf_counter()
        target = folder / f"{family}_{n}"
        target.mkdir(parents=True, exist_ok=True)
        made = isolated(GENERATORS[family], str(target), n)
        say(f"  {made['bytes'] / 1e6:,.1f} MB in {time.perf_counter() - wall:.1f} s")
        _GENERATED[family, n] = made
    return _GENERATED[family, n]


def _measure(label: str, repeat: int, target: Callable[..., Result], *args: Any) -> Result:
    say(f"{label} ...")
    result = best_of(repeat, target, *args)
    say(
        f"  {result['seconds']:.2f} s (runs {result['runs']}), {result['rss_mb']:,.0f} MB RSS, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return result


def _engines(
    report: Report, families: list[str], folder: Path, n: int, repeat: int
) -> dict[str, float]:
    """Engine vs baseline per family; returns each engine's seconds per record."""
    plans: dict[str, tuple[str, Callable[..., Result], list[tuple[str, Callable[..., Result]]]]]
    plans = {
        "csv": (
            "CsvFile (registry/v1 insured)",
            csv_engine,
            [
                ("pyarrow.csv.read_csv, defaults", csv_bare),
                ("  context: pyarrow.csv.open_csv as CsvFile, untyped", csv_stream),
            ],
        ),
        "fixed_width": (
            "FixedWidthFile (pharmacy/v1)",
            fixed_width_engine,
            [("pyarrow.csv.read_csv, lines as 1 column", fixed_width_bare)],
        ),
        "xml": (
            "XmlFile (fse/v1)",
            xml_engine,
            [("lxml iterparse + XSD, clear", xml_bare)],
        ),
    }
    per_record: dict[str, float] = {}
    for family in families:
        made = generate(family, folder, n)
        path, size = made["path"], int(made["bytes"])
        label, engine, baselines = plans[family]
        measured = [
            (what, _measure(f"{family}: {what.strip()}", repeat, fn, path))
            for what, fn in baselines
        ]
        result = _measure(f"{family}: {label}", repeat, engine, path)
        per_record[family] = float(result["seconds"]) / n
        if result["records"] != n:
            report.notes.append(f"{family}: the engine read {result['records']} records, not {n}")
        report.add(family, label, result, size, measured[0][1])
        for what, base in measured:
            first = measured[0][1]
            # the bare fixed-width read counts lines (header, invoices, their lines, trailer)
            unit = " lines" if family == "fixed_width" else ""
            report.add(family, what, base, size, None if base is first else first, unit)
        if made.get("children"):
            report.notes.append(
                f"{family}: {n:,} records with {made['children']:,} child rows "
                f"({result['children']:,} read by the engine); rec/s counts records"
            )
    return per_record


def _contract(
    report: Report, folder: Path, m: int, repeat: int, engines: dict[str, float]
) -> dict[str, float]:
    """check_file per family, then the data contract alone with each contract engine;
    ``engines`` holds each format engine's seconds per record, if run. Returns the compiled
    contract's seconds per record alone, per feed."""
    alone_per_record: dict[str, float] = {}
    feeds = {
        "csv": ("registry", REGISTRY_SENDER),
        "fixed_width": ("pharmacy", PHARMACY),
        "xml": ("fse", PRACTITIONER),
    }
    for family, (feed, account) in feeds.items():
        made = generate(family, folder, m)
        warm = generate(family, folder, 2_000)
        result = _measure(
            f"contract: check_file {feed} ({m:,} records)",
            repeat,
            contract_check,
            made["path"],
            warm["path"],
            feed,
            account,
        )
        seconds = float(result["seconds"])
        report.add(
            "contract",
            f"check_file {feed}, lookup=None: {seconds * 1e6 / m:,.1f} s per M rows",
            result,
            int(made["bytes"]),
            role="-",
        )
        if family in engines:
            alone = seconds / m - engines[family]
            report.notes.append(
                f"contract {feed}: the data contract alone is about {alone * 1e6:,.1f} s per M "
                f"rows (check_file minus the engine's {engines[family] * 1e6:,.1f} s per M rows)"
            )
        report.notes.append(
            f"contract {feed}: verdict {result['state']}, {result['rejected']} rejected"
            + (f" ({result['reason']})" if result["reason"] else "")
            + f"; warm-up check_file of 2,000 records took {result['warmup']:.1f} s (not counted)"
        )
        by_engine = {
            engine: _measure(
                f"contract: FileCheck {feed} alone, {engine} engine ({m:,} records)",
                repeat,
                contract_alone,
                made["path"],
                feed,
                account,
                engine,
            )
            for engine in ("gx", "compiled")
        }
        for engine, label in (("compiled", "compiled"), ("gx", "gx, the reference")):
            alone = float(by_engine[engine]["seconds"])
            report.add(
                "contract",
                f"FileCheck {feed} alone ({label}): {alone * 1e6 / m:,.1f} s per M rows",
                by_engine[engine],
                int(made["bytes"]),
                by_engine["gx"] if engine == "compiled" else None,
            )
        alone_per_record[feed] = float(by_engine["compiled"]["seconds"]) / m
        gx_found, found = (by_engine[e]["violations"] for e in ("gx", "compiled"))
        if gx_found != found:
            report.notes.append(
                f"contract {feed}: gx found {gx_found} violations, compiled {found}"
            )
    return alone_per_record


def _load(report: Report, folder: Path, n: int, repeat: int) -> float:
    """The load phase; returns the bare COPY's seconds per record."""
    from edihub.load.db import migrate
    from edihub.stack.postgres import EmbeddedPostgres, ensure_database, with_database

    made = generate("csv", folder, n)
    say("load: start an embedded PostgreSQL and migrate it")
    pg_folder = Path(tempfile.mkdtemp(prefix="edihub-bench-pg-"))
    server = EmbeddedPostgres(pg_folder / "data")
    server.start()
    try:
        ensure_database(server.url(), "bench")
        dsn = with_database(server.url(), "bench")
        migrate(dsn)
        say("load: staging Parquet, inbound_file row, same-shaped table, COPY text")
        prep = isolated(load_prepare, made["path"], dsn, str(folder / f"load_{n}"))
        size = int(prep["bytes"])
        bare = _measure("load: bare COPY FROM STDIN", repeat, load_bare, dsn, prep["copy_text"])
        hub = _measure(
            "load: collect._copy_parquet", repeat, load_hub, dsn, prep["staging"], prep["file_id"]
        )
        for what, result in (("_copy_parquet", hub), ("bare COPY", bare)):
            if result["in_table"] != prep["records"]:
                report.notes.append(f"load {what}: {result['in_table']} rows in the table")
        report.add("load", "collect._copy_parquet -> edi.registry_insured", hub, size, bare)
        report.add("load", "COPY FROM STDIN (csv) -> same-shaped table", bare, size)
        report.notes.append(
            f"load: MB is the CSV text sent to COPY ({size / 1e6:,.1f} MB; the staging Parquet "
            f"is {int(prep['parquet_bytes']) / 1e6:,.1f} MB); both tables have "
            "edi.registry_insured's keys, generated column and file_id foreign key; each COPY "
            "starts from an empty table after a CHECKPOINT; times include the COMMIT; peak RSS "
            "is the client's (the server is another process)"
        )
        return float(bare["seconds"]) / n
    finally:
        say("load: stop PostgreSQL")
        server.stop()
        shutil.rmtree(pg_folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records per file")
    parser.add_argument(
        "--contract-records",
        type=int,
        default=None,
        help="records per file for the check_file phase (default: --records)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; best kept")
    parser.add_argument(
        "--contract-repeat",
        type=int,
        default=1,
        help="runs of each check_file measurement (slow: a minute or two per million rows)",
    )
    parser.add_argument(
        "--phases", default=",".join(ALL_PHASES), help=f"comma-separated, of {ALL_PHASES}"
    )
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(ALL_PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {sorted(unknown)}")
    n = args.records
    m = args.contract_records or n

    print(
        f"# bench/engines.py --records {n} (check_file on {m:,}), best of {args.repeat} "
        f"(check_file: of {args.contract_repeat}), "
        f"chunk {CHUNK:,}; Python {platform.python_version()}, pyarrow {pa.__version__}, "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    report = Report()
    with tempfile.TemporaryDirectory(prefix="edihub-bench-") as temp:
        folder = args.workdir or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        families = [p for p in phases if p in GENERATORS]
        engines = _engines(report, families, folder, n, args.repeat)
        alone: dict[str, float] = {}
        if "contract" in phases:
            alone = _contract(report, folder, m, args.contract_repeat, engines)
        if "load" in phases:
            copy = _load(report, folder, n, args.repeat)
            if "registry" in alone:  # the same registry rows, checked and then copied
                report.notes.append(
                    f"registry insured: the data contract alone (compiled) takes "
                    f"{alone['registry'] * 1e6:,.1f} s per M rows, the bare COPY of the same rows "
                    f"{copy * 1e6:,.1f} s per M rows ({alone['registry'] / copy:.2f}x)"
                )
        say(f"done in {time.perf_counter() - started:.0f} s")
    report.notes.append(f"load average {os.getloadavg()[0]:.2f} at the end")
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
