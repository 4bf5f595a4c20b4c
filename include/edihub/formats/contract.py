"""Format contracts as data: ``formats/<feed>/v<N>/format.yaml`` and the files it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIELD_TYPES = frozenset({"string", "int", "date", "timestamp", "cents"})


class ContractConfigError(ValueError):
    """A format contract file is itself wrong: a deployment error, not a partner's."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    path: str
    type: str


@dataclass(frozen=True)
class TableSpec:
    table: str
    element: str
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class RecordSpec(TableSpec):
    id: str = ""
    children: TableSpec | None = None
    # name -> {"sum": child field} or {"count": True}
    aggregates: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FormatContract:
    feed: str
    version: int
    family: str
    folder: Path
    schema: str
    namespace: str
    root: str
    header: TableSpec
    trailer: TableSpec
    record: RecordSpec

    @property
    def schema_path(self) -> Path:
        return self.folder / self.schema

    @property
    def label(self) -> str:
        return f"{self.feed}/v{self.version}"


def _fields(raw: dict[str, Any], where: str) -> tuple[FieldSpec, ...]:
    specs = []
    for name, spec in raw.items():
        if spec.get("type") not in FIELD_TYPES:
            raise ContractConfigError(f"{where}.{name}: unknown type {spec.get('type')!r}")
        specs.append(FieldSpec(name=name, path=spec["path"], type=spec["type"]))
    return tuple(specs)


def _table(raw: dict[str, Any], where: str) -> TableSpec:
    return TableSpec(
        table=raw.get("table", where),
        element=raw["element"],
        fields=_fields(raw["fields"], where),
    )


def load_format(folder: Path) -> FormatContract:
    raw = yaml.safe_load((folder / "format.yaml").read_text(encoding="utf-8"))
    rec = raw["record"]
    children = _table(rec["children"], "children") if rec.get("children") else None
    record = RecordSpec(
        table=rec["table"],
        element=rec["element"],
        fields=_fields(rec["fields"], "record"),
        id=rec["id"],
        children=children,
        aggregates=rec.get("aggregates", {}),
    )
    if record.id not in {f.name for f in record.fields}:
        raise ContractConfigError(f"{folder}: record id {record.id!r} is not a record field")
    contract = FormatContract(
        feed=raw["feed"],
        version=int(raw["version"]),
        family=raw["family"],
        folder=folder,
        schema=raw["schema"],
        namespace=raw["namespace"],
        root=raw["root"],
        header=_table(raw["header"], "header"),
        trailer=_table(raw["trailer"], "trailer"),
        record=record,
    )
    if not contract.schema_path.is_file():
        raise ContractConfigError(f"{folder}: schema {contract.schema} not found")
    return contract


def feed_formats(formats_dir: Path, feed: str) -> list[FormatContract]:
    """Every version of a feed's format, newest first (the hub accepts them side by side)."""
    folders = sorted(
        (p for p in (formats_dir / feed).glob("v*") if (p / "format.yaml").is_file()),
        key=lambda p: int(p.name[1:]),
        reverse=True,
    )
    if not folders:
        raise ContractConfigError(f"no format contract for feed {feed!r} under {formats_dir}")
    return [load_format(p) for p in folders]
