"""The CSV engine: stream a delimited file with a header row, type its columns, emit Arrow chunks.

Same protocol and output shapes as :class:`edihub.formats.xml_engine.XmlFile`. The file's
name says which document it is and carries the header fields (a snapshot's date); the header
row says which version (its columns, in any order). Vectorised with ``pyarrow.csv`` and
``pyarrow.compute``: values are checked and converted a column at a time; only a failing
column is walked in Python, to name the first bad value's line.

A value that does not fit its declared type refuses the whole file, as an XSD violation does
for XML: such a file was not produced by the system the contract describes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from edihub.formats.contract import FieldSpec, FormatContract
from edihub.formats.errors import FileRefused
from edihub.formats.head import UTF8_BOM, read_head
from edihub.formats.xml_engine import CONVERTERS, Chunk, arrow_schema

HEAD_BYTES = 64 * 1024
# The lexical form of each type, checked before conversion (anchored, whole value).
LEXICAL = {
    "int": r"^-?[0-9]{1,18}$",
    "cents": r"^-?[0-9]{1,16}(\.[0-9]{1,2})?$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "bool": r"^(true|false)$",
}
TYPE_WORDS = {
    "int": "a whole number",
    "cents": "an amount with at most two decimals (e.g. 1234.50)",
    "date": "a date written YYYY-MM-DD",
    "bool": "true or false",
}
_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars", ",": "commas"}


def _header_row(head: bytes, delimiter: str) -> list[str]:
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(
            "ENCODING", f"the header row is not UTF-8 (byte {exc.start + 1})", line=1
        ) from None
    try:
        return next(csv.reader([text], delimiter=delimiter))
    except csv.Error as exc:  # a lone carriage return, an unclosed quote...
        raise FileRefused("HEADER_ROW", f"the header row cannot be read: {exc}", line=1) from None


def _columns_problem(found: list[str], fmt: FormatContract) -> str:
    expected = [f.name for f in fmt.record.fields]
    if len(found) == 1 and fmt.delimiter not in found[0]:
        for sep, words in _SEPARATORS.items():
            if sep != fmt.delimiter and sep in found[0]:
                return (
                    f"the header row is separated by {words}; {fmt.label} is separated by "
                    f"{_SEPARATORS.get(fmt.delimiter, repr(fmt.delimiter))}"
                )
    missing = [c for c in expected if c not in found]
    unknown = [c for c in found if c not in expected]
    repeated = sorted({c for c in found if found.count(c) > 1})
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown column(s) {', '.join(unknown)}")
    if repeated:
        parts.append(f"repeated column(s) {', '.join(repeated)}")
    return (
        f"the header row does not match {fmt.label}: {'; '.join(parts)} "
        f"(expected, in any order: {', '.join(expected)})"
    )


def sniff_csv(path: Path, name: str, contracts: list[FormatContract]) -> FormatContract:
    """The document the file's name matches, in the version whose columns its header row has.

    Reads only the first line. Refuses empty, binary and UTF-16 files, names no document
    matches, and header rows no version has.
    """
    candidates = [c for c in contracts if re.fullmatch(c.name_pattern, name)]
    if not candidates:
        known = sorted({c.record.element for c in contracts})
        raise FileRefused(
            "FILE_NAME",
            f"the file name {name!r} is not one the feed knows; expected one of: "
            f"{', '.join(known)}",
        )
    # A UTF-8 byte order mark (what spreadsheets write) is accepted and ignored.
    head = read_head(path, HEAD_BYTES, "CSV file").removeprefix(UTF8_BOM)
    newest = candidates[0]
    found = _header_row(head, newest.delimiter)
    for fmt in candidates:
        expected = [f.name for f in fmt.record.fields]
        if len(found) == len(expected) and set(found) == set(expected):
            return fmt
    raise FileRefused("HEADER_ROW", _columns_problem(found, newest), line=1)


class _InvalidRows:
    """pyarrow's invalid-row hook: remember the first row with a wrong number of cells."""

    def __init__(self) -> None:
        self.first: Any = None

    def __call__(self, row: Any) -> str:
        if self.first is None:
            self.first = row
        return "skip"

    def raise_if_any(self) -> None:
        if self.first is not None:
            row = self.first
            raise FileRefused(
                "ROW_COLUMNS",
                f"the row has {row.actual_columns} cells, the header row "
                f"{row.expected_columns}: {row.text[:80]!r}",
                line=row.number,
            )


@dataclass
class CsvFile:
    """Reads one file; iterate for chunks. ``header`` holds the fields taken from its name."""

    path: Path
    contract: FormatContract
    name: str
    chunk_size: int = 50_000
    header: dict[str, Any] = field(default_factory=dict)
    trailer: dict[str, Any] = field(default_factory=dict)
    records_read: int = 0

    def __post_init__(self) -> None:
        match = re.fullmatch(self.contract.name_pattern, self.name)
        if match is None:  # sniff_csv chose this contract by the name: cannot happen
            raise FileRefused("FILE_NAME", f"the file name {self.name!r} does not match")
        for f in self.contract.header.fields:
            text = match.group(f.name)
            try:
                self.header[f.name] = CONVERTERS[f.type](text) if text else None
            except ValueError as exc:
                raise FileRefused(
                    "FILE_NAME", f"the file name's {f.name} {text!r} is not valid: {exc}"
                ) from exc

    def __iter__(self) -> Iterator[Chunk]:
        try:
            yield from self._chunks()
        except pa.ArrowInvalid as exc:
            # What pyarrow could not hand to _InvalidRows: a row of the wrong width that is
            # not UTF-8 either (the hook receives decoded text).
            message = str(exc).encode("ascii", "backslashreplace").decode()[:200]
            raise FileRefused("ROW_COLUMNS", f"the file cannot be read as CSV: {message}") from exc

    def _chunks(self) -> Iterator[Chunk]:
        fields = self.contract.record.fields
        schema = arrow_schema(fields, {"record_no": pa.int64(), "line_no": pa.int64()})
        invalid = _InvalidRows()
        reader = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=max(1 << 20, self.chunk_size * 128)),
            parse_options=pacsv.ParseOptions(
                delimiter=self.contract.delimiter,
                newlines_in_values=False,
                invalid_row_handler=invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: pa.binary() for f in fields},
                include_columns=[f.name for f in fields],
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
        for batch in reader:
            invalid.raise_if_any()
            first = self.records_read + 1
            self.records_read += batch.num_rows
            for start in range(0, batch.num_rows, self.chunk_size):
                yield self._chunk(batch.slice(start, self.chunk_size), first + start, schema)
        invalid.raise_if_any()
        if self.records_read == 0:
            yield Chunk(schema.empty_table(), None)

    def _chunk(self, batch: pa.RecordBatch, first: int, schema: pa.Schema) -> Chunk:
        n = batch.num_rows
        record_no = pa.array(range(first, first + n), pa.int64())
        columns: dict[str, pa.Array] = {
            "record_no": record_no,
            # one header row, one line per record (no line breaks inside values)
            "line_no": pc.add(record_no, 1),
        }
        for spec in self.contract.record.fields:
            columns[spec.name] = self._convert(batch.column(spec.name), spec, first)
        return Chunk(pa.table(columns, schema=schema), None)

    def _refuse(self, code: str, message: str, index: int, first: int) -> FileRefused:
        return FileRefused(code, message, record_no=first + index, line=first + index + 1)

    def _convert(self, raw: pa.Array, spec: FieldSpec, first: int) -> pa.Array:
        try:
            text = raw.cast(pa.string())
        except pa.ArrowInvalid:
            for i, value in enumerate(raw.to_pylist()):
                if value is not None:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise self._refuse(
                            "ENCODING",
                            f"field {spec.name} is not UTF-8 (byte {exc.start + 1} of the value)",
                            i,
                            first,
                        ) from None
            raise
        if not spec.optional and text.null_count:
            index = _first_true(pc.is_null(text))
            raise self._refuse("MISSING_VALUE", f"field {spec.name} is empty", index, first)
        if spec.type in LEXICAL:
            wrong = pc.invert(pc.match_substring_regex(text, LEXICAL[spec.type]))
            if pc.any(wrong).as_py():
                index = _first_true(wrong)
                raise self._refuse(
                    "FIELD_TYPE",
                    f"field {spec.name} is {text[index].as_py()!r}, not {TYPE_WORDS[spec.type]}",
                    index,
                    first,
                )
        return self._typed(text, spec, first)

    def _typed(self, text: pa.Array, spec: FieldSpec, first: int) -> pa.Array:
        if spec.type == "string":
            return text
        if spec.type == "int":
            return text.cast(pa.int64())
        if spec.type == "bool":
            return pc.equal(text, "true")
        if spec.type == "cents":
            amounts = text.cast(pa.decimal128(18, 2))
            return pc.multiply(amounts, pa.scalar(100, pa.decimal128(3, 0))).cast(pa.int64())
        if spec.type == "date":
            # strptime rolls 2016-02-30 over to March: a date is valid if it reads back the same.
            parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
            same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text)
            wrong = pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(same, False)))
            if pc.any(wrong).as_py():
                index = _first_true(wrong)
                raise self._refuse(
                    "FIELD_TYPE",
                    f"field {spec.name} is {text[index].as_py()!r}, not a date of the calendar",
                    index,
                    first,
                )
            return parsed.cast(pa.date32())
        raise FileRefused("FIELD_TYPE", f"type {spec.type} is not read from CSV")


def _first_true(mask: pa.Array) -> int:
    return int(pc.index(pc.fill_null(mask, False), True).as_py())
