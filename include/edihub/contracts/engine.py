"""Run a feed's data contract (Great Expectations suites stored under contracts/) on parsed data.

Two engines run the suites. The hub's is ``compiled``: the suites compiled to pyarrow.compute
(``edihub.contracts.compiled``), on the parser's Arrow chunks as they are. ``gx`` runs them
through Great Expectations itself on pandas, the reference semantics the compiled engine is
held to (tests/unit/test_contract_differential.py). GX is called directly (the Airflow GX
provider cannot install beside Airflow 3.3) in an ephemeral context: the suites are
version-controlled JSON and a run leaves nothing on disk. Derived columns, parameters and the
file summary are computed once, in Arrow, for both. Every row carries ``record_no`` (its
ordinal in the file), so each failing rule names the records it rejects.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from edihub import clock, overrides
from edihub.contracts.compiled import (
    CompiledSuite,
    Tally,
    Violation,
    compile_suite,
)
from edihub.formats.xml_engine import Chunk
from edihub.load import RECEIPT_MONTH

if TYPE_CHECKING:
    import pandas as pd

ENGINES = ("compiled", "gx")


@dataclass(frozen=True)
class AtLeast:
    """In a lookup's ``where``: the column's value is ``value`` or more."""

    value: Any


class Lookup(Protocol):
    """What data contracts may ask of the database (``edihub.validation.DatabaseLookup``).

    ``where`` restricts the rows read: column -> a value, a list of accepted values, or
    :class:`AtLeast` a value.
    """

    def present(
        self, table: str, column: str, values: list[Any], where: dict[str, Any]
    ) -> set[Any]:
        """The ``values`` found in ``table.column``."""

    def valid_on(
        self,
        table: str,
        column: str,
        pairs: list[tuple[Any, dt.date]],
        period: tuple[str, str],
        where: dict[str, Any],
    ) -> set[tuple[Any, dt.date]]:
        """The (value, date) ``pairs`` whose value is in ``table.column`` on a row whose
        period (from-column, to-column; an empty end is open) holds the date."""

    def newest(self, table: str, column: str, where: dict[str, Any]) -> Any:
        """The greatest value of ``table.column``, or None when there is no row."""


REJECT_RECORD = "reject_record"
REJECT_FILE = "reject_file"
_RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["record_no"],
    "return_unexpected_index_query": False,
}


@dataclass
class DataContract:
    folder: Path
    suites: dict[str, dict[str, Any]]
    spec: dict[str, Any]
    compiled: dict[str, CompiledSuite] = field(default_factory=dict)
    # the partners' own tolerances: contracts/overrides, beside the feeds' folders
    overrides: overrides.Overrides = field(
        default_factory=lambda: overrides.Overrides(Path(overrides.OVERRIDES))
    )

    @classmethod
    def load(cls, folder: Path) -> DataContract:
        """The contract in ``folder``. A document's folder (the version folder above it has a
        contract.yaml too) adds to what the version's documents share: its suites' rules to
        those of the shared suite of the same name (file.json), derived columns, parameters
        and summary fields by key."""
        spec, suites = _read(folder)
        document = (folder.parent / "contract.yaml").is_file()
        if document:
            shared_spec, shared_suites = _read(folder.parent)
            for table, suite in suites.items():
                if table in shared_suites:
                    shared = shared_suites[table]
                    suite = suite | {"expectations": shared["expectations"] + suite["expectations"]}
                shared_suites[table] = suite
            suites = shared_suites
            for key, value in spec.items():
                if isinstance(value, dict) and isinstance(shared_spec.get(key), dict):
                    shared_spec[key] = shared_spec[key] | value
                else:
                    shared_spec[key] = value
            spec = shared_spec
        for table, suite in suites.items():
            for exp in suite["expectations"]:
                meta = exp.get("meta", {})
                missing = {"rule", "on_failure", "message"} - meta.keys()
                if missing or meta["on_failure"] not in (REJECT_RECORD, REJECT_FILE):
                    raise ValueError(f"{folder}/{table}.json: {exp['type']} needs meta {missing}")
        # Compiled now: a rule the compiled engine does not know stops the contract here.
        compiled = {
            table: compile_suite(table, suite, f"{folder}/{table}.json")
            for table, suite in suites.items()
        }
        # contracts/<feed>/v<n>[/<document>]: the overrides are read with the contract, so
        # an override file in error stops the check of a file as a contract in error does.
        found = overrides.load(folder.parents[2 if document else 1] / overrides.OVERRIDES)
        return cls(folder=folder, suites=suites, spec=spec, compiled=compiled, overrides=found)

    def rules_of_setting(self, setting: str) -> set[str]:
        """The rules whose parameters come from the setting ``setting``."""
        named = {
            name
            for name, spec in self.spec["parameters"].items()
            if setting in (spec.get("setting"), spec.get("days_before_today"))
        }
        return {
            rule.meta["rule"]
            for suite in self.compiled.values()
            for rule in suite.rules
            if rule.parameters & named
        }


def contract_folders(contracts_dir: Path) -> list[Path]:
    """Every folder a file is checked against: a feed version's, or each document's within
    one (whose version folder then holds only what its documents share)."""
    specs = {p.parent for p in contracts_dir.rglob("contract.yaml")}
    return sorted(f for f in specs if not any(s.parent == f for s in specs))


def _read(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    spec = yaml.safe_load((folder / "contract.yaml").read_text(encoding="utf-8")) or {}
    suites = {
        p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))
    }
    return spec, suites


def _parameters_of(kwargs: dict[str, Any]) -> Iterable[str]:
    for value in kwargs.values():
        if isinstance(value, dict) and "$PARAMETER" in value:
            yield value["$PARAMETER"]


@cache
def _gx() -> Any:
    """One ephemeral GX context per process (importing GX alone takes seconds)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


@cache
def _batch_definition(table: str) -> Any:
    ctx = _gx()
    source = (
        ctx.data_sources.get("edihub")
        if "edihub" in ctx.data_sources.all()
        else ctx.data_sources.add_pandas("edihub")
    )
    return source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")


_SUITES: dict[str, Any] = {}


def _suite(contract: DataContract, table: str, skip: frozenset[str]) -> Any:
    import great_expectations as gx

    raw = contract.suites[table]
    expectations = [e for e in raw["expectations"] if not (set(_parameters_of(e["kwargs"])) & skip)]
    name = f"{raw['name']}:{contract.folder}:{','.join(sorted(skip))}"
    if name not in _SUITES:
        # GX drops an expectation it does not know with a mere log line; DataContract.load
        # has refused those already (the compiled engine knows fewer types than GX).
        suite = gx.ExpectationSuite(name=name, expectations=expectations, meta=raw.get("meta"))
        _SUITES[name] = _gx().suites.add(suite)
    return _SUITES[name]


def _show(value: Any, column: str, cents: frozenset[str]) -> str:
    import pandas as pd

    if column in cents and isinstance(value, numbers.Real) and not pd.isna(value):
        return f"{value / 100:.2f}"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return str(value)


def validate_frame(
    contract: DataContract,
    table: str,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
    cents: frozenset[str] = frozenset(),
    unavailable: frozenset[str] = frozenset(),
    tally: Tally | None = None,
) -> list[Violation]:
    """Run the ``table`` suite on ``frame`` through Great Expectations (the reference engine).

    Rules that need a parameter listed in ``unavailable`` are left out. ``tally`` adds up,
    per (table, rule), the rows checked and the rows that failed. Date parameters are
    ``pd.Timestamp`` here, as pandas compares them with datetime64 columns.
    """
    if table not in contract.suites or frame.empty:
        return []
    suite = _suite(contract, table, unavailable)
    batch = _batch_definition(table).get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, expectation_parameters=parameters, result_format=_RESULT_FORMAT)
    violations: list[Violation] = []
    for res in result.results:
        meta = res.expectation_config.meta
        if tally is not None:
            counts = tally.setdefault((table, meta["rule"], meta["on_failure"]), [0, 0])
            counts[0] += int(res.result.get("element_count", len(frame)))
            counts[1] += int(res.result.get("unexpected_count", 0 if res.success else 1))
        if res.success:
            continue
        raised = _exception(res.exception_info)
        if raised:
            raise RuntimeError(
                f"contract {contract.folder} rule {meta['rule']} could not run: {raised}"
            )
        failing = res.result.get("unexpected_index_list") or [{}]
        for item in failing:
            shown = "; ".join(
                f"{k}={_show(v, k, cents)}" for k, v in item.items() if k != "record_no"
            )
            violations.append(
                Violation(
                    rule=meta["rule"],
                    on_failure=meta["on_failure"],
                    table=table,
                    field=meta.get("field", ""),
                    message=meta["message"],
                    record_no=int(item["record_no"]) if "record_no" in item else None,
                    value=shown or None,
                )
            )
    return violations


def _exception(info: Any) -> str | None:
    """The message of the exception a GX result carries: at its top for an expectation that
    could not be configured, per metric (metric id -> info) for one whose metric failed."""
    if not info:
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info["raised_exception"] else None
    messages = [str(i.get("exception_message")) for i in info.values() if isinstance(i, dict)]
    return "; ".join(messages) or None


def _for_gx(parameters: dict[str, Any]) -> dict[str, Any]:
    """Date parameters as pandas Timestamps: what pandas compares with datetime64 columns."""
    import pandas as pd

    return {k: pd.Timestamp(v) if isinstance(v, dt.date) else v for k, v in parameters.items()}


def _month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


class SeenValues:
    """The distinct values a column had in earlier chunks: exact, and small enough for a
    2 GB file. A Python set took about 90 bytes a value (1.6 GB for a 17.5 M-row snapshot);
    these sorted numpy runs take the values' own bytes. Each new chunk's values form a run,
    merged into the last while that one is no larger (a log-structured set: a value is merged
    about log2(n) times, and each lookup is one binary search per run)."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    @staticmethod
    def keys(values: pa.Array) -> np.ndarray:
        """``values`` as numpy keys: integers as they are, anything else as its UTF-8 text
        (bytes: NUL-free, since no file holding a NUL gets this far)."""
        if pa.types.is_integer(values.type):
            return values.to_numpy(zero_copy_only=False).astype(np.int64)
        text = pc.cast(values, pa.string()).cast(pa.binary()).to_pylist()
        return np.array(text, dtype=np.bytes_) if text else np.array([], dtype="S1")

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            at = np.searchsorted(run, keys)
            inside = at < len(run)
            found[inside] |= run[at[inside]] == keys[inside]
        return found

    def add(self, keys: np.ndarray) -> None:
        """Add ``keys``: distinct, and none of them already in."""
        run = np.sort(keys)
        while self._runs and len(self._runs[-1]) <= len(run):
            # Two sorted runs: the stable sort (timsort) merges them in linear time.
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="stable")
        self._runs.append(run)


@dataclass
class FileCheck:
    """Checks one file's chunks as they stream past, then the file as a whole.

    ``lookup`` is None offline (``edihub validate`` on a partner's machine): the rules that
    need the funds' registry are then reported as not checked instead of failing. ``engine``
    is "compiled" (the hub's) or "gx" (Great Expectations on pandas, the reference).
    """

    contract: DataContract
    record_table: str
    child_table: str | None
    cents: frozenset[str]
    context: dict[str, Any]
    lookup: Lookup | None
    settings: dict[str, Any]  # the settings a contract may name (Settings.for_contracts)
    today: dt.date = field(default_factory=clock.monaco_today)
    # column -> values seen in earlier chunks, for the repeat_of rules
    seen: dict[str, SeenValues] = field(default_factory=dict)
    records_found: int = 0
    children_found: int = 0
    tally: Tally = field(default_factory=dict)
    sums: dict[str, int] = field(default_factory=dict)
    engine: str = "compiled"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown contract engine {self.engine!r}, not one of {ENGINES}")

    @cached_property
    def tolerances(self) -> overrides.Effective:
        """The settings for this file's sender: the defaults, overridden by its kind's and its
        own override files. Offline (no registry, so no kind) the defaults alone."""
        if self.lookup is None:
            return overrides.defaults(self.settings)
        return self.contract.overrides.tolerances(
            self.settings, self.context["account"], self.lookup
        )

    @property
    def unchecked_parameters(self) -> frozenset[str]:
        if self.lookup is not None:
            return frozenset()
        return frozenset(
            name
            for name, spec in self.contract.spec["parameters"].items()
            if "lookup" in spec or "newest" in spec
        )

    @property
    def summary_cents(self) -> frozenset[str]:
        """The file summary's amounts: declared in cents, or sums of cents."""
        return frozenset(
            n
            for n, s in self.contract.spec.get("summary", {}).items()
            if s.get("trailer") in self.cents or s.get("sum") in self.cents
        )

    def _derive(self, table: str, data: pa.Table) -> pa.Table:
        """``data`` with the contract's derived columns for ``table`` added, in order."""
        for name, spec in self.contract.spec.get("derived", {}).get(table, {}).items():
            if "join" in spec:
                # columns, or {literal: text} for a constant part; a null part makes a null
                parts = [
                    pa.scalar(c["literal"], pa.string())
                    if isinstance(c, dict)
                    else _as_text(data[c])
                    for c in spec["join"]
                ]
                column = pc.binary_join_element_wise(*parts, spec.get("sep", "/"))
            elif "present" in spec:
                # 1 where the column has a value, else 0: countable, e.g. in a file summary
                column = pc.is_valid(data[spec["present"]]).cast(pa.int64())
            elif "absent" in spec:
                column = pc.is_null(data[spec["absent"]]).cast(pa.int64())
            elif "product" in spec:
                left, right = spec["product"]
                column = pc.multiply(data[left], data[right])
            elif "repeat_of" in spec:
                column = self._repeats(data[spec["repeat_of"]], spec["repeat_of"])
            else:
                raise ValueError(f"{self.contract.folder}: derived column {name} has no rule")
            if name in data.column_names:
                data = data.set_column(data.column_names.index(name), name, column)
            else:
                data = data.append_column(name, column)
        return data

    def _repeats(self, ids: pa.ChunkedArray, column: str) -> pa.ChunkedArray:
        """The ids seen before (earlier in the chunk or in an earlier chunk), else null: the
        first occurrence wins, whichever chunk it was in."""
        encoded = pc.dictionary_encode(ids.combine_chunks())
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        seen = self.seen.setdefault(column, SeenValues())
        # Only the chunk's distinct values meet the earlier ones.
        distinct = SeenValues.keys(encoded.dictionary)
        before = seen.contains(distinct)
        seen.add(distinct[~before])
        repeated = np.zeros(len(codes), dtype=bool)
        valid = encoded.is_valid().to_numpy(zero_copy_only=False)
        first = np.unique(np.where(valid, codes, -1), return_index=True)[1]
        repeated[valid] = True
        repeated[first] = False  # the first row of each value in the chunk...
        if before.any():  # ...unless an earlier chunk had it
            repeated |= valid & np.isin(codes, np.flatnonzero(before))
        return pa.chunked_array(
            [pc.if_else(pa.array(repeated), ids.combine_chunks(), pa.scalar(None, ids.type))]
        )

    def _parameters(self, tables: dict[str, pa.Table]) -> dict[str, Any]:
        """The contract's parameters for these tables (dates as ``datetime.date``)."""
        params: dict[str, Any] = {}
        for name, spec in self.contract.spec["parameters"].items():
            if "lookup" in spec:
                if self.lookup is None:
                    continue
                params[name] = self._lookup(spec["lookup"], tables)
            elif "newest" in spec:
                if self.lookup is None:
                    continue
                found = self.lookup.newest(
                    spec["newest"]["table"], spec["newest"]["column"], self._where(spec["newest"])
                )
                # with no earlier row, a bound every real value passes
                params[name] = found if found is not None else dt.date(1970, 1, 1)
            elif "setting" in spec:
                params[name] = self.tolerances.values[spec["setting"]]
            elif "today" in spec:
                params[name] = self.today
                if spec.get("as") == "month_end":  # the current month counts as begun
                    params[name] = _month_end(self.today)
            elif "days_before_today" in spec:
                params[name] = self._days_before_today(spec["days_before_today"])
            elif "context" in spec:
                params[name] = [self.context[spec["context"]]]
            else:
                raise ValueError(f"{self.contract.folder}: parameter {name} has no known source")
        return params

    def _days_before_today(self, days: int | str) -> dt.date:
        """``days`` (a number, or the name of a setting: Settings.windows) before today."""
        days = self.tolerances.values[days] if isinstance(days, str) else int(days)
        return self.today - dt.timedelta(days=days)

    def _where(self, spec: dict[str, Any]) -> dict[str, Any]:
        where = dict(spec.get("where", {}))
        if spec.get("same_sender"):
            where["sender"] = self.context["account"]
        if "received_within" in spec:
            # Only the months of the message store received since then are read: a lookup
            # over all of them costs one index probe per month and value.
            since = self._days_before_today(spec["received_within"])
            where[RECEIPT_MONTH] = AtLeast(since.replace(day=1))
        return where

    def _lookup(self, spec: dict[str, Any], tables: dict[str, pa.Table]) -> list[Any]:
        """The values of the chunk that the database holds: the parameter of an in-set rule."""
        assert self.lookup is not None
        table, column = spec["of"].split(".")
        data = tables.get(table)
        if "on_date" not in spec:
            values = pc.unique(data[column].drop_null()).to_pylist() if data is not None else []
            return sorted(
                self.lookup.present(spec["table"], spec["column"], values, self._where(spec))
            )
        # Valid on a date: the rule compares "<value>@<YYYY-MM-DD>" (a join derived column).
        pairs: list[tuple[Any, dt.date]] = []
        if data is not None:
            both = data.select([column, spec["on_date"].split(".")[1]]).drop_null()
            pairs = sorted(set(zip(*(c.to_pylist() for c in both.columns), strict=True)))
        found = self.lookup.valid_on(
            spec["table"], spec["column"], pairs, tuple(spec["period"]), self._where(spec)
        )
        return sorted(f"{value}@{day.isoformat()}" for value, day in found)

    def _validate(
        self,
        table: str,
        data: pa.Table,
        params: dict[str, Any],
        cents: frozenset[str],
    ) -> list[Violation]:
        unavailable = self.unchecked_parameters
        if self.engine == "gx":
            return validate_frame(
                self.contract, table, _frame(data), _for_gx(params), cents, unavailable, self.tally
            )
        if table not in self.contract.compiled:
            return []
        return self.contract.compiled[table].validate(data, params, cents, unavailable, self.tally)

    def check_chunk(self, chunk: Chunk) -> list[Violation]:
        records = self._derive(self.record_table, chunk.records)
        tables = {self.record_table: records}
        if self.child_table and chunk.children is not None:
            tables[self.child_table] = self._derive(self.child_table, chunk.children)
        params = self._parameters(tables)
        violations = []
        for table, data in tables.items():
            violations += self._validate(table, data, params, self.cents)
        # Whole-file figures for the summary.
        self.records_found += records.num_rows
        if chunk.children is not None:
            self.children_found += chunk.children.num_rows
        for name, spec in self.contract.spec.get("summary", {}).items():
            if "sum" in spec:
                total = pc.sum(records[spec["sum"]], min_count=0).as_py()
                self.sums[name] = self.sums.get(name, 0) + int(total)
        return violations

    def rule_results(self) -> list[dict[str, Any]]:
        """Every rule that ran on the file, with the rows it checked and the rows it failed;
        then each override that changed a setting of this contract's rules (table
        "override", rule "file.yaml:key=value"), with those rules' figures added up."""
        results = [
            {"table": t, "rule": r, "on_failure": o, "checked": c, "failed": f}
            for (t, r, o), (c, f) in sorted(self.tally.items())
        ]
        for key, source in sorted(self.tolerances.sources.items()):
            rules = self.contract.rules_of_setting(key)
            if source == overrides.DEFAULT or not rules:
                continue
            mine = [r for r in results if r["rule"] in rules]
            results.append(
                {
                    "table": "override",
                    "rule": self.tolerances.label(key),
                    "on_failure": REJECT_FILE
                    if any(r["on_failure"] == REJECT_FILE for r in mine)
                    else REJECT_RECORD,
                    "checked": sum(r["checked"] for r in mine),
                    "failed": sum(r["failed"] for r in mine),
                }
            )
        return results

    def check_file(self, header: dict[str, Any], trailer: dict[str, Any]) -> list[Violation]:
        row: dict[str, Any] = {"record_no": 0}
        for name, spec in self.contract.spec.get("summary", {}).items():
            if "header" in spec:
                row[name] = header.get(spec["header"])
                if spec.get("as") == "month_end" and row[name]:
                    # a YYYY-MM period, as its last day: comparable with date parameters
                    row[name] = _month_end(dt.date.fromisoformat(f"{row[name]}-01"))
            elif "trailer" in spec:
                row[name] = trailer.get(spec["trailer"])
            elif "context" in spec:
                row[name] = self.context[spec["context"]]
            elif "count" in spec:
                row[name] = (
                    self.children_found if spec["count"] == "children" else (self.records_found)
                )
            elif "sum" in spec:
                row[name] = self.sums.get(name, 0)
        summary = pa.Table.from_pylist([row])
        violations = self._validate(
            "file",
            summary,
            self._parameters({"file": summary}),  # lookups may take a summary field (of: file.x)
            self.summary_cents,
        )
        return [
            Violation(v.rule, v.on_failure, v.table, v.field, v.message, None, v.value)
            for v in violations
        ]


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as text for a join: dates as YYYY-MM-DD, booleans as True/False (as pandas
    wrote them), numbers in their integer form."""
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, "%Y-%m-%d")
    if pa.types.is_boolean(column.type):
        return pc.if_else(column, "True", "False")
    return column.cast(pa.string())


def _frame(table: pa.Table) -> pd.DataFrame:
    # Dates become datetime64 so that GX compares them with Timestamp parameters.
    return table.to_pandas(date_as_object=False)
