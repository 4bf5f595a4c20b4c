"""End-to-end benchmark per feed: the hub's collect steps against bare COPY, lxml+XSD and dlt.

    .venv/bin/python bench/pipeline.py [--records N] [--feeds csv,fixed_width,xml]
        [--big-mb MB] [--dlt-modes rows,arrow] [--workdir DIR]

In a temporary folder: an embedded PostgreSQL (migrated) and the embedded SFTP server with the
hub's account and one per sender (csm-core, PH000001, P10001). For each feed a file of N
records is written with bench/engines.py's generators (registry ``insured`` snapshot CSV,
pharmacy fixed-width, FSE XML), uploaded by its sender into its inbox, then, each in a fresh
process (engines.isolated: its peak RSS is its own), in this order:

- contracts alone: ``FileCheck`` over the file's chunks parsed beforehand, with the database's
  lookups, as validate would run it (before the hub has loaded the file, so that the rules
  about rows already loaded see what validate sees);
- the hub: ``collect.list_inbound``, ``fetch``, ``validate``, ``load``, ``archive`` and
  ``acknowledge``, the steps a collect DAG task runs, each timed;
- bare COPY: the rows the hub loaded, exported from its tables as CSV, COPYed into tables of
  the same shape (keys, generated columns, foreign keys) in one transaction;
- for the XML feed, a bare lxml iterparse validating against the same XSD (engines.xml_bare);
- dlt (bench/dlt_load.py, in its own venv ``.bench/dlt-venv``, created on first use): the CSV
  file itself for the registry; for fixed-width and XML, the CSV the bare COPY loads (the
  hub's rows, records and child rows as two tables).

The registry the pharmacy and FSE contracts look up (insured, practitioners, FSE cards) is
loaded first through ``collect.ingest_local``, untimed; the insured are the CSV feed's file
when it runs (first). The CSV feed then loads the next day's snapshot of its document (1 % of
the rows changed, 0.5 % dropped, 0.5 % new), the registry's daily case, merged into the rows
of the first, against a bare COPY of all its rows. Last, the RSS of the hub's collect of a
registry CSV of ``--big-mb`` MB (2 GB for 1 M records, scaled with N otherwise), made by
repeating a block with fresh ids.

The table goes to stdout in Markdown, then each target of issue 6 with PASS or MISS; progress
to stderr. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import engines
from engines import (
    CHUNK,
    DAY,
    PHARMACY,
    PRACTITIONER,
    REGISTRY_SENDER,
    Report,
    Result,
    isolated,
    say,
    vm_hwm_mb,
)

from edihub.config import REPO_ROOT, Settings

FEEDS = {  # family: (feed, sender, document of the format)
    "csv": ("registry", REGISTRY_SENDER, "insured"),
    "fixed_width": ("pharmacy", PHARMACY, None),
    "xml": ("fse", PRACTITIONER, None),
}
HUB = "edihub"
DLT_VENV = REPO_ROOT / ".bench" / "dlt-venv"
DLT_REQUIREMENT = "dlt[postgres]==1.31.0"
STEPS = ("fetch", "parse+contracts", "COPY+commit", "archive+ack")
NEXT_DAY = DAY + dt.timedelta(days=1)  # the CSV feed's second snapshot


# ---------------------------------------------------------------- in a fresh process each


def _mark(steps: dict[str, Result], step: str, wall: float, cpu: float) -> tuple[float, float]:
    """Record ``step`` as ended now (seconds since ``wall``/``cpu``); peak RSS so far."""
    now, cpu_now = time.perf_counter(), time.process_time()
    steps[step] = {"seconds": now - wall, "cpu": cpu_now - cpu, "rss_mb": vm_hwm_mb()}
    return now, cpu_now


def hub_collect(endpoint: dict[str, Any], dsn: str, settings: Settings, feed: str) -> Result:
    """The collect steps on the one file in the feed's inboxes, as a collect task runs them.
    Imports first: a worker has them loaded before its task starts."""
    from edihub import collect
    from edihub.sftp.client import SftpEndpoint, connect

    steps: dict[str, Result] = {}
    started = wall = time.perf_counter()
    cpu_started = cpu = time.process_time()
    with connect(SftpEndpoint(**endpoint)) as sftp:
        (item,) = collect.list_inbound(sftp, feed, settings.settle_seconds)
        file_id = collect.fetch(sftp, dsn, settings, item)
        wall, cpu = _mark(steps, "fetch", wall, cpu)
        collect.validate(dsn, settings, file_id)
        wall, cpu = _mark(steps, "parse+contracts", wall, cpu)
        collect.load(dsn, settings, file_id)
        wall, cpu = _mark(steps, "COPY+commit", wall, cpu)
        collect.archive(sftp, dsn, file_id)
        collect.acknowledge(sftp, dsn, file_id)
        _mark(steps, "archive+ack", wall, cpu)
    summary = collect.file_summary(dsn, file_id)
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu_started,
        "records": summary["records_loaded"],
        "steps": steps,
        "summary": summary,
    }


def contracts_alone(path: str, settings: Settings, feed: str, account: str, dsn: str) -> Result:
    """The data contract's FileCheck over chunks parsed beforehand (untimed), with the
    database's lookups; a first FileCheck on the first chunk warms GX up (suites built once
    per process), then a fresh one checks every chunk and the file."""
    import psycopg2

    from edihub.contracts.engine import DataContract, FileCheck
    from edihub.formats.contract import feed_formats
    from edihub.formats.readers import open_reader
    from edihub.validation import DatabaseLookup, make_file_check

    file = Path(path)
    fmt, reader = open_reader(file, file.name, feed_formats(settings.formats_dir, feed), CHUNK)
    chunks = list(reader)
    contract = DataContract.load(fmt.contract_dir(settings.contracts_dir))
    conn = psycopg2.connect(dsn)
    try:

        def check() -> FileCheck:
            return make_file_check(fmt, contract, account, DatabaseLookup(conn), settings)

        check().check_chunk(chunks[0])
        wall, cpu = time.perf_counter(), time.process_time()
        timed = check()
        violations = sum(len(timed.check_chunk(chunk)) for chunk in chunks)
        violations += len(timed.check_file(reader.header, reader.trailer))
        return {
            "seconds": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            "records": sum(c.records.num_rows for c in chunks),
            "children": sum(c.children.num_rows for c in chunks if c.children is not None),
            "violations": violations,
        }
    finally:
        conn.close()


def bare_copy(dsn: str, tables: list[tuple[str, list[str], str]]) -> Result:
    """One COPY ... FROM STDIN (FORMAT csv) per (table, columns, CSV file), one COMMIT."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")  # as engines.load_bare: both sides start from one
        conn.autocommit = False
        wall, cpu = time.perf_counter(), time.process_time()
        rows = 0
        with conn.cursor() as cur:
            for table, columns, text in tables:
                with open(text, "rb") as source:
                    cur.copy_expert(
                        f"COPY edi.{table} ({', '.join(columns)}) FROM STDIN"
                        " WITH (FORMAT csv, HEADER true)",
                        source,
                        size=1 << 20,
                    )
                rows += cur.rowcount
        conn.commit()
        return {
            "seconds": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            "records": rows,
        }
    finally:
        conn.close()


def cards_of(xml_path: str, folder: str) -> Result:
    """The registry card snapshot of every (registration number, rank, card code) the FSE
    file names, valid since 2020: what the FSE contract looks its sheets up in."""
    from edihub.formats.readers import open_reader
    from edihub.registry_writer import write_snapshot

    file = Path(xml_path)
    _fmt, reader = open_reader(file, file.name, engines.formats_of("fse"), CHUNK)
    cards: set[tuple[str, int, str]] = set()
    for chunk in reader:
        cols = [
            chunk.records.column(c).to_pylist()
            for c in ("registration_number", "beneficiary_rank", "fse_code")
        ]
        cards.update(zip(*cols, strict=True))
    rows = (
        {
            "registration_number": n,
            "beneficiary_rank": r,
            "fse_code": code,
            "valid_from": dt.date(2020, 1, 1),
        }
        for n, r, code in sorted(cards)
    )
    path = write_snapshot(Path(folder), "card", DAY, rows)
    return {"path": str(path), "records": len(cards)}


def gen_next_snapshot(path: str, folder: str) -> Result:
    """The CSV feed's insured snapshot as the core systems send it the next day: of every
    1,000 rows, 10 changed (a new last name) and 5 dropped, and 5 new rows per 1,000 added at
    the end (fresh registration numbers and ranks, the rest copied from a dropped row)."""
    head, *lines = Path(path).read_bytes().splitlines()
    kept: list[bytes] = []
    dropped: list[bytes] = []
    changed = 0
    for i, line in enumerate(lines):
        if i % 1000 < 5:
            dropped.append(line.split(b",", 2)[2])
        elif i % 1000 < 15:
            number, rank, tail = line.split(b",", 2)
            kept.append(b"%s,%s,CHANGED%s" % (number, rank, tail))
            changed += 1
        else:
            kept.append(line)
    kept += [b"%s,%d,%s" % (*_ids(len(lines) + j), tail) for j, tail in enumerate(dropped)]
    out = Path(folder) / Path(path).name.replace(f"{DAY:%Y%m%d}", f"{NEXT_DAY:%Y%m%d}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"\n".join([head, *kept]) + b"\n")
    return {
        "path": str(out),
        "records": len(kept),
        "bytes": out.stat().st_size,
        "changed": changed,
        "dropped": len(dropped),
    }


def gen_big_csv(folder: str, size: int) -> Result:
    """A registry insured snapshot (two days after DAY) of about ``size`` bytes: one block of
    100,000 rows from gen_csv, repeated with fresh registration numbers and ranks (the rest of
    each row is the block's), so that gigabytes take seconds to write."""
    block = engines.gen_csv(str(Path(folder) / "block"), 100_000)
    head, *lines = Path(block["path"]).read_bytes().splitlines()
    tails = [line.split(b",", 2)[2] for line in lines]
    path = Path(folder) / Path(block["path"]).name.replace(
        f"{DAY:%Y%m%d}", f"{NEXT_DAY + dt.timedelta(days=1):%Y%m%d}"
    )
    written = n = 0
    with path.open("wb") as out:
        written += out.write(head + b"\n")
        while written < size:
            text = b"".join(b"%s,%d,%s\n" % (*_ids(n + j), tail) for j, tail in enumerate(tails))
            written += out.write(text)
            n += len(tails)
    shutil.rmtree(Path(folder) / "block")
    return {"path": str(path), "records": n, "bytes": written}


def _ids(i: int) -> tuple[bytes, int]:
    number, rank = engines.registration(i)
    return number.encode(), rank


# ---------------------------------------------------------------- set-up, in this process


def _sql(dsn: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def ingest(dsn: str, settings: Settings, path: str) -> Result:
    """A registry snapshot loaded as an engineer seeds the hub (collect.ingest_local)."""
    from edihub import collect

    file_id = collect.ingest_local(dsn, settings, "registry", Path(path), REGISTRY_SENDER)
    outcome = collect.file_summary(dsn, file_id)
    if outcome["state"] != "loaded":
        raise RuntimeError(f"registry seed {Path(path).name} not loaded: {outcome}")
    return outcome


def seed_registry(
    dsn: str, settings: Settings, folder: Path, made: dict[str, Result], families: list[str]
) -> None:
    """What the pharmacy and FSE contracts look up: practitioners, the FSE file's cards, and
    the insured when the CSV feed (whose file they are) is not measured. Each snapshot is
    ingested in a child process, so that this one, the parent of every measured process,
    stays small."""
    from edihub.demo import practitioner_rows
    from edihub.registry_writer import write_snapshot

    seed = folder / "registry-seed"
    practitioners = write_snapshot(seed, "practitioner", DAY, practitioner_rows())
    isolated(ingest, dsn, settings, str(practitioners))
    if "xml" in families:
        say("registry seed: the FSE file's cards")
        cards = isolated(cards_of, made["xml"]["path"], str(seed))
        say(f"  {cards['records']:,} cards")
        isolated(ingest, dsn, settings, cards["path"])
    if "csv" not in families and {"xml", "fixed_width"} & set(families):
        say("registry seed: the insured (the CSV feed's file, which is not measured)")
        isolated(ingest, dsn, settings, made["csv"]["path"])


def sftp_server(folder: Path, partners: list[str]) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The embedded SFTP server: the hub's account on the tree, one per partner."""
    from edihub.sftp import layout
    from edihub.sftp.server import EmbeddedSftpServer, SftpAccount
    from edihub.stack.run import _key_pair

    root, keys = folder / "sftp", folder / "keys"
    accounts, private = [], {}
    for name in [HUB, *partners]:
        private[name], public = _key_pair(keys, name)
        home = root if name == HUB else root / "partners" / name
        for sub in () if name == HUB else layout.partner_folders():
            (home / sub).mkdir(parents=True, exist_ok=True)
        accounts.append(SftpAccount(name, home, [public]))
    server = EmbeddedSftpServer(root, keys / "host", accounts).start()
    endpoints = {
        name: {
            "host": server.host,
            "port": server.port,
            "username": name,
            "private_key_path": key,
            "host_key": server.host_key_line,
        }
        for name, key in private.items()
    }
    return server, endpoints


def upload(endpoint: dict[str, Any], path: str, feed: str) -> None:
    from edihub.sftp.client import SftpEndpoint, connect, put_atomic

    with connect(SftpEndpoint(**endpoint)) as sftp:
        put_atomic(sftp, Path(path), f"/inbound/{feed}/{Path(path).name}")


def loaded_tables(feed: str, document: str | None) -> list[tuple[str, list[str]]]:
    """(table, COPY columns) of the feed's record table and child table, as collect.load
    fills them."""
    from edihub.collect import child_columns, record_columns

    fmt = next(f for f in engines.formats_of(feed) if (f.document or None) == document)
    tables = [(f"{fmt.feed}_{fmt.record.table}", record_columns(fmt))]
    if fmt.record.children:
        tables.append((f"{fmt.feed}_{fmt.record.children.table}", child_columns(fmt)))
    return tables


def same_shaped(dsn: str, tables: list[str]) -> None:
    """``edi.bench_<t>`` like each ``edi.<t>`` (INCLUDING ALL) with its foreign keys, those
    to another of ``tables`` pointed at its bench twin."""
    for table in tables:
        _sql(dsn, f"DROP TABLE IF EXISTS edi.bench_{table} CASCADE")
        _sql(dsn, f"CREATE TABLE edi.bench_{table} (LIKE edi.{table} INCLUDING ALL)")
        keys = _sql(
            dsn,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype = 'f'",
            f"edi.{table}",
        )
        for (definition,) in keys:
            for other in tables:
                definition = definition.replace(f"edi.{other}(", f"edi.bench_{other}(")
            _sql(dsn, f"ALTER TABLE edi.bench_{table} ADD {definition}")


def export_rows(
    dsn: str, tables: list[tuple[str, list[str]]], file_id: int | None, folder: Path
) -> list[str]:
    """The hub's rows of the file (of the whole table: None), per table, as CSV with a header:
    what the bare COPY and dlt load."""
    import psycopg2

    paths = []
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            for table, columns in tables:
                path = folder / f"{table}.csv"
                with path.open("wb") as out:
                    where = "" if file_id is None else f" WHERE file_id = {int(file_id)}"
                    cur.copy_expert(
                        f"COPY (SELECT {', '.join(columns)} FROM edi.{table}{where})"
                        " TO STDOUT WITH (FORMAT csv, HEADER true)",
                        out,
                    )
                paths.append(str(path))
    finally:
        conn.close()
    return paths


def dlt_python() -> Path:
    """The dlt venv's interpreter; the venv is made on first use (git-ignored)."""
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        say(f"dlt: create {DLT_VENV} and pip install {DLT_REQUIREMENT} pyarrow (once)")
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", DLT_REQUIREMENT, "pyarrow"], check=True
        )
    return python


def dlt_load(dsn: str, dataset: str, mode: str, files: dict[str, str], folder: Path) -> Result:
    _sql(dsn, f'DROP SCHEMA IF EXISTS "{dataset}" CASCADE')
    done = subprocess.run(
        [
            str(dlt_python()),
            str(Path(__file__).with_name("dlt_load.py")),
            "--dsn",
            dsn,
            "--dataset",
            dataset,
            "--mode",
            mode,
            "--pipelines-dir",
            str(folder / "dlt"),
            *(f"{table}={path}" for table, path in files.items()),
        ],
        check=True,
        stdout=subprocess.PIPE,  # its errors and progress go to our stderr
        text=True,
        env=os.environ | {"RUNTIME__DLTHUB_TELEMETRY": "false"},
    )
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    _sql(dsn, f'DROP SCHEMA IF EXISTS "{dataset}" CASCADE')
    return result


# ---------------------------------------------------------------- the run


def _measure(label: str, target: Any, *args: Any) -> Result:
    say(f"{label} ...")
    result = isolated(target, *args)
    say(
        f"  {result['seconds']:.2f} s, {result['rss_mb']:,.0f} MB RSS, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return result


class Targets:
    """Issue 6's targets, each with what was measured and PASS or MISS."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, bool]] = []

    def ratio(self, what: str, ours: float, theirs: float, at_least: float, unit: str) -> None:
        """``theirs / ours`` seconds (our throughput relative to theirs) against ``at_least``."""
        value = theirs / ours
        shown = f"{value:.0%}" if unit == "%" else f"{value:.2f}x"
        goal = f">= {at_least:.0%}" if unit == "%" else f">= {at_least:g}x"
        self.rows.append((what, shown, goal, value >= at_least))

    def below(self, what: str, value: float, limit: float, unit: str) -> None:
        self.rows.append((what, f"{value:,.0f} {unit}", f"< {limit:,.0f} {unit}", value < limit))

    def print(self) -> None:
        print("\n| target | measured | goal | |")
        print("|---|---|---|---|")
        for what, shown, goal, ok in self.rows:
            print(f"| {what} | {shown} | {goal} | {'PASS' if ok else 'MISS'} |")


def hub_rows(
    report: Report, phase: str, label: str, hub: Result, size: int, baseline: Result | None
) -> None:
    """The hub's end-to-end row, then one per step (peak RSS: by the end of the step)."""
    report.add(phase, label, hub, size, baseline, role="-")
    for step in STEPS:
        timed = hub["steps"][step] | {"records": hub["records"]}
        report.add(phase, f"  {step}", timed, size, role="step")


def bare_copy_of(
    label: str, dsn: str, tables: list[tuple[str, list[str]]], exported: list[str]
) -> Result:
    """The bare COPY of the exported CSV of each table into its empty same-shaped twin."""
    same_shaped(dsn, [t for t, _ in tables])
    twins = [(f"bench_{t}", cols, csv) for (t, cols), csv in zip(tables, exported, strict=True)]
    return _measure(label, bare_copy, dsn, twins)


def run_feed(
    family: str, n: int, made: Result, ctx: dict[str, Any], report: Report, targets: Targets
) -> None:
    feed, sender, document = FEEDS[family]
    dsn, settings, folder = ctx["dsn"], ctx["settings"], ctx["folder"]
    path, size = made["path"], int(made["bytes"])
    say(f"{feed}: upload {size / 1e6:,.1f} MB as {sender}")
    upload(ctx["endpoints"][sender], path, feed)
    contract = _measure(
        f"{feed}: contracts alone (FileCheck, {n:,} records)",
        contracts_alone,
        path,
        settings,
        feed,
        sender,
        dsn,
    )
    hub = _measure(
        f"{feed}: the hub's collect steps", hub_collect, ctx["endpoints"][HUB], dsn, settings, feed
    )
    summary = hub["summary"]
    tables = loaded_tables(feed, document)
    exported = export_rows(dsn, tables, int(summary["id"]), folder)
    copy = bare_copy_of(f"{feed}: bare COPY of the hub's rows", dsn, tables, exported)
    rows = int(copy["records"])
    label = f"{feed}: hub end to end (SFTP -> contracts -> COPY -> commit -> ack)"
    hub_rows(report, family, label, hub, size, copy)
    report.notes.append(
        f"{feed}: the hub's file ended {summary['state']}, {summary['records_loaded']:,} of "
        f"{n:,} records loaded; the contracts alone found {contract['violations']} violations"
    )
    report.add(family, f"bare COPY of the same {rows:,} rows", copy, size)
    report.add(family, "contracts alone (FileCheck, pre-parsed)", contract, size, copy)
    if family != "xml":  # XML's target is against lxml + XSD, below
        targets.ratio(f"{feed}: end to end vs bare COPY", hub["seconds"], copy["seconds"], 0.5, "%")
    targets.ratio(
        f"{feed}: contracts alone no slower than the COPY",
        contract["seconds"],
        copy["seconds"],
        1.0,
        "x",
    )
    if family == "xml":
        lxml = _measure(f"{feed}: bare lxml iterparse + XSD", engines.xml_bare, path)
        report.add(family, "bare lxml iterparse + XSD of the file", lxml, size, hub)
        targets.ratio(
            f"{feed}: end to end vs bare lxml + XSD", hub["seconds"], lxml["seconds"], 0.5, "%"
        )
    files = (
        {"registry_insured": path}
        if family == "csv"
        else dict(zip((t for t, _ in tables), exported, strict=True))
    )
    for mode in ctx["dlt_modes"]:
        say(f"{feed}: dlt ({mode}) ...")
        result = dlt_load(dsn, f"dlt_{feed}", mode, files, folder)
        say(f"  {result['seconds']:.2f} s, {result['records']:,} rows, {result['rss_mb']:,.0f} MB")
        ctx["dlt_version"] = result["version"]
        source = "the CSV file" if family == "csv" else "the hub's rows as CSV"
        report.add(family, f"dlt {result['version']} ({mode}) loading {source}", result, size, hub)
        if family != "xml":
            targets.ratio(
                f"{feed}: end to end vs dlt ({mode})", hub["seconds"], result["seconds"], 4.0, "x"
            )
    if made.get("children"):
        report.notes.append(
            f"{feed}: {n:,} records with {made['children']:,} child rows; "
            "records counts both where rows are COPYed"
        )
    if family == "csv":
        run_next_snapshot(made, ctx, report, targets)


def run_next_snapshot(made: Result, ctx: dict[str, Any], report: Report, targets: Targets) -> None:
    """The registry's daily case: the next day's snapshot of the CSV feed's document, merged
    into the rows the first one loaded, against a bare COPY of all its rows."""
    feed, sender, document = FEEDS["csv"]
    dsn, folder = ctx["dsn"], ctx["folder"]
    nxt = isolated(gen_next_snapshot, made["path"], str(folder / "next"))
    say(f"{feed}: next day's snapshot, {nxt['changed']:,} changed, {nxt['dropped']:,} dropped")
    upload(ctx["endpoints"][sender], nxt["path"], feed)
    hub = _measure(
        f"{feed}: the hub's collect of the next snapshot",
        hub_collect,
        ctx["endpoints"][HUB],
        dsn,
        ctx["settings"],
        feed,
    )
    tables = loaded_tables(feed, document)
    exported = export_rows(dsn, tables, None, folder / "next")
    copy = bare_copy_of(f"{feed}: bare COPY of the next snapshot's rows", dsn, tables, exported)
    label = f"{feed}: next day's snapshot, hub end to end (merged into the first)"
    hub_rows(report, "csv", label, hub, int(nxt["bytes"]), copy)
    report.add("csv", f"bare COPY of the same {int(copy['records']):,} rows", copy, nxt["bytes"])
    report.notes.append(
        f"{feed}: the next day's snapshot ended {hub['summary']['state']}: "
        f"{nxt['records']:,} rows, of which {nxt['changed']:,} changed and {nxt['dropped']:,} "
        "new, and as many dropped; it writes only those (and their closed versions)"
    )
    targets.ratio(
        f"{feed}: next snapshot end to end vs bare COPY", hub["seconds"], copy["seconds"], 0.5, "%"
    )


def run_big(size: int, ctx: dict[str, Any], report: Report, targets: Targets) -> None:
    say(f"big: write a registry CSV of {size / 1e6:,.0f} MB")
    wall = time.perf_counter()
    made = isolated(gen_big_csv, str(ctx["folder"] / "big"), size)
    say(f"  {made['records']:,} records in {time.perf_counter() - wall:.1f} s")
    upload(ctx["endpoints"][REGISTRY_SENDER], made["path"], "registry")
    hub = _measure(
        "big: the hub's collect steps",
        hub_collect,
        ctx["endpoints"][HUB],
        ctx["dsn"],
        ctx["settings"],
        "registry",
    )
    if hub["summary"]["state"] != "loaded":
        report.notes.append(f"big: the file ended {hub['summary']['state']}")
    label = f"registry CSV of {made['bytes'] / 1e9:.2f} GB, hub end to end"
    hub_rows(report, "big", label, hub, int(made["bytes"]), None)
    targets.below(
        f"peak RSS of the collect of the {made['bytes'] / 1e9:.2f} GB file",
        hub["rss_mb"],
        1024,
        "MB",
    )


def versions(dsn: str) -> str:
    """The versions that matter, read without importing the packages (this process stays
    small: it is the parent of every measured one)."""
    from importlib.metadata import version

    server = _sql(dsn, "SHOW server_version")[0][0]
    packages = ("pyarrow", "lxml", "psycopg2-binary", "great_expectations", "paramiko")
    return ", ".join(
        [f"Python {platform.python_version()}"]
        + [f"{p} {version(p)}" for p in packages]
        + [f"PostgreSQL {server}"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records per file")
    parser.add_argument(
        "--feeds", default=",".join(FEEDS), help=f"comma-separated, of {list(FEEDS)}"
    )
    parser.add_argument(
        "--big-mb",
        type=float,
        help="size of the RSS run's CSV (default: 2000 MB per million records; 0: none)",
    )
    parser.add_argument("--dlt-modes", default="rows,arrow", help="of rows,arrow ('' for none)")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    args = parser.parse_args(argv)
    families = [f for f in FEEDS if f in args.feeds.split(",")]
    unknown = set(args.feeds.split(",")) - set(FEEDS)
    if unknown:
        parser.error(f"unknown feed(s) {sorted(unknown)}")
    n = args.records
    big = int((args.big_mb if args.big_mb is not None else 2000 * n / 1e6) * 1e6)

    from edihub.load.db import migrate
    from edihub.stack.postgres import EmbeddedPostgres, ensure_database, with_database

    report, targets = Report(), Targets()
    load_start = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edihub-bench-pipeline-") as temp:
        folder = args.workdir or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        made = {f: engines.generate(f, folder, n) for f in families}
        if {"xml", "fixed_width"} & set(families) and "csv" not in made:
            made["csv"] = engines.generate("csv", folder, n)
        say("start an embedded PostgreSQL and migrate it; start the SFTP server")
        pg = EmbeddedPostgres(folder / "pg")
        pg.start()
        server = None
        try:
            ensure_database(pg.url(), "bench")
            dsn = with_database(pg.url(), "bench")
            migrate(dsn)
            server, endpoints = sftp_server(folder, [FEEDS[f][1] for f in FEEDS])
            settings = dataclasses.replace(
                Settings.from_env(), state_dir=folder / "state", settle_seconds=0
            )
            ctx = {
                "dsn": dsn,
                "settings": settings,
                "folder": folder,
                "endpoints": endpoints,
                "dlt_modes": [m for m in args.dlt_modes.split(",") if m],
            }
            seed_registry(dsn, settings, folder, made, families)
            for family in families:
                run_feed(family, n, made[family], ctx, report, targets)
            if big:
                run_big(big, ctx, report, targets)
            machine = versions(dsn)
        finally:
            if server is not None:
                server.stop()
            pg.stop()
    say(f"done in {time.perf_counter() - started:.0f} s")
    print(
        f"# bench/pipeline.py --records {n:,} --feeds {','.join(families)} (RSS run: "
        f"{big / 1e6:,.0f} MB); {os.cpu_count()} CPUs (nproc), load average "
        f"{load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at the end; {machine}; "
        f"dlt {ctx.get('dlt_version', '-')} (its own venv); chunk {CHUNK:,}\n"
    )
    report.notes.append(
        "vs baseline: seconds over the baseline's (the hub's row: over the bare "
        "COPY's; lxml and dlt rows: over the hub's, so above 1x is slower than "
        "the hub); step rows: peak RSS by the end of the step"
    )
    report.notes.append(
        "the hub's times exclude interpreter start and imports (a worker has "
        "them), include the contract suites' first build; dlt's are its "
        "pipeline.run, imports excluded too; peak RSS is each client "
        "process's, PostgreSQL's and the SFTP server's are not counted"
    )
    report.print()
    targets.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
