"""Write fixed-width files from their layout (format.yaml): what a pharmacy's software sends.

Used by the demo, the tests and the partner documentation's example files, so that every
example is laid out exactly as the contract the hub checks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edihub.formats.contract import FieldSpec, FormatContract, TableSpec


def _value(f: FieldSpec, value: Any) -> str:
    width = f.end - f.start + 1
    if f.type == "date":
        text = value.strftime("%Y%m%d") if isinstance(value, dt.date) else str(value)
    elif f.type in ("int", "cents"):
        text = str(value).rjust(width, "0")
    else:
        text = str(value).ljust(width)
    if len(text) != width:
        raise ValueError(f"field {f.name}: {value!r} does not fit {width} characters")
    return text


def record_line(contract: FormatContract, spec: TableSpec, values: dict[str, Any]) -> str:
    line = [" "] * contract.record_length
    start, end = contract.type_field
    line[start - 1 : end] = spec.record_type
    fields = list(spec.fields)
    if spec.parent_id is not None:
        fields.append(spec.parent_id)
    for f in fields:
        line[f.start - 1 : f.end] = _value(f, values[f.name])
    return "".join(line)


def write_fixed_width(
    path: Path,
    contract: FormatContract,
    header: dict[str, Any],
    records: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]],
    trailer: dict[str, Any],
    newline: str = "\n",
) -> Path:
    """Header, then each record followed by its children (who need not repeat their
    parent's id: it is filled in from the record), then the trailer as given."""
    record, children = contract.record, contract.record.children
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(record_line(contract, contract.header, header) + newline)
        for values, kids in records:
            out.write(record_line(contract, record, values) + newline)
            for kid in kids:
                assert children is not None, f"{contract.label} records have no children"
                parent = {"parent_id": values[record.id]}
                out.write(record_line(contract, children, parent | kid) + newline)
        out.write(record_line(contract, contract.trailer, trailer) + newline)
    return path
