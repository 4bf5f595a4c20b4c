"""The generic XML engine: stream a file, validate it against its XSD, emit Arrow chunks.

Hardened by construction: no DTD (a DOCTYPE alone quarantines the file), no entity
expansion, no network, libxml2's default size and depth limits (``huge_tree`` off), UTF-8 only.
Memory stays bounded whatever the file size: records are freed ``SWEEP`` at a time as they are
read and handed out ``chunk_size`` at a time.

Fast: the XSD is checked by the parse that reads the records; each record's elements are
walked once in C (their tags, numbers of children and texts), the fields found by a plan built
once per shape of record (exactly where ``findtext`` would find them), and the texts converted
a chunk at a time by pyarrow (each distinct date or timestamp converted once).
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from edihub.formats.contract import FieldSpec, FormatContract, RecordSpec, TableSpec
from edihub.formats.errors import FileRefused
from edihub.formats.head import UTF8_BOM, read_head

MONACO = ZoneInfo("Europe/Monaco")

ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s", tz="UTC"),
    "cents": pa.int64(),
    "bool": pa.bool_(),
}
# Schema errors are located by a second, whole-tree validation up to this size.
LOCATE_LIMIT = 32 * 1024 * 1024
_XML_DECL = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


@cache
def _schema(path: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _cents(text: str) -> int:
    try:
        return int(Decimal(text).scaleb(2).to_integral_exact())
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not an amount with at most two decimals") from exc


def _timestamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        # A time without offset is the sender's wall clock, i.e. Monaco time.
        value = value.replace(tzinfo=MONACO)
    return value


CONVERTERS = {
    "string": str,
    "int": int,
    "date": lambda text: dt.date.fromisoformat(text[:10]),
    "timestamp": _timestamp,
    "cents": _cents,
    "bool": lambda text: text in ("true", "1"),  # xs:boolean's lexical forms
}


def arrow_schema(fields: tuple[FieldSpec, ...], extra: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema(
        [pa.field(k, t) for k, t in extra.items()]
        + [pa.field(f.name, ARROW_TYPES[f.type]) for f in fields]
    )


# What Python's str.strip() removes (Unicode has no whitespace above U+3000).
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# Texts that pyarrow's casts read exactly as int() and _cents() do.
_PLAIN_INT = r"^-?[0-9]{1,18}$"
_PLAIN_AMOUNT = r"^[+-]?([0-9]{1,16}(\.[0-9]{0,2})?|\.[0-9]{1,2})$"
_HUNDRED = pa.scalar(Decimal(100), pa.decimal128(3, 0))


def _all_match(texts: pa.Array, pattern: str) -> bool:
    return pc.all(pc.match_substring_regex(texts, pattern)).as_py() is not False


def _plain_int(texts: pa.Array) -> pa.Array | None:
    return texts.cast(pa.int64()) if _all_match(texts, _PLAIN_INT) else None


def _plain_cents(texts: pa.Array) -> pa.Array | None:
    if not _all_match(texts, _PLAIN_AMOUNT):
        return None
    return pc.multiply(texts.cast(pa.decimal128(18, 2)), _HUNDRED).cast(pa.int64())


# Vectorised conversions of stripped texts: each gives CONVERTERS' result where it applies,
# None elsewhere.
PLAIN: dict[str, Callable[[pa.Array], pa.Array | None]] = {
    "string": lambda texts: texts,
    "int": _plain_int,
    "cents": _plain_cents,
}


class _BadValue(Exception):
    """Row ``row`` of a column does not convert."""

    def __init__(self, row: int, error: ValueError) -> None:
        super().__init__(row, error)
        self.row, self.error = row, error


def convert_column(kind: str, texts: Sequence[str | None]) -> pa.Array:
    """The Arrow column of CONVERTERS[kind] applied to each text, stripped (None: null).

    Raises _BadValue for the first row that does not convert.
    """
    column = pc.utf8_trim(pa.array(texts, pa.string()), _SPACES)
    plain = PLAIN.get(kind)
    if plain is not None and (done := plain(column)) is not None:
        return done
    # Each distinct text converted once; the dictionary is in order of first appearance, so
    # its first failure is the column's.
    encoded = column.dictionary_encode()
    convert = CONVERTERS[kind]
    values = []
    for text in encoded.dictionary.to_pylist():
        try:
            values.append(convert(text))
        except ValueError as exc:
            raise _BadValue(column.index(text).as_py(), exc) from exc
    return pa.array(values, ARROW_TYPES[kind]).take(encoded.indices)


def _sums(values: pa.Array, ends: np.ndarray) -> pa.Array:
    """Per record, the sum of its children's ``values`` (null counts 0); ``ends``: where
    each record's children end."""
    running = pa.concat_arrays(
        [pa.array([0], pa.int64()), pc.cumulative_sum_checked(values.fill_null(0))]
    )
    return pc.subtract_checked(running.take(ends), running.take(np.concatenate([[0], ends[:-1]])))


def _pick(positions: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A getter of the items at ``positions``, as a tuple whatever their number."""
    if len(positions) == 1:
        only = positions[0]
        return lambda seq: (seq[only],)
    return itemgetter(*positions) if positions else lambda _seq: ()


_TAG, _TEXT = attrgetter("tag"), attrgetter("text")


@dataclass(frozen=True)
class _Layout:
    """Where a record's fields are: their paths as qualified tags, step by step."""

    child: str | None
    fields: tuple[tuple[str, ...], ...]
    child_fields: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, record: RecordSpec, namespace: str) -> _Layout:
        def paths(spec: TableSpec) -> tuple[tuple[str, ...], ...]:
            return tuple(
                tuple(f"{{{namespace}}}{step}" for step in f.path.split("/")) for f in spec.fields
            )

        kids = record.children
        return cls(
            f"{{{namespace}}}{kids.element}" if kids else None,
            paths(record),
            paths(kids) if kids else (),
        )


@dataclass(frozen=True)
class _Plan:
    """Where, in a record's element texts, each field is: for one shape of record."""

    fields: Callable[[Sequence[Any]], tuple[Any, ...]]
    children: Callable[[Sequence[Any]], tuple[Any, ...]]  # child after child
    found: Callable[[Sequence[Any]], tuple[Any, ...]]  # every field that has an element
    count: int  # children

    @classmethod
    def of(cls, layout: _Layout, tags: tuple[str, ...], arity: tuple[int, ...]) -> _Plan:
        """The plan of the record whose elements, in document order, have these tags and
        numbers of children. Finds each field as findtext would: the first match of its
        path in document order; a field without one is at -1."""
        kids: list[list[int]] = [[] for _ in tags]
        unfilled: list[int] = []
        for i in range(len(tags)):
            if unfilled:
                kids[unfilled[-1]].append(i)
            unfilled.append(i)
            while unfilled and len(kids[unfilled[-1]]) == arity[unfilled[-1]]:
                unfilled.pop()

        def find(node: int, path: tuple[str, ...]) -> int:
            for kid in kids[node]:
                if tags[kid] == path[0]:
                    hit = kid if len(path) == 1 else find(kid, path[1:])
                    if hit >= 0:
                        return hit
            return -1

        children = [k for k in kids[0] if tags[k] == layout.child]
        fields = [find(0, path) for path in layout.fields]
        child_fields = [find(c, path) for c in children for path in layout.child_fields]
        found = [p for p in fields + child_fields if p >= 0]
        return cls(_pick(fields), _pick(child_fields), _pick(found), len(children))


# What pyarrow raises for a value its type cannot hold.
UNBUILDABLE = (pa.ArrowException, OverflowError, TypeError)
# Distinct record shapes kept at once: a file of ever new shapes must not grow memory.
PLANS_KEPT = 256
# Records read are freed this many at a time.
SWEEP = 1024


class _Pending:
    """Records read but not yet converted: the texts their plans picked, then Arrow tables."""

    def __init__(self, record: RecordSpec) -> None:
        self.record = record
        self.schema = arrow_schema(
            record.fields,
            {"record_no": pa.int64(), "line_no": pa.int64()}
            | {name: pa.int64() for name in record.aggregates},
        )
        self.child_schema = (
            arrow_schema(
                record.children.fields,
                {"record_no": pa.int64(), record.id: pa.string(), "child_no": pa.int64()},
            )
            if record.children
            else None
        )
        self.first_no = 1
        self.tables: list[tuple[pa.Table, pa.Table | None]] = []
        # A value that converts but that Arrow cannot hold (an int beyond 64 bits): raised
        # when the chunk is built, as building it record by record did.
        self.unbuildable: Exception | None = None
        # Per record added: its line, its fields' texts, its number of children; and its
        # children's fields' texts, flat. Emptied in place: the reader holds their methods.
        self.lines: list[int] = []
        self.fields: list[tuple[str | None, ...]] = []
        self.counts: list[int] = []
        self.kids: list[str | None] = []

    def settle(self) -> None:
        """Convert the records added since the last call; refuse the file at the first value
        that does not convert, in document order (as reading record by record would)."""
        n = len(self.lines)
        if not n:
            return
        record, kids = self.record, self.record.children
        failures: list[tuple[tuple[int, ...], FieldSpec, _BadValue]] = []
        values: dict[str, pa.Array] = {}
        columns = zip(*self.fields, strict=True)
        for i, (f, texts) in enumerate(zip(record.fields, columns, strict=True)):
            try:
                values[f.name] = convert_column(f.type, texts)
            except _BadValue as bad:
                failures.append(((bad.row, 0, 0, i), f, bad))
            except UNBUILDABLE as exc:
                self.unbuildable = self.unbuildable or exc
        kid_values: dict[str, pa.Array] = {}
        counts = np.array(self.counts, np.int64)
        ends = np.cumsum(counts)
        parents = np.repeat(np.arange(n), counts)  # per child, its record's row
        child_nos = np.arange(1, len(parents) + 1) - np.repeat(ends - counts, counts)
        if kids:
            width = len(kids.fields)
            for j, f in enumerate(kids.fields):
                try:
                    kid_values[f.name] = convert_column(f.type, self.kids[j::width])
                except _BadValue as bad:
                    at = (int(parents[bad.row]), 1, int(child_nos[bad.row]), j)
                    failures.append((at, f, bad))
                except UNBUILDABLE as exc:
                    self.unbuildable = self.unbuildable or exc
        if failures:
            (row, *_), f, bad = min(failures, key=lambda failure: failure[0])
            raise FileRefused(
                "SCHEMA_VIOLATION",
                f"field {f.name} ({f.path}): {bad.error}",
                record_no=self.first_no + row,
            ) from bad.error
        if self.unbuildable is None:
            try:
                table = pa.Table.from_arrays(
                    [
                        pa.array(np.arange(self.first_no, self.first_no + n)),
                        pa.array(self.lines, pa.int64()),
                        *(
                            pa.array(counts)
                            if agg.get("count")
                            else _sums(kid_values[agg["sum"]], ends)
                            for agg in record.aggregates.values()
                        ),
                        *(values[f.name] for f in record.fields),
                    ],
                    schema=self.schema,
                )
                children = None
                if kids and self.child_schema is not None:
                    rows = pa.array(parents)
                    children = pa.Table.from_arrays(
                        [
                            pa.array(parents + self.first_no),
                            values[record.id].take(rows),
                            pa.array(child_nos),
                            *(kid_values[f.name] for f in kids.fields),
                        ],
                        schema=self.child_schema,
                    )
                self.tables.append((table, children))
            except UNBUILDABLE as exc:
                self.unbuildable = exc
        self.first_no += n
        for pending in (self.lines, self.fields, self.counts, self.kids):
            pending.clear()

    def chunk(self) -> Chunk:
        """Everything settled so far, as one chunk."""
        if self.unbuildable is not None:
            raise self.unbuildable
        tables, self.tables = self.tables, []
        if len(tables) == 1:
            return Chunk(*tables[0])
        records = [t for t, _ in tables] or [self.schema.empty_table()]
        children = [t for _, t in tables if t is not None]
        if self.child_schema is not None and not children:
            children = [self.child_schema.empty_table()]
        return Chunk(
            pa.concat_tables(records).combine_chunks(),
            pa.concat_tables(children).combine_chunks() if children else None,
        )


@dataclass
class Chunk:
    """A batch of parsed records and their children, as Arrow tables."""

    records: pa.Table
    children: pa.Table | None


@dataclass
class XmlFile:
    """Reads one file; iterate for chunks, then read ``header`` and ``trailer``."""

    path: Path
    contract: FormatContract
    chunk_size: int = 50_000
    header: dict[str, Any] = field(default_factory=dict)
    trailer: dict[str, Any] = field(default_factory=dict)
    records_read: int = 0

    def _q(self, name: str) -> str:
        return f"{{{self.contract.namespace}}}{name}"

    def _extract(self, el: etree._Element, spec: TableSpec) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for f in spec.fields:
            text = el.findtext("/".join(self._q(part) for part in f.path.split("/")))
            if text is None:
                row[f.name] = None
                continue
            try:
                row[f.name] = CONVERTERS[f.type](text.strip())
            except ValueError as exc:
                # The XSD has already checked the lexical form; this is a defensive net.
                raise FileRefused("SCHEMA_VIOLATION", f"field {f.name} ({f.path}): {exc}") from exc
        return row

    def _settle(self, pending: _Pending) -> None:
        try:
            pending.settle()
        except FileRefused as refused:
            # Reading stopped at that record.
            self.records_read = refused.record_no or self.records_read
            raise

    def __iter__(self) -> Iterator[Chunk]:
        contract = self.contract
        header_tag, trailer_tag, root_tag = (
            self._q(contract.header.element),
            self._q(contract.trailer.element),
            self._q(contract.root),
        )
        layout = _Layout.of(contract.record, contract.namespace)
        plans: dict[tuple[tuple[str, ...], tuple[int, ...]], _Plan] = {}
        pending = _Pending(contract.record)
        add_line, add_fields = pending.lines.append, pending.fields.append
        add_count, add_kids = pending.counts.append, pending.kids.extend
        count, finished = 0, False
        top: etree._Element | None = None
        rec_tag = self._q(contract.record.element)
        source = self.path.open("rb")
        try:
            context = etree.iterparse(
                source,
                events=("end",),
                tag=(rec_tag, header_tag, trailer_tag, root_tag),
                schema=_schema(contract.schema_path),
                **PARSER_OPTIONS,
            )
            for _event, el in context:
                tag = el.tag
                if tag == rec_tag:
                    self.records_read += 1
                    # One pass in C over the record's elements: their tags and numbers of
                    # children say where each field is (the plan, built once per shape).
                    elements = list(el.iter())
                    shape = (tuple(map(_TAG, elements)), tuple(map(len, elements)))
                    plan = plans.get(shape)
                    if plan is None:
                        if len(plans) >= PLANS_KEPT:
                            plans.clear()
                        plan = plans[shape] = _Plan.of(layout, *shape)
                    texts = list(map(_TEXT, elements))
                    texts.append(None)  # where fields without an element read from
                    if None in plan.found(texts):
                        # an empty element: findtext reads it as ""
                        texts = ["" if t is None else t for t in texts[:-1]] + [None]
                    add_line(el.sourceline)
                    add_fields(plan.fields(texts))
                    add_count(plan.count)
                    add_kids(plan.children(texts))
                    count += 1
                    parent = el.getparent()
                    if parent is not top and parent.getparent() is None:
                        top = parent  # the root, whose children records are
                    if parent is not top:
                        # A record inside another element (the XSD forbids it) is freed at
                        # once, as before: what holds it may be read later.
                        el.clear(keep_tail=False)
                        while el.getprevious() is not None:
                            del parent[0]
                    elif self.records_read % SWEEP == 0:
                        # Free the records read (a record at a time would cost more).
                        del parent[: parent.index(el) + 1]
                else:
                    # The records before this element convert (and fail) before it does.
                    self._settle(pending)
                    if tag == header_tag:
                        self.header = self._extract(el, contract.header)
                    elif tag == trailer_tag:
                        self.trailer = self._extract(el, contract.trailer)
                    elif tag == root_tag:
                        finished = True
                    # Free what has been read: the element and the siblings before it.
                    el.clear(keep_tail=False)
                    parent = el.getparent()
                    if parent is not None:
                        while el.getprevious() is not None:
                            del parent[0]
                if count >= self.chunk_size:
                    count = 0
                    self._settle(pending)
                    yield pending.chunk()
        except (etree.XMLSyntaxError, OSError) as exc:
            self._settle(pending)  # a record read before the error may fail first
            refused = _refusal(exc)
            if refused.code == "SCHEMA_VIOLATION":
                refused = locate_schema_error(self.path, contract, refused)
            elif refused.code == "NOT_WELL_FORMED":
                refused = _utf8_error(self.path) or refused
            raise refused from exc
        finally:
            source.close()
        if not finished:
            self._settle(pending)
            # lxml's iterparse with a schema can stop at a syntax error without raising:
            # an unfinished document is diagnosed by a plain streaming parse.
            raise _diagnose(self.path)
        self._settle(pending)
        yield pending.chunk()


def _refusal(exc: etree.XMLSyntaxError | OSError) -> FileRefused:
    """Turn libxml2's error into a refusal that says what to fix."""
    if not isinstance(exc, etree.XMLSyntaxError):
        # lxml reports undecodable bytes as an OSError "Error reading file ..."
        if "Error reading file" not in str(exc):
            raise exc
        return FileRefused("ENCODING", f"{str(exc).split(': ', 1)[-1]}; files must be UTF-8")
    # The exception's error log can also hold earlier, unrelated errors of this thread:
    # take the entry that raised.
    own = [e for e in (exc.error_log or []) if e.message.strip() and e.message.strip() in str(exc)]
    error = own[-1] if own else None
    message = (error.message if error else str(exc)).strip()
    line = (error.line if error else exc.lineno) or None
    if error is not None and error.domain_name == "SCHEMASV":
        return FileRefused("SCHEMA_VIOLATION", message)
    if "encoding" in message.lower() or "utf-8" in message.lower():
        return FileRefused("ENCODING", f"{message}; files must be UTF-8", line=line)
    return FileRefused("NOT_WELL_FORMED", message, line=line)


def _utf8_error(path: Path) -> FileRefused | None:
    """Where the file stops being UTF-8, if it does (libxml2 only says "no element found")."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                line = lines + block[: exc.start].count(b"\n")
                return FileRefused(
                    "ENCODING",
                    f"byte 0x{block[exc.start]:02x} at offset {bad} is not UTF-8; "
                    "files must be UTF-8",
                    line=line,
                )
            offset += len(block)
            lines += block.count(b"\n")
    return None


def _diagnose(path: Path) -> FileRefused:
    if (encoding := _utf8_error(path)) is not None:
        return encoding
    try:
        with path.open("rb") as fh:
            for _event, el in etree.iterparse(fh, events=("end",), **PARSER_OPTIONS):
                el.clear(keep_tail=False)
    except (etree.XMLSyntaxError, OSError) as exc:
        return _refusal(exc)
    return FileRefused("NOT_WELL_FORMED", "the document ends before its root element closes")


def locate_schema_error(path: Path, contract: FormatContract, refused: FileRefused) -> FileRefused:
    """Find the line and record of a schema violation (streaming validation reports neither).

    Re-reads the file as a whole tree, so only below ``LOCATE_LIMIT`` bytes; above it the
    refusal keeps its message without a position. If the whole-tree parse finds the file is
    not even well-formed, that is the better explanation and is returned instead.
    """
    if path.stat().st_size > LOCATE_LIMIT:
        return refused
    parser = etree.XMLParser(**PARSER_OPTIONS)
    schema = _schema(contract.schema_path)
    try:
        with path.open("rb") as fh:
            tree = etree.parse(fh, parser)
    except (etree.XMLSyntaxError, OSError) as exc:
        return _refusal(exc)
    if schema.validate(tree) or not schema.error_log:
        return refused
    line = schema.error_log[0].line
    record_tag = f"{{{contract.namespace}}}{contract.record.element}"
    id_field = next(f for f in contract.record.fields if f.name == contract.record.id)
    id_path = "/".join(f"{{{contract.namespace}}}{p}" for p in id_field.path.split("/"))
    for number, record in enumerate(tree.getroot().iter(record_tag), start=1):
        if record.sourceline > line:
            break
        refused.record_no, refused.record_id = number, record.findtext(id_path)
    refused.line = line
    return refused


def sniff(path: Path, contracts: list[FormatContract]) -> FormatContract:
    """Check the prolog and pick the contract version the file names (by namespace).

    Reads only the start of the file. Refuses: empty files, non-UTF-8 encodings, any DTD.
    """
    head = read_head(path, 4096, "XML file").removeprefix(UTF8_BOM)
    declared = _XML_DECL.match(head)
    if declared and declared.group(1).decode().lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise FileRefused(
            "ENCODING",
            f"the file declares encoding {declared.group(1).decode()}; files must be UTF-8",
        )
    try:
        for _event, el in etree.iterparse(str(path), events=("start",), **PARSER_OPTIONS):
            docinfo = el.getroottree().docinfo
            if docinfo.doctype or docinfo.internalDTD is not None:
                raise FileRefused(
                    "DTD_FORBIDDEN",
                    "the file carries a DOCTYPE/DTD; DTDs and entities are not accepted",
                    hostile=True,
                )
            ns = etree.QName(el).namespace
            local = etree.QName(el).localname
            for contract in contracts:
                if ns == contract.namespace and local == contract.root:
                    return contract
            known = ", ".join(f"{c.namespace} ({c.label})" for c in contracts)
            raise FileRefused(
                "UNKNOWN_FORMAT",
                f"root element {{{ns}}}{local} is not a known format; expected one of: {known}",
            )
    except (etree.XMLSyntaxError, OSError) as exc:
        raise _diagnose(path) from exc
    raise FileRefused("NOT_WELL_FORMED", "no root element")
