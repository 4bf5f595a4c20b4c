"""The export file and its manifest, rendered from ``formats/exports/v1`` (columns, XSD).

Rendering is a pure function of the planned lines: no clock, no random, no dict order, so a
rerun gives the same bytes. CSV and Parquet come from pyarrow; the XML text is built column
by column with pyarrow.compute, byte for byte as lxml would serialise the tree, and parsed
back against the XSD before anything leaves the hub.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from lxml import etree

from edihub.config import Settings
from edihub.overrides import ExportOptions

VERSION = 1
EXTENSIONS = {"csv": "csv", "xml": "xml", "parquet": "parquet"}
_ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int64(),
    "date": pa.date32(),
    "decimal": pa.decimal128(5, 2),
}


@dataclass(frozen=True)
class ExportContract:
    namespace: str
    file_name: str
    columns: dict[str, dict[str, Any]]
    schema: pa.Schema
    xsd: etree.XMLSchema

    def name(self, insurer_id: str, export_day: dt.date, sequence: int, fmt: str) -> str:
        return self.file_name.format(
            insurer_id=insurer_id,
            export_day=export_day,
            sequence=sequence,
            extension=EXTENSIONS[fmt],
        )


@cache
def export_contract(formats_dir: Path | None = None) -> ExportContract:
    folder = (formats_dir or Settings.from_env().formats_dir) / "exports" / f"v{VERSION}"
    spec = yaml.safe_load((folder / "format.yaml").read_text(encoding="utf-8"))
    columns = spec["columns"]
    schema = pa.schema(
        [
            pa.field(name, _ARROW_TYPES[col["type"]], nullable=bool(col.get("optional")))
            for name, col in columns.items()
        ]
    )
    xsd = etree.XMLSchema(etree.parse(str(folder / "statement_export.xsd")))
    return ExportContract(spec["namespace"], spec["file_name"], columns, schema, xsd)


@dataclass(frozen=True)
class Header:
    insurer_id: str
    sequence: int
    export_day: dt.date
    fmt: str


_FORMAT_ALONE = ExportOptions()


def render(
    contract: ExportContract,
    header: Header,
    table: pa.Table,
    options: ExportOptions = _FORMAT_ALONE,
) -> bytes:
    """The file's bytes in the insurer's format, from its rows (``ledger.rows``), with the
    insurer's own options (``edihub.overrides``)."""
    if options.columns:
        table = table.select(list(options.columns))
    if header.fmt == "csv":
        if options.decimal_comma:
            table = _decimal_comma(table)
        buf = io.BytesIO()
        write = pacsv.WriteOptions(
            include_header=True, quoting_style="needed", delimiter=options.delimiter
        )
        pacsv.write_csv(table, buf, write)
        return buf.getvalue()
    if header.fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd", write_statistics=True)
        return buf.getvalue()
    if header.fmt == "xml":
        return _xml(contract, header, table)
    raise ValueError(f"unknown export format {header.fmt!r} (csv, xml or parquet)")


def _decimal_comma(table: pa.Table) -> pa.Table:
    """The decimal columns as text with a comma (quoted in the CSV, as every text is)."""
    for i, column in enumerate(table.columns):
        if pa.types.is_decimal(column.type):
            text = pc.replace_substring(pc.cast(column, pa.string()), ".", ",")
            table = table.set_column(i, table.field(i).name, text)
    return table


# Text escaped as lxml escapes it, so the file reads the same as a tree serialised by lxml.
_TEXT_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
_ATTRIBUTE_ESCAPES = (*_TEXT_ESCAPES, ('"', "&quot;"), ("\n", "&#10;"), ("\t", "&#9;"))
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _escape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for raw, escaped in escapes:
        text = text.replace(raw, escaped)
    return text


def _xml(contract: ExportContract, header: Header, table: pa.Table) -> bytes:
    """The file as lxml's pretty print of the export tree would write it, built column by
    column with pyarrow.compute: a day's file has millions of elements, and building them one
    by one in Python was most of an export's time. The text is then parsed back against the
    XSD, so a file the insurer's parser would refuse never leaves the hub."""
    attributes = {
        "insurerId": header.insurer_id,
        "sequence": str(header.sequence),
        "exportDay": header.export_day.isoformat(),
        "rowCount": str(table.num_rows),
    }
    root = f'statementExport xmlns="{_escape(contract.namespace, _ATTRIBUTE_ESCAPES)}"' + "".join(
        f' {name}="{_escape(value, _ATTRIBUTE_ESCAPES)}"' for name, value in attributes.items()
    )
    head = "<?xml version='1.0' encoding='UTF-8'?>\n"
    if table.num_rows == 0:
        text = f"{head}<{root}/>\n"
    else:
        cells = []
        for name in table.column_names:  # the format's columns, or the insurer's subset
            values = pc.cast(table[name].combine_chunks(), pa.string())
            for raw, escaped in _TEXT_ESCAPES:
                values = pc.replace_substring(values, raw, escaped)
            element = pc.binary_join_element_wise(f"\n    <{name}>", values, f"</{name}>", "")
            cells.append(pc.fill_null(element, ""))  # an empty optional column: no element
        lines = pc.binary_join_element_wise("  <line>", *cells, "\n  </line>\n", "")
        text = f"{head}<{root}>\n{''.join(lines.to_pylist())}</statementExport>\n"
    data = text.encode("utf-8")
    contract.xsd.assertValid(etree.fromstring(data, _XML_PARSER))
    return data


def manifest(header: Header, file_name: str, data: bytes, table: pa.Table) -> bytes:
    """The manifest beside the file: what an insurer checks before taking the file in."""
    first_issued = pc.min(table["issued_on"]).as_py() or header.export_day
    document = {
        "format_version": VERSION,
        "insurer_id": header.insurer_id,
        "sequence": header.sequence,
        "export_day": header.export_day.isoformat(),
        "period": {
            "issued_from": first_issued.isoformat(),
            "issued_to": header.export_day.isoformat(),
        },
        "file": file_name,
        "format": header.fmt,
        "row_count": table.num_rows,
        "totals_cents": {
            name: int(pc.sum(table[f"{name}_cents"]).as_py() or 0)
            for name in ("billed", "reimbursed", "patient_share")
        },
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
