"""The generic XML engine: stream a file, validate it against its XSD, emit Arrow chunks.

Hardened by construction: no DTD (a DOCTYPE alone quarantines the file), no entity
expansion, no network, libxml2's default size and depth limits (``huge_tree`` off), UTF-8 only.
Memory stays bounded whatever the file size: records are cleared as soon as they are read and
handed out ``chunk_size`` at a time.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from lxml import etree

from edihub.formats.contract import FieldSpec, FormatContract, TableSpec
from edihub.formats.errors import FileRefused

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
# gzip, zip, bzip2, xz, zstd: libxml2 would inflate some of these itself, bombs included.
BINARY_MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")
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

    def _path(self, path: str) -> str:
        return "/".join(self._q(part) for part in path.split("/"))

    def _extract(self, el: etree._Element, spec: TableSpec, record_no: int) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for f in spec.fields:
            text = el.findtext(self._path(f.path))
            if text is None:
                row[f.name] = None
                continue
            try:
                row[f.name] = CONVERTERS[f.type](text.strip())
            except ValueError as exc:
                # The XSD has already checked the lexical form; this is a defensive net.
                raise FileRefused(
                    "SCHEMA_VIOLATION",
                    f"field {f.name} ({f.path}): {exc}",
                    record_no=record_no or None,
                ) from exc
        return row

    def __iter__(self) -> Iterator[Chunk]:
        contract = self.contract
        record = contract.record
        rec_cols: dict[str, list[Any]] = {}
        child_cols: dict[str, list[Any]] = {}
        aggregates = record.aggregates
        rec_tag, header_tag, trailer_tag = (
            self._q(record.element),
            self._q(contract.header.element),
            self._q(contract.trailer.element),
        )
        root_tag = self._q(contract.root)
        finished = False
        child_path = self._q(record.children.element) if record.children else None
        current_id: str | None = None

        def flush() -> Chunk:
            rec_schema = arrow_schema(
                record.fields,
                {"record_no": pa.int64(), "line_no": pa.int64()}
                | {name: pa.int64() for name in aggregates},
            )
            records = (
                pa.Table.from_pydict(rec_cols, schema=rec_schema)
                if rec_cols
                else (rec_schema.empty_table())
            )
            children = None
            if record.children:
                ch_schema = arrow_schema(
                    record.children.fields,
                    {"record_no": pa.int64(), record.id: pa.string(), "child_no": pa.int64()},
                )
                children = (
                    pa.Table.from_pydict(child_cols, schema=ch_schema)
                    if child_cols
                    else ch_schema.empty_table()
                )
            rec_cols.clear()
            child_cols.clear()
            return Chunk(records, children)

        def append(cols: dict[str, list[Any]], row: dict[str, Any]) -> None:
            for k, v in row.items():
                cols.setdefault(k, []).append(v)

        source = self.path.open("rb")
        try:
            context = etree.iterparse(
                source,
                events=("end",),
                tag=(rec_tag, header_tag, trailer_tag, root_tag),
                schema=_schema(contract.schema_path),
                **PARSER_OPTIONS,
            )
            pending = 0
            for _event, el in context:
                if el.tag == rec_tag:
                    self.records_read += 1
                    no = self.records_read
                    row = self._extract(el, record, no)
                    current_id = row.get(record.id)
                    kids = []
                    if record.children and child_path is not None:
                        for i, child in enumerate(el.iterchildren(child_path), start=1):
                            kid = self._extract(child, record.children, no)
                            kids.append(kid)
                            append(
                                child_cols,
                                {"record_no": no, record.id: current_id, "child_no": i} | kid,
                            )
                    for name, agg in aggregates.items():
                        if agg.get("count"):
                            row[name] = len(kids)
                        else:
                            row[name] = sum(k[agg["sum"]] or 0 for k in kids)
                    append(rec_cols, {"record_no": no, "line_no": el.sourceline} | row)
                    pending += 1
                elif el.tag == header_tag:
                    self.header = self._extract(el, contract.header, 0)
                elif el.tag == trailer_tag:
                    self.trailer = self._extract(el, contract.trailer, 0)
                # Free what has been read: the element and the siblings before it.
                el.clear(keep_tail=False)
                parent = el.getparent()
                if parent is not None:
                    while el.getprevious() is not None:
                        del parent[0]
                if pending >= self.chunk_size:
                    pending = 0
                    yield flush()
                if el.tag == root_tag:
                    finished = True
        except (etree.XMLSyntaxError, OSError) as exc:
            refused = _refusal(exc)
            if refused.code == "SCHEMA_VIOLATION":
                refused = locate_schema_error(self.path, contract, refused)
            elif refused.code == "NOT_WELL_FORMED":
                refused = _utf8_error(self.path) or refused
            raise refused from exc
        finally:
            source.close()
        if not finished:
            # lxml's iterparse with a schema can stop at a syntax error without raising:
            # an unfinished document is diagnosed by a plain streaming parse.
            raise _diagnose(self.path)
        yield flush()


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
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not head.strip():
        raise FileRefused("EMPTY_FILE", "the file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:2] in (b"<\x00", b"\x00<"):
        raise FileRefused("ENCODING", "the file is UTF-16; files must be UTF-8")
    if head.startswith(BINARY_MAGIC) or b"\x00" in head:
        raise FileRefused(
            "NOT_TEXT", "the file is binary or compressed; send the XML file itself, uncompressed"
        )
    head = head.removeprefix(b"\xef\xbb\xbf")
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
