"""Partner-facing documentation of every inbound format, generated from the contract files.

Everything a partner reads here comes from what the hub checks: the record structure from
``formats/<feed>/v<N>/`` (format.yaml, and the XSD for XML feeds), the rules from the Great
Expectations suites under ``contracts/<feed>/v<N>/``, the refusal codes and acknowledgment
codes from the engines' own constants, and the example files from the hub's own writers. The
output is deterministic (fixed dates), so ``docs/formats/`` is committed and a test fails
whenever a contract changes without ``edihub docs formats`` being run again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from edihub.acks.ack import MAX_LISTED_ERRORS, STATUS_CODES, ack_file_name
from edihub.config import Settings
from edihub.contracts.engine import REJECT_FILE, DataContract
from edihub.feeds import FEEDS
from edihub.formats.contract import FieldSpec, FormatContract, TableSpec, feed_formats
from edihub.formats.readers import open_reader
from edihub.sftp.client import MAX_NAME_BYTES, TEMP_SUFFIXES
from edihub.sftp.layout import PARTNER_VIEW_ACKS, PARTNER_VIEW_INBOUND

if TYPE_CHECKING:
    from edihub.fse_writer import Message

XS = "http://www.w3.org/2001/XMLSchema"
EXAMPLE_DATE = dt.date(2026, 11, 2)
ACK_SCHEMA = Path("acks") / "v1" / "ack.xsd"

# ------------------------------------------------------------------------------ refusals

# Whole-file refusals, by the family of engine that raises them. ``edihub.formats.xml_engine``
# and ``edihub.formats.fixed_width`` raise the format ones, ``edihub.collect`` the others;
# tests/unit/test_partner_docs.py checks that every code those modules raise is listed here.
_REFUSALS: dict[str, tuple[str, str]] = {
    # code: (status, what it means for the sender)
    "UNSAFE_NAME": (
        "quarantined",
        f"the file name is not usable: not UTF-8, empty, longer than {MAX_NAME_BYTES} bytes, "
        "or holding a path separator, a control character or a bidirectional-text control",
    ),
    "NOT_A_REGULAR_FILE": (
        "quarantined",
        "what was put in the folder is a symlink, a FIFO or a device, not a file: it is not "
        "read or followed; upload the file itself",
    ),
    "TOO_LARGE": ("quarantined", "the file is over the hub's size limit; it is not read"),
    "WRONG_FOLDER": (
        "rejected",
        "the file is not of this feed but of another (the acknowledgment names it and its "
        "folder): nothing of it is loaded; send it to the folder of its feed",
    ),
    "EMPTY_FILE": ("rejected", "the file is empty (or holds only blanks)"),
    "NOT_TEXT": ("rejected", "the file is binary or compressed; send the text file itself"),
    "ENCODING": (
        "rejected",
        "the file is not UTF-8 (UTF-16, another declared encoding, "
        "or bytes that are not valid UTF-8)",
    ),
    "DTD_FORBIDDEN": (
        "quarantined",
        "the file carries a DOCTYPE/DTD; DTDs and entities are never accepted",
    ),
    "UNKNOWN_FORMAT": ("rejected", ""),  # per family, below
    "NOT_WELL_FORMED": ("rejected", "the file is not well-formed XML (the line is given)"),
    "SCHEMA_VIOLATION": (
        "rejected",
        "the file does not follow the XSD: the message names the element, the record and line",
    ),
    "RECORD_LENGTH": ("rejected", ""),  # per family, below
    "UNKNOWN_RECORD_TYPE": ("rejected", ""),  # per family, below
    "STRUCTURE": (
        "rejected",
        "records out of order: the header is not first or not alone, a record follows the "
        "trailer, the trailer is missing, or a child line is not under the record it names",
    ),
    "LAYOUT_VIOLATION": (
        "rejected",
        "a field does not hold what its type says (e.g. letters in a number, an impossible "
        "date), or a line holds a control character",
    ),
    "FILE_NAME": (
        "rejected",
        "the file name is not one of the documents listed on this page (`<document>_YYYYMMDD.csv`)"
        ", or its date is not a date",
    ),
    "HEADER_ROW": (
        "rejected",
        "the header row does not name the columns of a version of this document (missing, "
        "unknown or repeated columns, or another separator than the comma)",
    ),
    "ROW_COLUMNS": (
        "rejected",
        "a row has more or fewer cells than the header row (the line is given)",
    ),
    "MISSING_VALUE": ("rejected", "a required column is empty (the record and line are given)"),
    "FIELD_TYPE": (
        "rejected",
        "a value does not hold what its type says (a number, a date YYYY-MM-DD of the calendar, "
        "true/false): the record, line and value are given",
    ),
    "INCOMPLETE_SNAPSHOT": (
        "rejected",
        "snapshots only: some records failed the rules below, and a snapshot is loaded whole or "
        "not at all; the previous snapshot stays in force",
    ),
    "STALE_SNAPSHOT": (
        "rejected",
        "snapshots only: a more recent snapshot of the same document was loaded first",
    ),
    "ALL_RECORDS_REJECTED": (
        "rejected",
        "every record of the file was rejected by the rules below: nothing is loaded",
    ),
    "DUPLICATE_FILE": (
        "duplicate",
        "the very same file (same SHA-256) was already loaded: do not resend it",
    ),
    "DUPLICATE_BATCH": (
        "duplicate",
        "a file with the same batch number from the same sender was already loaded: "
        "do not resend it; a new batch needs a new batch number",
    ),
}
FAMILY_REFUSALS = {
    "xml": ("EMPTY_FILE", "NOT_TEXT", "ENCODING", "DTD_FORBIDDEN", "UNKNOWN_FORMAT",
            "NOT_WELL_FORMED", "SCHEMA_VIOLATION"),
    "fixed_width": ("EMPTY_FILE", "NOT_TEXT", "ENCODING", "UNKNOWN_FORMAT", "RECORD_LENGTH",
                    "UNKNOWN_RECORD_TYPE", "STRUCTURE", "LAYOUT_VIOLATION"),
    "csv": ("EMPTY_FILE", "NOT_TEXT", "ENCODING", "FILE_NAME", "HEADER_ROW", "ROW_COLUMNS",
            "MISSING_VALUE", "FIELD_TYPE"),
}  # fmt: skip
COLLECT_REFUSALS_BEFORE = ("UNSAFE_NAME", "NOT_A_REGULAR_FILE", "TOO_LARGE")
COLLECT_REFUSALS_AFTER = (
    "WRONG_FOLDER",
    "ALL_RECORDS_REJECTED",
    "INCOMPLETE_SNAPSHOT",
    "STALE_SNAPSHOT",
    "DUPLICATE_FILE",
    "DUPLICATE_BATCH",
)


def refusal_codes(family: str) -> tuple[str, ...]:
    """Every whole-file refusal code a file of this family can get, in the order checked."""
    return COLLECT_REFUSALS_BEFORE + FAMILY_REFUSALS[family] + COLLECT_REFUSALS_AFTER


def _refusal_meaning(code: str, fmt: FormatContract) -> str:
    if code == "UNKNOWN_FORMAT":
        if fmt.family == "xml":
            return (
                "the root element (its name and namespace) is not one of the versions and "
                "documents listed on this page"
            )
        return "the header's format version is not one of the versions listed on this page"
    if code == "ENCODING" and fmt.family == "fixed_width":
        return "a line is not valid UTF-8 (the line and byte are given)"
    if code == "UNKNOWN_RECORD_TYPE":
        record, children = fmt.record, fmt.record.children
        kinds = [fmt.header, record, *([children] if children else []), fmt.trailer]
        known = ", ".join(f"`{t.record_type}`" for t in kinds)
        return f"a line's record type is not one of {known}"
    if code == "RECORD_LENGTH":
        return f"a line is not exactly {fmt.record_length} characters long (empty lines too)"
    return _REFUSALS[code][1]


# ------------------------------------------------------------------------------ markdown


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: Any) -> str:
    return f"`{_cell(text)}`"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


# ------------------------------------------------------------------------------ XSD


_BUILTIN = {
    "string": "text",
    "decimal": "decimal number, dot as separator",
    "integer": "integer",
    "int": "integer",
    "nonNegativeInteger": "integer ≥ 0",
    "positiveInteger": "integer ≥ 1",
    "date": "date `YYYY-MM-DD`",
    "dateTime": "date and time `YYYY-MM-DDThh:mm:ss`",
    "boolean": "`true` or `false`",
}


@dataclass
class XsdNode:
    path: str
    type: str
    occurs: str
    restrictions: str
    container: bool = False


class _Xsd:
    """Just enough of XML Schema to describe the hub's XSDs: named and inline simple types,
    nested sequences, occurrences, attributes."""

    def __init__(self, path: Path) -> None:
        self.root = etree.parse(str(path)).getroot()
        self.simple = {t.get("name"): t for t in self.root.findall(f"{{{XS}}}simpleType")}
        self.complex = {t.get("name"): t for t in self.root.findall(f"{{{XS}}}complexType")}
        self.groups = {g.get("name"): g for g in self.root.findall(f"{{{XS}}}group")}

    def element(self, name: str) -> etree._Element:
        for el in self.root.findall(f"{{{XS}}}element"):
            if el.get("name") == name:
                return el
        raise KeyError(f"no global element {name!r} in the schema")

    @staticmethod
    def _local(qname: str) -> str:
        return qname.split(":", 1)[-1]

    def _is_builtin(self, qname: str) -> bool:
        return ":" in qname and self._local(qname) not in self.simple

    def _restriction(self, simple: etree._Element) -> tuple[str, list[str]]:
        """(base type, facets) of a simpleType; named bases are followed."""
        restriction = simple.find(f"{{{XS}}}restriction")
        if restriction is None:
            return "string", []
        base = restriction.get("base", "xs:string")
        facets: list[str] = []
        if not self._is_builtin(base):
            base, facets = self._restriction(self.simple[self._local(base)])
        else:
            base = self._local(base)
        enum = [f.get("value") for f in restriction.findall(f"{{{XS}}}enumeration")]
        if enum:
            facets.append("one of " + ", ".join(_code(v) for v in enum))
        for facet in restriction:
            if not isinstance(facet.tag, str):
                continue
            kind, value = etree.QName(facet).localname, facet.get("value")
            text = {
                "pattern": f"whole value matches {_code(value)}",
                "length": f"exactly {value} characters",
                "minLength": f"at least {value} characters",
                "maxLength": f"at most {value} characters",
                "minInclusive": f"≥ {value}",
                "maxInclusive": f"≤ {value}",
                "minExclusive": f"> {value}",
                "maxExclusive": f"< {value}",
                "fractionDigits": f"at most {value} decimals",
                "totalDigits": f"at most {value} digits in all",
            }.get(kind)
            if text:
                facets.append(text)
        return base, facets

    def _simple(self, el: etree._Element) -> tuple[str, list[str]]:
        """(type shown, restrictions) of an element or attribute of simple content."""
        qname = el.get("type")
        inline = el.find(f"{{{XS}}}simpleType")
        if qname is None and inline is not None:
            base, facets = self._restriction(inline)
            shown = _BUILTIN.get(base, base)
        elif qname is None:
            shown, facets = _BUILTIN["string"], []
        elif self._is_builtin(qname):
            shown, facets = _BUILTIN.get(self._local(qname), self._local(qname)), []
        else:
            base, facets = self._restriction(self.simple[self._local(qname)])
            shown = f"{self._local(qname)}: {_BUILTIN.get(base, base)}"
        if el.get("fixed") is not None:
            facets = [*facets, f"always {_code(el.get('fixed'))}"]
        return shown, facets

    @staticmethod
    def _occurs(el: etree._Element) -> str:
        low, high = el.get("minOccurs", "1"), el.get("maxOccurs", "1")
        high = "n" if high == "unbounded" else high
        return low if low == high else f"{low}..{high}"

    def walk(self, el: etree._Element, parent: str = "") -> list[XsdNode]:
        path = f"{parent}/{el.get('name')}"
        complex_ = el.find(f"{{{XS}}}complexType")
        if complex_ is None and el.get("type") and self._local(el.get("type")) in self.complex:
            complex_ = self.complex[self._local(el.get("type"))]
        if complex_ is None:
            shown, facets = self._simple(el)
            return [XsdNode(path, shown, self._occurs(el), "; ".join(facets))]
        nodes = [XsdNode(path, "group", self._occurs(el), "", container=True)]
        content = complex_.find(f"{{{XS}}}simpleContent/{{{XS}}}extension")
        holder = content if content is not None else complex_
        if content is not None:
            nodes[0] = XsdNode(path, _BUILTIN.get(self._local(content.get("base", "")), "text"),
                               self._occurs(el), "")  # fmt: skip
        for attr in holder.findall(f"{{{XS}}}attribute"):
            shown, facets = self._simple(attr)
            occurs = "1" if attr.get("use") == "required" else "0..1"
            nodes.append(XsdNode(f"{path}/@{attr.get('name')}", shown, occurs, "; ".join(facets)))
        for group in holder.findall(f"{{{XS}}}sequence"):
            nodes += self._particles(group, path)
        return nodes

    def _particles(self, group: Any, path: str) -> list[XsdNode]:
        """The elements of a sequence in order, those of a nested choice marked as such."""
        nodes: list[XsdNode] = []
        for particle in group:
            if not isinstance(particle.tag, str):  # comments
                continue
            kind = etree.QName(particle).localname
            if kind == "element":
                nodes += self.walk(particle, path)
            elif kind == "sequence":
                nodes += self._particles(particle, path)
            elif kind == "group":  # a named group's elements, in place
                named = self.groups[self._local(particle.get("ref"))]
                for inner in named.findall(f"{{{XS}}}sequence"):
                    nodes += self._particles(inner, path)
            elif kind == "choice":
                inner = self._particles(particle, path)
                depth = path.count("/") + 1
                nodes += [
                    dataclasses.replace(n, occurs=f"one of a choice ({n.occurs})")
                    if n.path.count("/") == depth
                    else n
                    for n in inner
                ]
        return nodes


def _hub_fields(fmt: FormatContract) -> dict[str, tuple[str, FieldSpec]]:
    """XML path from the root -> (table, field) the hub loads it into."""
    root, record, children = f"/{fmt.root}", fmt.record, fmt.record.children
    tables: list[tuple[str, TableSpec]] = [
        (f"{root}/{fmt.header.element}", fmt.header),
        (f"{root}/{record.element}", record),
        (f"{root}/{fmt.trailer.element}", fmt.trailer),
    ]
    if children is not None:
        tables.append((f"{root}/{record.element}/{children.element}", children))
    out = {}
    for base, table in tables:
        name = "header" if table is fmt.header else "trailer" if table is fmt.trailer else None
        for f in table.fields:
            out[f"{base}/{f.path}"] = (name or table.table, f)
    return out


_HUB_TYPES = {
    "string": "text",
    "int": "integer",
    "date": "date",
    "timestamp": "date and time",
    "cents": "euros, loaded as cents",
    "bool": "true or false",
}
# Fields of the "cents" type (two decimals, loaded as hundredths) that are not money.
_HUNDREDTHS = {"hours_worked": "hours, loaded as hundredths of an hour"}


def _xml_structure(fmt: FormatContract) -> list[str]:
    xsd = _Xsd(fmt.schema_path)
    loaded = _hub_fields(fmt)
    rows = []
    for node in xsd.walk(xsd.element(fmt.root)):
        hub = ""
        if node.path in loaded:
            table, f = loaded[node.path]
            hub = f"`{table}.{f.name}` ({_HUNDREDTHS.get(f.name, _HUB_TYPES[f.type])})"
        rows.append([_code(node.path), node.type, node.occurs, node.restrictions or "—", hub])
    children = fmt.record.children
    lines = [
        f"Root element `{fmt.root}` in namespace `{fmt.namespace}` (the namespace names the "
        f"version: a file in this namespace is read as version {fmt.version}). The schema, "
        f"[`{fmt.schema}`](../../formats/{fmt.feed}/v{fmt.version}/{fmt.schema}), is the "
        "reference; the table below is read from it.",
        "",
        f"One record is one `{fmt.record.element}` element (loaded as `{fmt.record.table}`, "
        f"identified by `{fmt.record.id}`)"
        + (
            f"; its `{children.element}` elements are loaded as `{children.table}` and live "
            "and die with it."
            if children
            else "."
        ),
        "",
        "*Occurs*: how many times the element may appear in its parent (`0..1` optional, "
        "`n` unbounded). Elements must appear in the order listed.",
        "",
    ]
    return lines + _table(
        ["Path", "Type", "Occurs", "Restrictions (from the XSD)", "Loaded as"], rows
    )


# ------------------------------------------------------------------------------ fixed width

_FW_TYPES = {
    "string": ("text", "left-aligned, padded with spaces on the right"),
    "int": ("number", "digits only, right-aligned, padded with zeros on the left"),
    "cents": (
        "amount in cents",
        "digits only, in cents (12.99 € is `1299`), right-aligned, zero-padded",
    ),
    "date": ("date", "`YYYYMMDD`"),
    "timestamp": ("date and time", "`YYYYMMDDhhmmss`"),
}


def _fw_table(fmt: FormatContract, spec: TableSpec, title: str, parent: str = "") -> list[str]:
    start, end = fmt.type_field
    rows: list[list[Any]] = [
        ["record type", f"{start}-{end}", end - start + 1, "text", f"always `{spec.record_type}`"]
    ]
    fields = list(spec.fields)
    if spec.parent_id is not None:
        fields.append(spec.parent_id)
    for f in sorted(fields, key=lambda f: f.start):
        kind, meaning = _FW_TYPES[f.type]
        name = f.name
        if f is spec.parent_id:
            name, meaning = "parent id", f"the `{parent}` of the record it follows; {meaning}"
        rows.append([_code(name), f"{f.start}-{f.end}", f.end - f.start + 1, kind, meaning])
    used = {p for f in fields for p in range(f.start, f.end + 1)} | set(range(start, end + 1))
    free = [p for p in range(1, fmt.record_length + 1) if p not in used]
    head = ["Field", "Positions", "Length", "Type", "Content"]
    lines = [f"#### {title}", "", *_table(head, rows)]
    spans: list[list[int]] = []
    for p in free:
        if spans and spans[-1][1] == p - 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    if spans:
        shown = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)
        lines += [f"Positions {shown}: spaces (reserved).", ""]
    return lines


def _fw_structure(fmt: FormatContract) -> list[str]:
    record, children = fmt.record, fmt.record.children
    order = f"then each `{record.record_type}` {record.element} record"
    if children:
        order += f" followed by its `{children.record_type}` {children.element} records"
    lines = [
        f"One record per line, every line exactly **{fmt.record_length} characters** (not "
        "counting the line end, LF or CRLF), UTF-8. Positions are 1-based and inclusive; "
        f"the record type is in positions {fmt.type_field[0]}-{fmt.type_field[1]}.",
        "",
        f"Order: the `{fmt.header.record_type}` header first and once, {order}, and the "
        f"`{fmt.trailer.record_type}` trailer last and once.",
        "",
        "Padding:",
        "",
        "- text: left-aligned, padded with spaces on the right (`AB` in 5 positions is `AB   `);",
        "- numbers: right-aligned, padded with zeros on the left (`12` in 4 positions is `0012`);",
        "- amounts: in cents, as numbers (12.99 € in 10 positions is `0000001299`);",
        "- dates: `YYYYMMDD` (2 November 2026 is `20261102`).",
        "",
        f"One record is one `{record.record_type}` line (loaded as `{record.table}`, "
        f"identified by `{record.id}`)"
        + (
            f"; its `{children.record_type}` lines are loaded as `{children.table}` and live "
            "and die with it."
            if children
            else "."
        ),
        "",
    ]
    lines += _fw_table(fmt, fmt.header, f"Header, type `{fmt.header.record_type}`")
    lines += _fw_table(fmt, record, f"{record.table}, type `{record.record_type}`")
    if children:
        lines += _fw_table(
            fmt, children, f"{children.table}, type `{children.record_type}`", record.id
        )
    lines += _fw_table(fmt, fmt.trailer, f"Trailer, type `{fmt.trailer.record_type}`")
    return lines


def _csv_structure(fmt: FormatContract) -> list[str]:
    record = fmt.record
    key = ", ".join(f"`{k}`" for k in record.snapshot_key)
    lines = [
        f"File name: `{record.element}` (the date is the day the snapshot was extracted). "
        f"UTF-8, separated by `{fmt.delimiter}`, values holding the separator or a quote in "
        "double quotes, one header row naming the columns below (in any order), then one row "
        "per record, one line each.",
        "",
        f"Loaded as `{record.table}`. A snapshot **replaces the previous one whole**; a row "
        f"is the same row across snapshots when its {key} are, and the hub keeps every "
        "version of it.",
        "",
    ]
    rows = [
        [_code(f.name), f.type, "optional" if f.optional else "required"] for f in record.fields
    ]
    return [*lines, *_table(["Column", "Type", "Value"], rows)]


# ------------------------------------------------------------------------------ rules


def rule_ids(contracts_dir: Path, feed: str) -> list[str]:
    """Every rule id of every version (and document) of a feed's data contract."""
    ids: set[str] = set()
    for spec in sorted((contracts_dir / feed).rglob("contract.yaml")):
        for suite in DataContract.load(spec.parent).suites.values():
            ids |= {exp["meta"]["rule"] for exp in suite["expectations"]}
    return sorted(ids)


def _rules(fmt: FormatContract, contract: DataContract) -> list[str]:
    tables = [fmt.record.table]
    if fmt.record.children:
        tables.append(fmt.record.children.table)
    tables.append("file")
    tables += sorted(t for t in contract.suites if t not in tables)
    lines = [
        "Checked once the file has passed the format checks above. A rule that *rejects the "
        "record* drops that record (and its child records); the rest of the file is loaded "
        "and the acknowledgment says `E`. A rule that *rejects the whole file* loads nothing "
        "(`R`). The acknowledgment lists each failure with its rule id, record, field and "
        "value.",
        "",
    ]
    rows = []
    for table in tables:
        suite = contract.suites.get(table)
        if suite is None:
            continue
        description = suite.get("meta", {}).get("description")
        if description:
            lines.append(f"- `{table}`: {description}")
        for exp in suite["expectations"]:
            meta = exp["meta"]
            effect = (
                "rejects the whole file" if meta["on_failure"] == REJECT_FILE else
                "rejects the record"
            )  # fmt: skip
            rows.append(
                [f"**{meta['rule']}**", table, _code(meta.get("field") or "—"),
                 meta["message"], effect]
            )  # fmt: skip
    return [*lines, "", *_table(["Rule", "Applies to", "Field", "Fails when", "Effect"], rows)]


# ------------------------------------------------------------------------------ examples


def _fse_messages() -> dict[str, list[Message]]:
    """Per FSE v2 document, two messages as a doctor (a dentist, for prior approvals) sends
    them; version 1 takes the care sheets."""
    from edihub.fse_writer import (
        Act,
        CareSheet,
        ExemptionRequest,
        InvalidityRequest,
        PriorApproval,
        WorkStoppage,
    )

    day, later = EXAMPLE_DATE, EXAMPLE_DATE + dt.timedelta(days=7)
    crown = [Act("HBLD036", 1, Decimal("107.50")), Act("HBMD049", 2, Decimal("35.00"))]
    return {
        "care_sheet": [
            CareSheet("S-000001", "P10001", "123456", 0, "AB12CD34", care_date=day,
                      acts=[Act("C", 1, Decimal("30.00")), Act("K", 2, Decimal("12.50"))]),
            CareSheet("S-000002", "P10001", "654321", 0, "EF56GH78", care_date=day,
                      acts=[Act("C", 1, Decimal("30.00"))]),
        ],
        "work_stoppage": [
            WorkStoppage("AT-000001", "P10001", "123456", 0, "AB12CD34", prescribed_on=day,
                         start_date=day, end_date=later, reason_category="illness"),
            WorkStoppage("AT-000002", "P10001", "654321", 0, "EF56GH78", prescribed_on=day,
                         kind="extension", start_date=day - dt.timedelta(days=1),
                         end_date=later, reason_category="work_accident",
                         outings_allowed=False),
        ],
        "exemption_request": [
            ExemptionRequest("ETM-000001", "P10001", "123456", 0, "AB12CD34",
                             requested_on=day, ground="long_term_condition",
                             condition_code="E11.9", exempt_from=day),
            ExemptionRequest("ETM-000002", "P10001", "654321", 0, "EF56GH78",
                             requested_on=day, ground="long_hospital_stay", exempt_from=day,
                             exempt_until=later),
        ],
        "invalidity_request": [
            InvalidityRequest("INV-000001", "P10001", "123456", 0, "AB12CD34",
                              requested_on=day, stopped_work_since=day - dt.timedelta(days=200),
                              incapacity_rate=70, condition_code="M54.5"),
            InvalidityRequest("INV-000002", "P10001", "654321", 0, "EF56GH78",
                              requested_on=day, stopped_work_since=day - dt.timedelta(days=400),
                              incapacity_rate=100, condition_code="G35"),
        ],
        "prior_approval": [
            PriorApproval("DAP-000001", "D20001", "123456", 0, "AB12CD34", requested_on=day,
                          planned_start=later, acts=crown),
            PriorApproval("DAP-000000", "D20001", "654321", 0, "EF56GH78", requested_on=day,
                          status="withdrawn", planned_start=later, acts=crown[:1]),
        ],
    }  # fmt: skip


def _fse_example(version: int, messages: list[Message]) -> tuple[str, Callable[[Path], Path]]:
    from edihub.fse_writer import write_fse_file

    sender = messages[0].practitioner_id

    def write(path: Path) -> Path:
        created = dt.datetime.combine(EXAMPLE_DATE, dt.time(9, 0))
        return write_fse_file(
            path, sender, "000001", messages, created, version=version, root=messages[0].ROOT
        )

    return f"FSE_{sender}_000001.xml", write


def _pharmacy_example(path: Path) -> Path:
    from edihub.pharmacy_writer import Invoice, Line, write_pharmacy_file

    invoices = [
        Invoice("F00000000001", "123456", 0, "P10001", EXAMPLE_DATE,
                [Line("3400930000001", 2, 350), Line("3400930000002", 1, 1299, "30")]),
        Invoice("F00000000002", "654321", 0, "P10001", EXAMPLE_DATE,
                [Line("3400930000003", 1, 845, "100")]),
    ]  # fmt: skip
    return write_pharmacy_file(path, "PH000001", "00000001", invoices, EXAMPLE_DATE)


def _payroll_example(version: int) -> tuple[str, Callable[[Path], Path]]:
    """A household employer's own declaration (v2: it names itself as the employer; the page
    is read by employers, so the example is theirs, not the funds' paper-keying staff's)."""
    from edihub.payroll_writer import SalaryLine, write_payroll_file

    def write(path: Path) -> Path:
        lines = [
            SalaryLine("123456", "ROSSI", "Maria", Decimal("151.67"),
                       gross_salary=Decimal("2305.69")),
            SalaryLine("654321", "BIANCHI", "Luca", Decimal("86.67"),
                       net_salary=Decimal("1200.00")),
        ]  # fmt: skip
        created = dt.datetime.combine(EXAMPLE_DATE, dt.time(9, 0))
        period = EXAMPLE_DATE.strftime("%Y-%m")
        return write_payroll_file(
            path, "EMP001", "000001", period, lines, created, "household", version=version
        )

    return "DSM_EMP001_000001.xml", write


REGISTRY_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "insured": [
        {"registration_number": "123456", "beneficiary_rank": 0, "last_name": "ROSSI",
         "first_name": "Maria", "postal_address": "12 boulevard des Moulins, 98000 MONACO",
         "email": "maria.rossi@example.mc", "teleservice_subscribed_on": dt.date(2016, 3, 1),
         "email_validated": True, "dematerialisation": True, "insurer_id": "MUT001",
         "insurer_member_number": "A00012345", "insurer_consent": True},
        {"registration_number": "123456", "beneficiary_rank": 1, "last_name": "ROSSI",
         "first_name": "Luca", "email_validated": False, "dematerialisation": False,
         "insurer_consent": False},
    ],
    "card": [
        {"registration_number": "123456", "beneficiary_rank": 0, "fse_code": "OLD00001",
         "valid_from": dt.date(2015, 1, 1), "valid_to": dt.date(2019, 12, 31)},
        {"registration_number": "123456", "beneficiary_rank": 0, "fse_code": "AB12CD34",
         "valid_from": dt.date(2020, 1, 1)},
    ],
    "insurer": [
        {"insurer_id": "MUT001", "name": "Mutuelle, Monaco", "status": "active",
         "convention_signed_on": dt.date(2014, 1, 1), "sftp_account": "mut001",
         "export_format": "csv", "export_time": "06:00"},
        {"insurer_id": "MUT002", "name": "Assurance Santé", "status": "paused",
         "sftp_account": "mut002", "export_format": "xml", "export_time": "06:30"},
    ],
    "practitioner": [
        {"practitioner_id": "P10001", "kind": "general_practitioner", "name": "Dr Grimaldi",
         "fse_start_date": dt.date(2015, 6, 1)},
        {"practitioner_id": "P10002", "kind": "specialist", "specialty": "cardiology",
         "name": "Dr Rainier"},
    ],
    "pharmacy": [
        {"pharmacy_id": "PH000001", "name": "Pharmacie du Rocher",
         "teletransmission_start_date": dt.date(2016, 3, 1)},
        {"pharmacy_id": "PH000002", "name": "Pharmacie de la Condamine"},
    ],
    "employer": [
        {"employer_id": "EMP001", "name": "SAM Exemple", "kind": "company", "size": 12,
         "declaration_channel": "electronic", "teleservice_subscribed_on": dt.date(2014, 2, 1)},
        {"employer_id": "EMP002", "name": "M. Foyer", "kind": "household", "size": 1,
         "declaration_channel": "paper"},
    ],
    "sftp_key": [
        {"sftp_account": "mut001", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBFqynkur"
         "QpkJacILtYKLZmCZBA/1WfHclgLOP2yg1Em exports@mut001", "added_on": dt.date(2026, 1, 5)},
        {"sftp_account": "PH000001", "public_key": "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbml"
         "zdHAyNTYAAAAIbmlzdHAyNTYAAABBBMfthzWmTjMcYjULrvqilypmTpubDh3pqLBiOIk61W0LNBsyQLboNjjC+"
         "k+vHgRZxGYTJWRqL8zxmG53p/pyc3U= officine", "added_on": dt.date(2025, 3, 1),
         "expires_on": dt.date(2027, 3, 1)},
    ],
}  # fmt: skip


def _registry_example(document: str) -> tuple[str, Callable[[Path], Path]]:
    from edihub.registry_writer import snapshot_name, write_snapshot

    def write(path: Path) -> Path:
        return write_snapshot(path.parent, document, EXAMPLE_DATE, REGISTRY_EXAMPLES[document])

    return snapshot_name(document, EXAMPLE_DATE), write


# format label (feed/vN[/document]) -> a file name and what writes a small valid file of
# that format to the path given
EXAMPLES: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "fse/v1": _fse_example(1, _fse_messages()["care_sheet"]),
    **{f"fse/v2/{doc}": _fse_example(2, messages) for doc, messages in _fse_messages().items()},
    "pharmacy/v1": ("PH000001_00000001.txt", _pharmacy_example),
    **{f"payroll/v{version}": _payroll_example(version) for version in (1, 2)},
    **{f"registry/v1/{doc}": _registry_example(doc) for doc in REGISTRY_EXAMPLES},
}


def example_text(fmt: FormatContract) -> tuple[str, str] | None:
    """(file name, text) of the example file of this version, written by the hub's writer."""
    entry = EXAMPLES.get(fmt.label)
    if entry is None:
        return None
    name, write = entry
    with tempfile.TemporaryDirectory(prefix="edihub-docs-") as tmp:
        path = write(Path(tmp) / name)
        # The writer must have written this very version, or the page would lie.
        found, _reader = open_reader(path, path.name, [fmt], chunk_size=1000)
        assert found.label == fmt.label
        return name, path.read_text(encoding="utf-8")


def _example(fmt: FormatContract) -> list[str]:
    example = example_text(fmt)
    if example is None:
        return ["No example file for this version yet.", ""]
    name, text = example
    lang = {"xml": "xml", "csv": "csv"}.get(fmt.family, "text")
    padded = (
        f" Every line is padded with spaces to {fmt.record_length} characters."
        if fmt.family == "fixed_width"
        else ""
    )
    return [
        f"A valid file of two records, `{name}`, written by the hub's own test writer "
        f"(dates of {EXAMPLE_DATE.isoformat()}: a real file must have dates within the "
        "allowed window)." + padded,
        "",
        f"```{lang}",
        text.rstrip("\n"),
        "```",
        "",
    ]


# ------------------------------------------------------------------------------ pages


def _sending(feed: str, fmts: list[FormatContract]) -> list[str]:
    inbound = PARTNER_VIEW_INBOUND.format(feed=feed) + "/"
    temp = ", ".join(f"`{s}`" for s in TEMP_SUFFIXES)
    statuses: dict[str, list[str]] = {}
    for status, code in STATUS_CODES.values():
        statuses.setdefault(code, []).append(status)
    lines = [
        "## How to send",
        "",
        f"1. Connect to the funds' SFTP server with your account: you see `{inbound}` and "
        f"`{PARTNER_VIEW_ACKS}/`.",
        f"2. Upload into `{inbound}` under a temporary name ending in `.part` "
        f"(e.g. `{EXAMPLES.get(fmts[0].label, ('FILE',))[0]}.part`), then rename it "
        f"to its final name once complete. Names ending in {temp}, or starting with a dot, "
        "are never read, so a half-uploaded file is never taken.",
        f"3. Final names: UTF-8, at most {MAX_NAME_BYTES} bytes, no `/` or `\\`, no control "
        "characters. One file is one batch: never reuse a batch number.",
        "4. Encoding: **UTF-8 only** (a UTF-8 byte order mark is tolerated); no compression.",
    ]
    if any(f.family == "xml" for f in fmts):
        lines.append(
            "5. XML: no `<!DOCTYPE>`, DTD or entity declaration, ever: such a file is "
            "quarantined unread."
        )
    lines += [
        "",
        "## Acknowledgment",
        "",
        f"For every file, an acknowledgment appears in `{PARTNER_VIEW_ACKS}/` under the name "
        f"`<your file name>.<hub id>.ack.xml` (e.g. `{ack_file_name(1234, 'BATCH.xml')}`), "
        "following [`ack.xsd`](../../formats/acks/v1/ack.xsd) (see the [index](README.md)). "
        "Its `result/@code`:",
        "",
    ]
    lines += _table(
        ["Code", "Status", "What to do"],
        [
            [f"`{code}`", ", ".join(statuses.get(code, [])), todo]
            for code, todo in (
                ("A", "nothing: every record was loaded"),
                ("E", "the file was loaded except the records listed; do **not** resend the "
                 "file, send the corrected records in a new batch"),
                ("R", "nothing was loaded; fix and resend (a duplicate: do not resend)"),
            )
        ],
    )  # fmt: skip
    lines += [
        f"At most {MAX_LISTED_ERRORS} errors are listed; `errors/@total` counts them all.",
        "",
    ]
    return lines


def _refusals(fmt: FormatContract) -> list[str]:
    rows = [
        [f"`{code}`", _REFUSALS[code][0], _refusal_meaning(code, fmt)]
        for code in refusal_codes(fmt.family)
    ]
    return [
        "Any file can be refused as a whole, before or after the rules: the acknowledgment "
        "says `R` and gives the code in `result/@reasonCode`.",
        "",
        *_table(["Code", "Status", "Meaning"], rows),
    ]


def render_feed(formats_dir: Path, contracts_dir: Path, feed: str) -> str:
    """The Markdown page of one feed: every version the hub accepts, newest first."""
    fmts = feed_formats(formats_dir, feed)
    versions = ", ".join(sorted({f"v{f.version}" for f in fmts}, reverse=True))
    lines = [
        f"# Feed `{feed}`",
        "",
        "<!-- Generated by `edihub docs formats` from formats/ and contracts/: "
        "do not edit by hand. -->",
        "",
        f"{FEEDS[feed][0].upper()}{FEEDS[feed][1:]}.",
        "",
        f"Versions accepted: {versions} (side by side; "
        + {
            "xml": "the namespace of the root element says which one a file is",
            "fixed_width": "the format version in the header says which one a file is",
            "csv": "the file name says which document a file is, its header row which version",
        }[fmts[0].family]
        + ").",
        "",
    ]
    lines += _sending(feed, fmts)
    structure = {"xml": _xml_structure, "fixed_width": _fw_structure, "csv": _csv_structure}
    for fmt in fmts:
        contract = DataContract.load(fmt.contract_dir(contracts_dir))
        title = f"Version {fmt.version}" + (f", document `{fmt.document}`" if fmt.document else "")
        lines += [f"## {title}", "", "### Record structure", ""]
        lines += structure[fmt.family](fmt)
        lines += ["### Whole-file refusals", "", *_refusals(fmt)]
        lines += ["### Rules", "", *_rules(fmt, contract)]
        lines += ["### Example", "", *_example(fmt)]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_index(formats_dir: Path) -> str:
    lines = [
        "# Inbound formats",
        "",
        "<!-- Generated by `edihub docs formats` from formats/ and contracts/: "
        "do not edit by hand. -->",
        "",
        "The files partners send to the funds' EDI hub, one page per feed. Each page is "
        "generated from the contracts the hub checks files against, so it cannot disagree "
        "with them.",
        "",
    ]
    rows = []
    for feed, text in FEEDS.items():
        fmts = feed_formats(formats_dir, feed)
        rows.append(
            [f"[`{feed}`]({feed}.md)", text, ", ".join(sorted({f"v{f.version}" for f in fmts})),
             f"`{PARTNER_VIEW_INBOUND.format(feed=feed)}/`"]
        )  # fmt: skip
    lines += _table(["Feed", "What", "Versions", "Send to"], rows)
    lines += [
        "Insurers send nothing: they pull their daily statement exports, described in "
        "[exports.md](exports.md).",
        "",
    ]
    xsd = _Xsd(formats_dir / ACK_SCHEMA)
    lines += [
        "## Acknowledgments",
        "",
        f"Every file gets an acknowledgment in `{PARTNER_VIEW_ACKS}/`, following "
        "[`ack.xsd`](../../formats/acks/v1/ack.xsd) (namespace "
        f"`{xsd.root.get('targetNamespace')}`). `result/@code` is `A` (accepted), `E` "
        "(accepted with errors: do not resend) or `R` (rejected: fix and resend; for a "
        "duplicate, do not resend).",
        "",
    ]
    rows = [
        [_code(n.path), n.type, n.occurs, n.restrictions or "—"]
        for n in xsd.walk(xsd.element("acknowledgment"))
    ]
    lines += _table(["Path", "Type", "Occurs", "Restrictions"], rows)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_exports(formats_dir: Path) -> str:
    """The insurers' page: the daily statement export they pull, from formats/exports/."""
    from edihub.exports.files import VERSION, export_contract
    from edihub.sftp.layout import PARTNER_VIEW_STATEMENTS

    contract = export_contract(formats_dir)
    lines = [
        "# Statement exports to complementary insurers",
        "",
        "<!-- Generated by `edihub docs formats` from formats/exports/: do not edit by hand. -->",
        "",
        f"Each insurer under convention finds in `{PARTNER_VIEW_STATEMENTS}/` one file per day, "
        "at the export time the registry gives it (Monaco local time, the morning after the "
        "statements' day), in the format it chose: CSV (UTF-8, comma-separated, a header row), "
        f"XML ([`statement_export.xsd`](../../formats/exports/v{VERSION}/statement_export.xsd), "
        f"namespace `{contract.namespace}`) or Parquet. Files are named "
        f"`{contract.file_name}` and numbered 1, 2, ... per insurer with no gap: a missing "
        "number is a file not yet taken.",
        "",
        "- A file is written under a temporary name (`.part`) and renamed when complete; its "
        "manifest (`<file>.manifest.json`) is written after it. Take a file once its manifest "
        "is there, and check the manifest's `sha256`, `row_count` and `totals_cents`.",
        "- A file carries the lines of the statements issued up to its day that were copied to "
        "you (the insured named you and consented) and not in an earlier file. An empty file "
        "says there was nothing for you that day.",
        "- A published file never changes. A line priced again later (an exemption that came "
        "late) comes back in a later file as a `reversal` (amounts negated) and a "
        "`replacement`, both naming the statement and line they correct.",
        "- Amounts are in euro cents: `reimbursed_cents + patient_share_cents = billed_cents` "
        "on every line and in the totals.",
        "",
        "## Columns",
        "",
    ]
    rows = [
        [_code(name), col["type"], "optional" if col.get("optional") else "always", col["doc"]]
        for name, col in contract.columns.items()
    ]
    lines += _table(["Column", "Type", "Present", "Meaning"], rows)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_all(
    out_dir: Path, formats_dir: Path | None = None, contracts_dir: Path | None = None
) -> list[Path]:
    """Write ``<feed>.md`` for every feed and ``README.md`` (the index) into ``out_dir``."""
    settings = Settings.from_env()
    formats_dir = formats_dir or settings.formats_dir
    contracts_dir = contracts_dir or settings.contracts_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = {f"{feed}.md": render_feed(formats_dir, contracts_dir, feed) for feed in FEEDS}
    pages["README.md"] = render_index(formats_dir)
    pages["exports.md"] = render_exports(formats_dir)
    written = []
    for name, text in pages.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def write_partner_docs(out_dir: Path) -> list[Path]:
    """What ``edihub docs formats [--out DIR]`` runs: the pages, from the hub's contracts."""
    return render_all(out_dir)
