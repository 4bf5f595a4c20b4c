"""Pick the engine of a feed's format family and the contract version a file names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from edihub.formats.contract import FormatContract
from edihub.formats.xml_engine import Chunk, XmlFile, sniff


class Reader(Protocol):
    """What every engine offers: chunks of records, then the file's header and trailer."""

    header: dict[str, Any]
    trailer: dict[str, Any]

    def __iter__(self) -> Iterator[Chunk]: ...


def open_reader(
    path: Path, name: str, contracts: list[FormatContract], chunk_size: int
) -> tuple[FormatContract, Reader]:
    """The contract ``path`` is written in, and a reader of its chunks (not yet read).

    ``name`` is the file's name as its sender gave it (CSV documents are known by it).
    """
    if contracts[0].family == "csv":
        from edihub.formats.csv_engine import CsvFile, sniff_csv

        fmt = sniff_csv(path, name, contracts)
        return fmt, CsvFile(path, fmt, name, chunk_size=chunk_size)
    if contracts[0].family == "fixed_width":
        from edihub.formats.fixed_width import FixedWidthFile, sniff_fixed_width

        fmt = sniff_fixed_width(path, contracts)
        return fmt, FixedWidthFile(path, fmt, chunk_size=chunk_size)
    fmt = sniff(path, contracts)
    return fmt, XmlFile(path, fmt, chunk_size=chunk_size)
