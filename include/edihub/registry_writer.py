"""Writes registry v1 snapshots (CSV) as the funds' core systems extract them: the demo's and
the tests' registry. Columns follow the format contract, so the two cannot drift apart."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edihub.config import Settings
from edihub.formats.contract import feed_formats


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def snapshot_name(document: str, day: dt.date) -> str:
    return f"{document}_{day:%Y%m%d}.csv"


def write_snapshot(
    folder: Path, document: str, day: dt.date, rows: Iterable[dict[str, Any]]
) -> Path:
    """``folder/<document>_<YYYYMMDD>.csv`` in the newest registry format; absent keys are
    empty cells."""
    fmt = next(
        f
        for f in feed_formats(Settings.from_env().formats_dir, "registry")
        if f.document == document
    )
    columns = [f.name for f in fmt.record.fields]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / snapshot_name(document, day)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=fmt.delimiter, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
    return path
