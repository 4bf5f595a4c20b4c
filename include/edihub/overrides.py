"""Per-partner overrides that cascade over the defaults, as Bots' partner-specific settings do.

An override file holds only what it changes, for a kind of partner or for one partner::

    contracts/overrides/kind/<kind>.yaml       every partner of that kind
    contracts/overrides/partner/<id>.yaml      one partner: its registry id (a sender's SFTP
                                               account, an insurer's insurer_id)

with two sections: ``tolerances`` (the data contracts' numeric settings, ``TOLERANCES``) and
``export`` (an insurer's format options, ``EXPORT_OPTIONS``). A value is the default's, unless
the partner's kind overrides it, unless the partner itself does. A file, section, key or kind
the hub does not know is an error naming the file and the key; so is a partner the registry
does not hold, or a section that does not fit its kind (an insurer sends no file to check).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from edihub.contracts.engine import Lookup


@dataclass(frozen=True)
class ExportOptions:
    """An insurer's own options over the export format (``edihub.exports.files.render``).
    These defaults render every insurer's file as the format alone does."""

    delimiter: str = ","  # CSV only
    decimal_comma: bool = False  # CSV only: 80,00 instead of 80.00
    columns: tuple[str, ...] = ()  # a subset of the format's, in its order; () for all
    file_prefix: str = ""  # before the format's file name, from the file planned next


def _export_columns() -> dict[str, dict[str, Any]]:
    # Imported here: edihub.exports.files imports this module.
    from edihub.exports.files import export_contract

    return export_contract().columns


OVERRIDES = "overrides"  # the folder under the contracts folder
# The settings data contracts take as numbers (Settings.for_contracts). The lists of the funds'
# own accounts there are not a partner's to change.
TOLERANCES = ("care_window_days", "declaration_window_days")
TOLERANCES_SECTION, EXPORT_SECTION = "tolerances", "export"
EXPORT_OPTIONS = tuple(f.name for f in dataclasses.fields(ExportOptions))
CSV_ONLY = ("delimiter", "decimal_comma")
INSURER = "insurer"
DEFAULT = "default"  # the source of a value no override file set
# Where the registry holds each kind of partner: table, id column, and the kinds of its rows
# (by its kind column, or one kind for the whole table).
_REGISTRY: tuple[tuple[str, str, tuple[str, ...] | str], ...] = (
    ("edi.registry_practitioner", "practitioner_id", ("general_practitioner", "specialist",
                                                      "dentist")),
    ("edi.registry_pharmacy", "pharmacy_id", "pharmacy"),
    ("edi.registry_employer", "employer_id", ("company", "household")),
    ("edi.registry_insurer", "insurer_id", INSURER),
)  # fmt: skip
KINDS = tuple(k for *_, kinds in _REGISTRY for k in ((kinds,) if isinstance(kinds, str) else kinds))
# A file-name prefix stays a plain name: never a path on the insurer's server.
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,32}")


class OverrideError(ValueError):
    """An override file the hub cannot apply as written."""


@dataclass(frozen=True)
class Layer:
    """One override file: where it is (relative to the overrides folder) and what it sets."""

    source: str
    sections: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Effective:
    """The settings in force and, for each, where it came from ("default" or a file)."""

    values: dict[str, Any]
    sources: dict[str, str]

    def label(self, key: str) -> str:
        """``key`` as ``file.yaml:key=value``: small, and enough to replay a verdict."""
        return f"{self.sources[key]}:{key}={self.values[key]}"


def defaults(values: dict[str, Any]) -> Effective:
    """``values`` in force as they are: no override applies."""
    return Effective(dict(values), dict.fromkeys(values, DEFAULT))


@dataclass(frozen=True)
class Overrides:
    folder: Path
    kinds: dict[str, Layer] = field(default_factory=dict)
    partners: dict[str, Layer] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.kinds or self.partners)

    def kind_of(self, lookup: Lookup, partner: str) -> str | None:
        """``partner``'s kind in the registry (None: not a partner there), once every partner
        file is checked against the registry: one that names a stranger stops here."""
        kinds = registry_kinds(lookup, sorted({partner, *self.partners}))
        for name, layer in self.partners.items():
            if name not in kinds:
                raise OverrideError(f"{self._where(layer)}: {name} is not in the partner registry")
            _check_sections(layer, kinds[name], self._where(layer))
        return kinds.get(partner)

    def resolve(
        self, section: str, base: dict[str, Any], partner: str, kind: str | None
    ) -> Effective:
        """``base`` (the defaults) overridden by ``kind``'s file, then by ``partner``'s own."""
        values, sources = dict(base), dict.fromkeys(base, DEFAULT)
        for layer in (self.kinds.get(kind or ""), self.partners.get(partner)):
            if layer is None:
                continue
            for key, value in layer.sections.get(section, {}).items():
                values[key], sources[key] = value, layer.source
        return Effective(values, sources)

    def tolerances(self, settings: dict[str, Any], partner: str, lookup: Lookup) -> Effective:
        """The contract settings for files from ``partner`` (``Settings.for_contracts``)."""
        if not self:
            return defaults(settings)
        return self.resolve(TOLERANCES_SECTION, settings, partner, self.kind_of(lookup, partner))

    def export(self, lookup: Lookup, insurer_id: str, fmt: str) -> Effective:
        """The options of ``insurer_id``'s files in format ``fmt``. The CSV options stay the
        defaults for another format; columns the export XSD requires cannot be left out of XML."""
        plain = dataclasses.asdict(ExportOptions())
        if not self:
            return defaults(plain)
        found = self.resolve(EXPORT_SECTION, plain, insurer_id, self.kind_of(lookup, insurer_id))
        if fmt != "csv":
            for key in CSV_ONLY:
                found.values[key], found.sources[key] = plain[key], DEFAULT
        columns = found.values["columns"]
        if fmt == "xml" and columns:
            required = [n for n, c in _export_columns().items() if not c.get("optional")]
            missing = [n for n in required if n not in columns]
            if missing:
                raise OverrideError(
                    f"{self.folder / found.sources['columns']}: columns: {insurer_id} exports "
                    f"XML, whose XSD requires {', '.join(missing)}"
                )
        return found

    def _where(self, layer: Layer) -> Path:
        return self.folder / layer.source


def export_options(values: dict[str, Any]) -> ExportOptions:
    """The options ``values`` hold (an ``Effective``'s, or those a plan recorded): a key left
    out is at its default, so a plan recorded as {} renders as the format alone does."""
    return ExportOptions(**{**values, "columns": tuple(values.get("columns", ()))})


def load(folder: Path) -> Overrides:
    """The override files under ``folder`` (none if it does not exist), each checked for what
    can be checked without the registry: its place and name, its sections, keys and values."""
    if not folder.is_dir():
        return Overrides(folder)
    kinds: dict[str, Layer] = {}
    partners: dict[str, Layer] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        source = path.relative_to(folder).as_posix()
        level, _, name = source.partition("/")
        if path.suffix != ".yaml" or "/" in name or level not in ("kind", "partner"):
            raise OverrideError(
                f"{path}: not an override file: name them kind/<kind>.yaml or partner/<id>.yaml"
            )
        layer = Layer(source, _sections(path))
        if level == "kind":
            if path.stem not in KINDS:
                raise OverrideError(f"{path}: no partner kind {path.stem!r}: one of {KINDS}")
            _check_sections(layer, path.stem, path)
            kinds[path.stem] = layer
        else:
            partners[path.stem] = layer
    return Overrides(folder, kinds, partners)


def registry_kinds(lookup: Lookup, names: list[str]) -> dict[str, str]:
    """The kind of each of ``names`` the registry holds as a partner."""
    found: dict[str, str] = {}
    for table, column, kinds in _REGISTRY:
        if isinstance(kinds, str):
            found |= dict.fromkeys(lookup.present(table, column, names, {}), kinds)
            continue
        for kind in kinds:
            found |= dict.fromkeys(lookup.present(table, column, names, {"kind": kind}), kind)
    return found


def _sections(path: Path) -> dict[str, dict[str, Any]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise OverrideError(
            f"{path}: a mapping of sections: {TOLERANCES_SECTION}, {EXPORT_SECTION}"
        )
    sections: dict[str, dict[str, Any]] = {}
    for section, keys in raw.items():
        known = {TOLERANCES_SECTION: TOLERANCES, EXPORT_SECTION: EXPORT_OPTIONS}.get(section)
        if known is None:
            raise OverrideError(f"{path}: {section}: unknown section, not one of "
                                f"{TOLERANCES_SECTION}, {EXPORT_SECTION}")  # fmt: skip
        if not isinstance(keys, dict):
            raise OverrideError(f"{path}: {section}: a mapping of keys to values")
        for key, value in keys.items():
            if key not in known:
                raise OverrideError(f"{path}: {section}.{key}: unknown key, not one of {known}")
            problem = _problem(key, value)
            if problem:
                raise OverrideError(f"{path}: {section}.{key}: {problem}")
        sections[section] = keys
    return sections


def _problem(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``key``, if anything."""
    if key in TOLERANCES:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "a number of days (0 or more)"
    if key == "delimiter":
        ok = isinstance(value, str) and len(value) == 1 and value not in '"\r\n'
        return None if ok else "one character, not a quote or a line break"
    if key == "decimal_comma":
        return None if isinstance(value, bool) else "true or false"
    if key == "file_prefix":
        ok = isinstance(value, str) and _PREFIX.fullmatch(value)
        return None if ok else "1 to 32 letters, digits, '_' or '-'"
    columns = list(_export_columns())
    if not isinstance(value, list) or not value or not set(value) <= set(columns):
        return f"a list of the export's columns: {', '.join(columns)}"
    if value != [c for c in columns if c in value]:
        return "the columns once each, in the export's order"
    return None


def _check_sections(layer: Layer, kind: str, where: Path) -> None:
    """An insurer's file has export options only; a sender's, tolerances only."""
    wrong = TOLERANCES_SECTION if kind == INSURER else EXPORT_SECTION
    if wrong in layer.sections:
        raise OverrideError(f"{where}: {wrong}: not for a partner of kind {kind}")


def show(found: Overrides, lookup: Lookup, partner: str, settings: dict[str, Any]) -> str:
    """``partner``'s effective settings and where each comes from (``edihub overrides show``);
    ``settings`` are the defaults (``Settings.for_contracts``)."""
    kind = found.kind_of(lookup, partner)
    if kind is None:
        raise OverrideError(f"{partner} is not in the partner registry")
    if kind == INSURER:
        (fmt,) = lookup.present(
            "edi.registry_insurer", "export_format", ["csv", "xml", "parquet"],
            {"insurer_id": partner},
        )  # fmt: skip
        head, effective = f"{partner} ({kind}, exports {fmt})", found.export(lookup, partner, fmt)
        note = "" if fmt == "csv" else f"  ({', '.join(CSV_ONLY)}: CSV only)\n"
    else:
        head, note = f"{partner} ({kind})", ""
        effective = found.resolve(
            TOLERANCES_SECTION, {k: settings[k] for k in TOLERANCES}, partner, kind
        )
    section = EXPORT_SECTION if kind == INSURER else TOLERANCES_SECTION
    lines = [f"{head}: defaults, then {found.folder}/kind/{kind}.yaml, then partner/{partner}.yaml"]
    lines.append(section)
    width = max(len(k) for k in effective.values)
    for key, value in effective.values.items():
        shown = _shown(value)
        lines.append(f"  {key:<{width}}  {shown:<12}  {effective.sources[key]}")
    return "\n".join(lines) + "\n" + note


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(value) if value else "(all)"
    return repr(value) if isinstance(value, str) else str(value)


def show_partner(dsn: str, partner: str) -> str:
    """``edihub overrides show PARTNER``: the partner's kind from the hub's registry."""
    # Imported here: the contract engine, which validation imports, imports this module.
    from edihub.config import Settings
    from edihub.load.db import connect
    from edihub.validation import DatabaseLookup

    settings = Settings.from_env()
    with connect(dsn) as conn:
        found = load(settings.contracts_dir / OVERRIDES)
        return show(found, DatabaseLookup(conn), partner, settings.for_contracts)
