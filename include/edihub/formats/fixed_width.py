"""The fixed-width engine: stream a B2/NOEMIE-style file, check it, emit Arrow chunks.

Same protocol and output shapes as :class:`edihub.formats.xml_engine.XmlFile`. Vectorised with
pyarrow: the file is read in blocks as one text column (``pyarrow.csv`` does the line
splitting, LF or CRLF), record types and fields are cut with ``pyarrow.compute``; there is no
per-line Python loop. Every line is checked once, when its block arrives; records and their
children are held back only until the record is known to be complete, so memory stays
bounded by a block, a chunk and the largest record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from edihub.formats.contract import ContractConfigError, FieldSpec, FormatContract, TableSpec
from edihub.formats.errors import FileRefused
from edihub.formats.head import read_head
from edihub.formats.xml_engine import Chunk, arrow_schema

HEAD_BYTES = 4096
_KIND = "fixed-width text file"  # what the sender of a refused file should send
# Never a valid character in a record: a line holding it is refused (see _lines).
DELIMITER = "\x1f"
# 18 digits always fit in an int64; wider numeric fields would overflow on cast.
MAX_DIGITS = 18
_CONTROL = r"[\x00-\x1f\x7f]"
# Refusals found at the same line: the most basic explanation wins.
_RANK = {
    "ENCODING": 0,
    "RECORD_LENGTH": 1,
    "UNKNOWN_RECORD_TYPE": 2,
    "STRUCTURE": 3,
    "LAYOUT_VIOLATION": 4,
}


def _first(mask: pa.Array) -> int | None:
    """Index of the first true value, or None (nulls count as false)."""
    if not pc.any(mask).as_py():
        return None
    return pc.index(pc.fill_null(mask, False), True).as_py()


def _ordinal(n: int, start: int) -> pa.Array:
    """``start, start+1, ...``: n int64 values, without a Python loop."""
    return pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), start - 1)


def _cut(lines: pa.Array, start: int, end: int, ascii: bool) -> pa.Array:
    """Columns ``start``-``end`` (1-based, inclusive) of each line.

    Byte slicing is ~10x faster than code-point slicing and equal to it on ASCII text,
    the usual case; other blocks take the UTF-8 path.
    """
    if ascii:
        return pc.binary_slice(lines.view(pa.binary()), start - 1, end).view(pa.string())
    return pc.utf8_slice_codeunits(lines, start - 1, end)


def _encoding_error(line: int, raw: bytes) -> FileRefused:
    try:
        raw.decode("utf-8")
        where = ""
    except UnicodeDecodeError as exc:
        where = f" byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line"
    return FileRefused(
        "ENCODING", f"line {line}:{where} is not UTF-8; files must be UTF-8", line=line
    )


def _overlong_line(path: Path, limit: int, record_length: int) -> FileRefused:
    """Locate a line too long for a block (pyarrow only says it straddles blocks)."""
    most = record_length * 4 + 2  # bytes: four per UTF-8 character, and CRLF
    number, size = 1, 0
    with path.open("rb") as fh:
        while piece := fh.readline(limit):
            size += len(piece)
            if size > most:
                return FileRefused(
                    "RECORD_LENGTH",
                    f"line {number} has more than {most} bytes, "
                    f"records are {record_length} characters",
                    line=number,
                )
            if piece.endswith(b"\n"):
                number, size = number + 1, 0
    return FileRefused("RECORD_LENGTH", f"a line is longer than {limit} bytes")


@dataclass
class _Open:
    """The record still open at a block boundary: its children may follow."""

    record_no: int = 0
    id: str | None = None
    line: int = 0
    children: int = 0


@dataclass
class FixedWidthFile:
    """Reads one file; iterate for chunks, then read ``header`` and ``trailer``."""

    path: Path
    contract: FormatContract
    chunk_size: int = 50_000
    # Bytes per pyarrow read; must exceed a line (a longer line is refused as RECORD_LENGTH).
    block_size: int = 4 << 20
    header: dict[str, Any] = field(default_factory=dict)
    trailer: dict[str, Any] = field(default_factory=dict)
    records_read: int = 0

    def __post_init__(self) -> None:
        c = self.contract
        specs = [c.header, c.trailer, c.record] + ([c.record.children] if c.record.children else [])
        for spec in specs:
            for f in spec.fields:
                if f.type == "timestamp":
                    raise ContractConfigError(f"{c.label}: {f.name}: no timestamps in fixed width")
                if not 1 <= f.start <= f.end <= c.record_length:
                    raise ContractConfigError(f"{c.label}: {f.name}: columns outside the record")
                if f.type in ("int", "cents") and f.end - f.start + 1 > MAX_DIGITS:
                    raise ContractConfigError(f"{c.label}: {f.name}: wider than {MAX_DIGITS}")
        self._kinds = pa.array(
            [c.header.record_type, c.record.record_type, self._child_type, c.trailer.record_type]
        )
        self._ascii = True  # per block: see _block
        self._id_field = next(f for f in c.record.fields if f.name == c.record.id)
        self._rec_schema = arrow_schema(
            c.record.fields,
            {"record_no": pa.int64(), "line_no": pa.int64()}
            | {name: pa.int64() for name in c.record.aggregates},
        )
        self._child_schema = (
            arrow_schema(
                c.record.children.fields,
                {"record_no": pa.int64(), c.record.id: pa.string(), "child_no": pa.int64()},
            )
            if c.record.children
            else None
        )

    @property
    def _child_type(self) -> str:
        children = self.contract.record.children
        # An impossible code when the format has no children: nothing will match it.
        return children.record_type if children else "\x00"

    # -- reading -------------------------------------------------------------------------

    def _lines(self) -> Iterator[tuple[pa.StringArray, int]]:
        """Blocks of lines as UTF-8 strings, with the file line of their first element.

        Lines are read as binary and validated here, so that the lines before a bad one
        are still checked first (the first error in file order wins).
        """
        bad_rows: list[tuple[int, str]] = []

        def invalid_row(row: Any) -> str:
            # The delimiter appeared in a line: note it (pyarrow reads ahead, so it is
            # raised once the lines before it have been checked) and skip the row.
            if row.number is None:
                return "error"
            bad_rows.append((row.number, row.text))
            return "skip"

        first = 1
        reader = None
        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    column_names=["line"], block_size=self.block_size, use_threads=False
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=DELIMITER,
                    quote_char=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=False,
                    invalid_row_handler=invalid_row,
                ),
                convert_options=pacsv.ConvertOptions(column_types={"line": pa.binary()}),
            )
            for batch in reader:
                raw = batch.column(0)
                n = len(raw)
                bad = min(bad_rows) if bad_rows else None
                if bad is not None and bad[0] <= first + n:
                    # Rows after the skipped one are shifted: keep only those before it.
                    raw, n = raw.slice(0, bad[0] - first), bad[0] - first
                try:
                    lines = raw.cast(pa.string())
                except pa.ArrowInvalid:
                    lo, hi = 0, n  # bisect for the first row that is not UTF-8
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        try:
                            raw.slice(lo, mid - lo).cast(pa.string())
                            lo = mid
                        except pa.ArrowInvalid:
                            hi = mid
                    yield raw.slice(0, lo).cast(pa.string()), first
                    raise _encoding_error(first + lo, raw[lo].as_py()) from None
                if n:
                    yield lines, first
                first += n
                if bad is not None and bad[0] <= first:
                    text = bad[1]
                    size = self.contract.record_length
                    if len(text) != size:
                        raise FileRefused(
                            "RECORD_LENGTH",
                            f"line {bad[0]} has {len(text)} characters, records are {size}",
                            line=bad[0],
                        )
                    raise FileRefused(
                        "LAYOUT_VIOLATION",
                        f"line {bad[0]} contains a control character (0x1f)",
                        line=bad[0],
                    )
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc):
                raise _overlong_line(
                    self.path, self.block_size, self.contract.record_length
                ) from exc
            raise FileRefused("NOT_TEXT", f"unreadable file: {exc}") from exc
        finally:
            if reader is not None:
                reader.close()

    # -- parsing ------------------------------------------------------------------------

    def _fields(
        self, lines: pa.Array, spec: TableSpec, line_no: pa.Array, ctx: dict[str, pa.Array]
    ) -> tuple[dict[str, pa.Array], tuple[int, FileRefused] | None]:
        """Cut and convert a table's fields; the first layout violation, if any."""
        values: dict[str, pa.Array] = {}
        error: tuple[int, FileRefused] | None = None

        def note(mask: pa.Array, f: FieldSpec, raw: pa.Array, what: str) -> None:
            nonlocal error
            i = _first(mask)
            if i is None:
                return
            line = line_no[i].as_py()
            if error is None or line < error[0]:
                rec_no = ctx["record_no"][i].as_py() if "record_no" in ctx else None
                rec_id = ctx["id"][i].as_py() if "id" in ctx else None
                error = (
                    line,
                    FileRefused(
                        "LAYOUT_VIOLATION",
                        f"field {f.name}: {raw[i].as_py()!r} is not {what}",
                        record_no=rec_no or None,
                        record_id=rec_id or None,
                        line=line,
                    ),
                )

        for f in spec.fields:
            raw = _cut(lines, f.start, f.end, self._ascii)
            if f.type == "string":
                values[f.name] = pc.utf8_trim_whitespace(raw)
            elif f.type in ("int", "cents"):
                ok = pc.ascii_is_decimal(raw)  # not utf8_is_decimal: the cast wants 0-9
                if pc.all(ok, min_count=0).as_py():  # an empty block is fine
                    values[f.name] = pc.cast(raw, pa.int64())
                else:
                    note(pc.invert(ok), f, raw, "a number (digits only)")
            elif f.type == "date":
                ok = pc.and_(pc.ascii_is_decimal(raw), pc.equal(pc.utf8_length(raw), 8))
                ts = pc.strptime(raw, format="%Y%m%d", unit="s", error_is_null=True)
                # strptime is lenient (Feb 30 -> Mar 1, month 00 -> December): the month
                # and day must be those written (faster than a strftime round trip).
                digits = pc.cast(pc.if_else(ok, raw, "00000000"), pa.int64())
                same = pc.and_(
                    pc.equal(pc.month(ts), pc.divide(pc.remainder(digits, 10_000), 100)),
                    pc.equal(pc.day(ts), pc.remainder(digits, 100)),
                )
                ok = pc.and_kleene(ok, pc.fill_null(same, False))
                if pc.all(ok, min_count=0).as_py():  # an empty block is fine
                    values[f.name] = pc.cast(ts, pa.date32())
                else:
                    note(pc.invert(ok), f, raw, "a date (YYYYMMDD)")
        return values, error

    def _single(
        self, lines: pa.Array, mask: pa.Array, spec: TableSpec, line_no: pa.Array
    ) -> tuple[dict[str, Any], tuple[int, FileRefused] | None]:
        """The header or trailer (structure checks make sure there is one of each)."""
        rows = pc.filter(lines, mask).slice(0, 1)
        values, error = self._fields(rows, spec, pc.filter(line_no, mask).slice(0, 1), {})
        if error is not None:
            return {}, error
        return {k: v[0].as_py() for k, v in values.items()}, None

    def _block(
        self, lines: pa.StringArray, first: int, state: _Open, trailer_line: int
    ) -> tuple[pa.Table, pa.Table | None, int]:
        """Check one block of lines and parse its records and children.

        Returns the block's records (without aggregates), children and the trailer's line.
        """
        c = self.contract
        rec_spec, child_spec = c.record, c.record.children
        n = len(lines)
        line_no = _ordinal(n, first)
        errors: list[tuple[int, int, FileRefused]] = []

        def refuse(mask: pa.Array, code: str, message: Any) -> None:
            i = _first(mask)
            if i is not None:
                line = first + i
                errors.append((line, _RANK.get(code, 9), FileRefused(code, message(i), line=line)))

        lengths = pc.utf8_length(lines)
        size = c.record_length
        refuse(
            pc.not_equal(lengths, size),
            "RECORD_LENGTH",
            lambda i: f"line {first + i} has {lengths[i].as_py()} characters, records are {size}",
        )
        # Most files are pure ASCII: cheaper slicing and control-character checks.
        self._ascii = bool(pc.all(pc.string_is_ascii(lines), min_count=0).as_py())
        types = _cut(lines, c.type_field[0], c.type_field[1], self._ascii)
        kind = pc.index_in(types, value_set=self._kinds)
        known = ", ".join(k for k in self._kinds.to_pylist() if k != "\x00")
        refuse(
            pc.is_null(kind),
            "UNKNOWN_RECORD_TYPE",
            lambda i: (
                f"line {first + i}: unknown record type {types[i].as_py()!r}; "
                f"expected one of {known}"
            ),
        )
        refuse(
            # ascii_is_printable says false for "" too: empty lines are RECORD_LENGTH
            pc.and_(pc.invert(pc.ascii_is_printable(lines)), pc.greater(lengths, 0))
            if self._ascii
            else pc.match_substring_regex(lines, _CONTROL),
            "LAYOUT_VIOLATION",
            lambda i: f"line {first + i} contains a control character",
        )
        is_hdr, is_rec, is_child, is_trl = (
            pc.fill_null(pc.equal(kind, k), False) for k in range(4)
        )

        # -- structure: header first and alone, trailer last, children under their record
        if first == 1 and not is_hdr[0].as_py() and kind[0].is_valid:
            refuse(
                pa.array([True]),
                "STRUCTURE",
                lambda i: (
                    f"the first record must be the header (type {c.header.record_type}), "
                    f"found type {types[0].as_py()!r}"
                ),
            )
        refuse(
            pc.and_(is_hdr, pc.greater(line_no, 1)),
            "STRUCTURE",
            lambda i: f"line {first + i} is a second header; a file has one header, first",
        )
        as_int = pa.int64()
        trailers_before = pc.add(
            pc.subtract(pc.cumulative_sum(pc.cast(is_trl, as_int)), pc.cast(is_trl, as_int)),
            1 if trailer_line else 0,
        )
        refuse(
            pc.greater(trailers_before, 0),
            "STRUCTURE",
            lambda i: (
                f"line {first + i} follows the trailer (type {c.trailer.record_type}); "
                "the trailer must be the last record"
            ),
        )
        t = _first(is_trl)
        if t is not None and not trailer_line:
            trailer_line = first + t

        # Each line's record: 0 is the record left open by the previous block.
        rec_pos = pc.cumulative_sum(pc.cast(is_rec, as_int))
        rec_lines = pc.filter(lines, is_rec)
        n_rec = len(rec_lines)
        rec_line_no = pc.filter(line_no, is_rec)
        rec_no = _ordinal(n_rec, state.record_no + 1)
        id_raw = pc.utf8_trim_whitespace(
            _cut(rec_lines, self._id_field.start, self._id_field.end, self._ascii)
        )
        ids_ext = pa.concat_arrays([pa.array([state.id], pa.string()), id_raw])
        rec_values, rec_error = self._fields(
            rec_lines, rec_spec, rec_line_no, {"record_no": rec_no, "id": id_raw}
        )
        if rec_error:
            errors.append((rec_error[0], 4, rec_error[1]))

        children = None
        if child_spec is not None and self._child_schema is not None:
            child_lines = pc.filter(lines, is_child)
            child_line_no = pc.filter(line_no, is_child)
            parent = pc.filter(rec_pos, is_child)  # index into the *_ext arrays below
            line_ext = pa.concat_arrays([pa.array([state.line], as_int), rec_line_no])
            child_pos = pc.cumulative_sum(pc.cast(is_child, as_int))
            base_ext = pa.concat_arrays(
                [pa.array([-state.children], as_int), pc.filter(child_pos, is_rec)]
            )
            parent_id = pc.take(ids_ext, parent)
            orphan_line = pc.equal(pc.add(rec_pos, state.record_no), 0)
            parent_no = pc.add(parent, state.record_no)
            orphan = pc.equal(parent_no, 0)
            refuse(
                pc.and_(is_child, orphan_line),
                "STRUCTURE",
                lambda i: (
                    f"line {first + i} is a {child_spec.table} line "
                    f"(type {child_spec.record_type}) before any {rec_spec.table} "
                    f"(type {rec_spec.record_type})"
                ),
            )
            assert child_spec.parent_id is not None
            named = pc.utf8_trim_whitespace(
                _cut(child_lines, child_spec.parent_id.start, child_spec.parent_id.end, self._ascii)
            )
            wrong = pc.and_(pc.invert(orphan), pc.not_equal(named, pc.fill_null(parent_id, "")))
            w = _first(wrong)
            if w is not None:
                line = child_line_no[w].as_py()
                owner = pc.take(line_ext, parent)[w].as_py()
                errors.append(
                    (
                        line,
                        3,
                        FileRefused(
                            "STRUCTURE",
                            f"line {line} is a {child_spec.table} of {rec_spec.table} "
                            f"{named[w].as_py()!r} but follows {rec_spec.table} "
                            f"{parent_id[w].as_py()!r} (line {owner})",
                            record_no=parent_no[w].as_py(),
                            record_id=parent_id[w].as_py(),
                            line=line,
                        ),
                    )
                )
            child_no = pc.subtract(child_pos.filter(is_child), pc.take(base_ext, parent))
            child_values, child_error = self._fields(
                child_lines, child_spec, child_line_no, {"record_no": parent_no, "id": parent_id}
            )
            if child_error:
                errors.append((child_error[0], 4, child_error[1]))
            if not errors:
                children = pa.Table.from_arrays(
                    [parent_no, parent_id, child_no]
                    + [child_values[f.name] for f in child_spec.fields],
                    schema=self._child_schema,
                )

        if first == 1 and is_hdr[0].as_py():
            self.header, error = self._single(lines, is_hdr, c.header, line_no)
            if error:
                errors.append((error[0], 4, error[1]))
        if t is not None:
            self.trailer, error = self._single(lines, is_trl, c.trailer, line_no)
            if error:
                errors.append((error[0], 4, error[1]))

        if errors:
            refused = min(errors, key=lambda e: (e[0], e[1]))[2]
            if refused.record_no is None and refused.line and 0 <= refused.line - first < n:
                # Name the record the line belongs to (the one it follows), when there is one.
                pos = rec_pos[refused.line - first].as_py()
                if state.record_no + pos:
                    refused.record_no = state.record_no + pos
                    refused.record_id = ids_ext[pos].as_py() or None
            raise refused

        records = pa.Table.from_arrays(
            [rec_no, rec_line_no] + [rec_values[f.name] for f in rec_spec.fields],
            names=["record_no", "line_no"] + [f.name for f in rec_spec.fields],
        )
        # Carry the last record forward: children of it may be in the next block.
        if n_rec:
            state.record_no += n_rec
            state.id = id_raw[n_rec - 1].as_py()
            state.line = rec_line_no[n_rec - 1].as_py()
            state.children = 0
        if children is not None:
            open_kids = pc.equal(children.column("record_no"), state.record_no)
            state.children += pc.sum(open_kids).as_py() or 0
        return records, children, trailer_line

    # -- emitting ------------------------------------------------------------------------

    def _chunk(self, records: pa.Table, children: pa.Table | None) -> Chunk:
        """Add the aggregates over each record's children; order columns as XmlFile does."""
        aggregates = self.contract.record.aggregates
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            "record_no": records.column("record_no"),
            "line_no": records.column("line_no"),
        }
        if aggregates:
            kids = (
                children
                if children is not None
                else pa.table({"record_no": pa.array([], pa.int64())})
            )
            specs = [
                ("child_no", "count", name) if agg.get("count") else (agg["sum"], "sum", name)
                for name, agg in aggregates.items()
            ]
            grouped = kids.group_by("record_no", use_threads=False).aggregate(
                [(col, fn) for col, fn, _ in specs]
            )
            joined = (
                records.select(["record_no"])
                .join(grouped, "record_no", join_type="left outer", use_threads=False)
                .sort_by("record_no")
            )
            for col, fn, name in specs:
                columns[name] = pc.fill_null(joined.column(f"{col}_{fn}"), 0)
        for f in self.contract.record.fields:
            columns[f.name] = records.column(f.name)
        return Chunk(pa.table(columns, schema=self._rec_schema), children)

    def __iter__(self) -> Iterator[Chunk]:
        read_head(self.path, HEAD_BYTES, _KIND)  # refusals before pyarrow sees the file
        state = _Open()
        trailer_line = 0
        last_line = 0
        pending: list[pa.Table] = []
        pending_children: list[pa.Table] = []
        empty_children = self._child_schema.empty_table() if self._child_schema else None

        def take(final: bool) -> Iterator[Chunk]:
            """Complete records, chunk_size at a time (all of them at the end)."""
            nonlocal pending, pending_children
            records = pa.concat_tables(pending) if pending else None
            if records is None:
                return
            kids = pa.concat_tables(pending_children) if pending_children else empty_children
            # The last record read is still open unless the file has ended.
            complete = records.num_rows - (0 if final else 1)
            done = 0
            while complete - done >= self.chunk_size:
                part = records.slice(done, self.chunk_size)
                last = part.column("record_no")[-1].as_py()
                cut = None
                if kids is not None:
                    count = pc.sum(pc.less_equal(kids.column("record_no"), last)).as_py() or 0
                    cut, kids = kids.slice(0, count), kids.slice(count)
                yield self._chunk(part, cut)
                done += self.chunk_size
            pending = [records.slice(done)]
            pending_children = [kids] if kids is not None else []

        for lines, first in self._lines():
            records, children, trailer_line = self._block(lines, first, state, trailer_line)
            last_line = first + len(lines) - 1
            self.records_read = state.record_no
            pending.append(records)
            if children is not None:
                pending_children.append(children)
            yield from take(final=False)
        if not last_line:
            raise FileRefused("EMPTY_FILE", "the file has no records")
        if not trailer_line:
            raise FileRefused(
                "STRUCTURE",
                f"the file ends at line {last_line} without a trailer "
                f"(type {self.contract.trailer.record_type})",
                line=last_line,
            )
        yield from take(final=True)
        rest = pa.concat_tables(pending) if pending else self._rec_schema.empty_table()
        kids = pa.concat_tables(pending_children) if pending_children else empty_children
        yield self._chunk(rest, kids)


def sniff_fixed_width(path: Path, contracts: list[FormatContract]) -> FormatContract:
    """Pick the contract version the header names in its ``format_version`` field.

    Reads only the first line. Refuses empty and binary files, a first line that is not
    UTF-8 or not a header, and versions no contract describes.
    """
    head = read_head(path, HEAD_BYTES, _KIND)
    raw = head.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        if len(raw) < HEAD_BYTES - 8:  # else the first line is just cut mid-character
            raise _encoding_error(1, raw) from None
        line = raw.decode("utf-8", errors="replace")
    known = ", ".join(str(c.version) for c in contracts)
    headers, text = [], ""
    for contract in contracts:
        start, end = contract.type_field
        if line[start - 1 : end] != contract.header.record_type:
            continue
        headers.append(contract.header.record_type)
        version = next((f for f in contract.header.fields if f.name == "format_version"), None)
        if version is None:
            continue
        text = line[version.start - 1 : version.end]
        if text.isdigit() and int(text) == contract.version:
            return contract
    if not headers:
        expected = sorted({c.header.record_type for c in contracts})
        raise FileRefused(
            "STRUCTURE",
            f"the first record must be the header (type {' or '.join(expected)}), "
            f"found {line[:3]!r}",
            line=1,
        )
    raise FileRefused(
        "UNKNOWN_FORMAT",
        f"the header names format version {text!r}; known versions: {known}",
        line=1,
    )
