"""dlt loading CSV files into PostgreSQL: the dlt baseline of bench/pipeline.py.

    .bench/dlt-venv/bin/python bench/dlt_load.py --dsn URL --dataset NAME --mode rows|arrow
        --pipelines-dir DIR TABLE=FILE.csv [TABLE=FILE.csv ...]

Runs in its own virtual environment (dlt is not one of the hub's dependencies; bench/pipeline.py
creates it), so it imports nothing of the hub. Each file becomes one dlt resource of the same
name, loaded by one ``pipeline.run`` into the dataset (a schema of the same database):

- ``rows``: what a dlt user writes first: ``csv.DictReader`` rows yielded in pages of 10,000,
  dlt's defaults (schema inference, normalisation, the Postgres default ``insert_values``);
- ``arrow``: dlt's fast path: pyarrow record batches (``pyarrow.csv.open_csv``, types inferred)
  written by dlt as CSV and loaded with COPY (``loader_file_format="csv"``).

Prints one JSON line on stdout: seconds of ``pipeline.run`` (imports not counted), CPU seconds,
rows in the destination tables, peak RSS (VmHWM) in MB, dlt's version.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import pyarrow.csv as pacsv

PAGE = 10_000


def _rows(path: Path) -> Iterator[list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        page: list[dict[str, str]] = []
        for row in csv.DictReader(fh):
            page.append(row)
            if len(page) == PAGE:
                yield page
                page = []
        if page:
            yield page


def _batches(path: Path) -> Iterator[Any]:
    yield from pacsv.open_csv(path)


def _credentials(dsn: str) -> dict[str, Any]:
    """The DSN's parts. dlt insists on a host and a password: the embedded server's host is a
    socket folder, passed on as the ``host`` query parameter (which libpq prefers to the
    placeholder), and it trusts local connections (the password is ignored)."""
    url = urlsplit(dsn)
    return {
        "database": url.path.lstrip("/"),
        "username": url.username or "postgres",
        "password": url.password or "unused",
        "host": url.hostname or "localhost",
        "port": url.port or 5432,
        "query": {k: v[0] for k, v in parse_qs(url.query).items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--mode", choices=("rows", "arrow"), required=True)
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("files", nargs="+", help="TABLE=FILE.csv")
    args = parser.parse_args(argv)

    read = _rows if args.mode == "rows" else _batches
    resources = [
        dlt.resource(read(Path(file)), name=table, write_disposition="append")
        for table, file in (spec.split("=", 1) for spec in args.files)
    ]
    pipeline = dlt.pipeline(
        pipeline_name=f"{args.dataset}_{args.mode}",
        pipelines_dir=args.pipelines_dir,
        destination=dlt.destinations.postgres(credentials=_credentials(args.dsn)),
        dataset_name=args.dataset,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline.run(resources, loader_file_format="csv" if args.mode == "arrow" else None)
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    with pipeline.sql_client() as client:
        rows = sum(
            int(
                client.execute_sql(
                    f"SELECT count(*) FROM {client.make_qualified_table_name(r.name)}"
                )[0][0]
            )
            for r in resources
        )
    with open("/proc/self/status") as status:  # VmHWM: see bench/pipeline.py vm_hwm_mb
        peak = int(next(ln for ln in status if ln.startswith("VmHWM:")).split()[1])
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu_seconds,
                "records": rows,
                "rss_mb": peak / 1024,
                "version": dlt.__version__,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
