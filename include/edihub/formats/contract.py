"""Format contracts as data: ``formats/<feed>/v<N>/format.yaml`` and the files it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIELD_TYPES = frozenset({"string", "int", "date", "timestamp", "cents", "bool"})
FAMILIES = ("xml", "fixed_width", "csv")


class ContractConfigError(ValueError):
    """A format contract file is itself wrong: a deployment error, not a partner's."""


@dataclass(frozen=True)
class FieldSpec:
    """A field: found by ``path`` in XML, at columns ``start``-``end`` (1-based, inclusive)
    in a fixed-width record, under its own name in a CSV header row, or in a named group of
    the file name's pattern (``from_name``)."""

    name: str
    type: str
    path: str = ""
    start: int = 0
    end: int = 0
    optional: bool = False  # CSV: an empty cell is allowed (XML and fixed width: the layout says)
    from_name: bool = False


@dataclass(frozen=True)
class TableSpec:
    table: str
    element: str
    fields: tuple[FieldSpec, ...]
    record_type: str = ""  # fixed width: the code in the record's type columns
    parent_id: FieldSpec | None = None  # fixed-width children: where they repeat the parent id


@dataclass(frozen=True)
class RecordSpec(TableSpec):
    id: str = ""
    children: TableSpec | None = None
    # name -> {"sum": child field} or {"count": True}
    aggregates: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A snapshot replaces the whole table; its rows' history is kept by these key fields.
    snapshot_key: tuple[str, ...] = ()
    # Columns of the record's table filled from the file's header at load: column -> header
    # field (a salary line's employer is its declaration's).
    from_header: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FormatContract:
    """One kind of file of a feed version. A version holds one kind, or several ``documents``
    (the registry's snapshots, the FSE's messages), each with its own data contract."""

    feed: str
    version: int
    family: str  # "xml", "fixed_width" or "csv": which engine reads the files
    folder: Path
    header: TableSpec
    trailer: TableSpec | None
    record: RecordSpec
    document: str = ""
    # xml
    schema: str = ""
    namespace: str = ""
    root: str = ""
    # fixed_width
    record_length: int = 0
    type_field: tuple[int, int] = (0, 0)
    # csv: the file name's pattern, whose named groups fill the header's from_name fields
    name_pattern: str = ""
    delimiter: str = ","

    @property
    def schema_path(self) -> Path:
        return self.folder / self.schema

    @property
    def label(self) -> str:
        return f"{self.feed}/v{self.version}" + (f"/{self.document}" if self.document else "")

    def contract_dir(self, contracts_dir: Path) -> Path:
        """Where this kind of file's data contract lives."""
        folder = contracts_dir / self.feed / f"v{self.version}"
        return folder / self.document if self.document else folder

    @property
    def tables(self) -> list[TableSpec]:
        """Header, record, children and trailer: every part the format describes."""
        parts = [self.header, self.record, self.record.children, self.trailer]
        return [t for t in parts if t is not None]


def _fields(raw: dict[str, Any], where: str) -> tuple[FieldSpec, ...]:
    specs = []
    for name, spec in raw.items():
        if spec.get("type") not in FIELD_TYPES:
            raise ContractConfigError(f"{where}.{name}: unknown type {spec.get('type')!r}")
        specs.append(
            FieldSpec(
                name=name,
                type=spec["type"],
                path=spec.get("path", ""),
                start=int(spec.get("start", 0)),
                end=int(spec.get("end", 0)),
                optional=bool(spec.get("optional", False)),
                from_name=bool(spec.get("from_name", False)),
            )
        )
    return tuple(specs)


def _table(raw: dict[str, Any], where: str) -> TableSpec:
    parent = raw.get("parent_id")
    return TableSpec(
        table=raw.get("table", where),
        element=raw["element"],
        fields=_fields(raw["fields"], where),
        record_type=str(raw.get("type", "")),
        parent_id=FieldSpec("parent_id", "string", start=parent["start"], end=parent["end"])
        if parent
        else None,
    )


def load_formats(folder: Path) -> list[FormatContract]:
    """The kinds of file ``folder/format.yaml`` describes: itself, or each of its documents
    (whose keys add to, or override, the file's top-level keys)."""
    raw = yaml.safe_load((folder / "format.yaml").read_text(encoding="utf-8"))
    documents = raw.pop("documents", None)
    if documents is None:
        return [_format(folder, raw, "")]
    return [_format(folder, raw | doc, name) for name, doc in documents.items()]


def _format(folder: Path, raw: dict[str, Any], document: str) -> FormatContract:
    rec = raw["record"]
    children = _table(rec["children"], "children") if rec.get("children") else None
    record = RecordSpec(
        table=rec["table"],
        element=rec["element"],
        fields=_fields(rec["fields"], "record"),
        record_type=str(rec.get("type", "")),
        id=rec["id"],
        children=children,
        aggregates=rec.get("aggregates", {}),
        snapshot_key=tuple(rec.get("snapshot", {}).get("key", ())),
        from_header=dict(rec.get("from_header", {})),
    )
    if record.id not in {f.name for f in record.fields}:
        raise ContractConfigError(f"{folder}: record id {record.id!r} is not a record field")
    header_fields = {f.name for f in _table(raw["header"], "header").fields}
    if unknown := set(record.from_header.values()) - header_fields:
        raise ContractConfigError(f"{folder}: from_header names no header field {unknown}")
    type_field = raw.get("type_field", {})
    contract = FormatContract(
        feed=raw["feed"],
        version=int(raw["version"]),
        family=raw["family"],
        folder=folder,
        header=_table(raw["header"], "header"),
        trailer=_table(raw["trailer"], "trailer") if "trailer" in raw else None,
        record=record,
        document=document,
        schema=raw.get("schema", ""),
        namespace=raw.get("namespace", ""),
        root=raw.get("root", ""),
        record_length=int(raw.get("record_length", 0)),
        type_field=(int(type_field.get("start", 0)), int(type_field.get("end", 0))),
        name_pattern=raw.get("name_pattern", ""),
        delimiter=raw.get("delimiter", ","),
    )
    if contract.family not in FAMILIES:
        raise ContractConfigError(f"{folder}: unknown format family {contract.family!r}")
    if contract.family == "xml" and not contract.schema_path.is_file():
        raise ContractConfigError(f"{folder}: schema {contract.schema} not found")
    if contract.family != "csv" and contract.trailer is None:
        raise ContractConfigError(f"{folder}: {contract.label} needs a trailer")
    if contract.family == "csv" and not contract.name_pattern:
        raise ContractConfigError(f"{folder}: {contract.label} needs a name_pattern")
    return contract


def feed_formats(formats_dir: Path, feed: str) -> list[FormatContract]:
    """Every version (and document) of a feed's format, newest version first: the hub
    accepts them side by side."""
    folders = sorted(
        (p for p in (formats_dir / feed).glob("v*") if (p / "format.yaml").is_file()),
        key=lambda p: int(p.name[1:]),
        reverse=True,
    )
    if not folders:
        raise ContractConfigError(f"no format contract for feed {feed!r} under {formats_dir}")
    return [fmt for p in folders for fmt in load_formats(p)]
