"""Run a feed's data contract (Great Expectations suites stored under contracts/) on parsed data.

GX is called directly (the Airflow GX provider cannot install beside Airflow 3.3) in an
ephemeral context: the suites are version-controlled JSON and a run leaves nothing on disk.
Every row carries ``record_no`` (its ordinal in the file), so each failing rule names the
records it rejects.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import yaml

from edihub import clock
from edihub.formats.xml_engine import Chunk


class Lookup(Protocol):
    """What data contracts may ask of the database (``edihub.validation.DatabaseLookup``).

    ``where`` restricts the rows read: column -> a value, or a list of accepted values.
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


Tally = dict[tuple[str, str, str], list[int]]
"""(table, rule, on_failure) -> [rows checked, rows failed], over a whole file."""

REJECT_RECORD = "reject_record"
REJECT_FILE = "reject_file"
_RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["record_no"],
    "return_unexpected_index_query": False,
}


@dataclass(frozen=True)
class Violation:
    rule: str
    on_failure: str
    table: str
    field: str
    message: str
    record_no: int | None = None
    value: str | None = None


@dataclass
class DataContract:
    folder: Path
    suites: dict[str, dict[str, Any]]
    spec: dict[str, Any]

    @classmethod
    def load(cls, folder: Path) -> DataContract:
        """The contract in ``folder``. A document's folder (the version folder above it has a
        contract.yaml too) adds to what the version's documents share: its suites' rules to
        those of the shared suite of the same name (file.json), derived columns, parameters
        and summary fields by key."""
        spec, suites = _read(folder)
        if (folder.parent / "contract.yaml").is_file():
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
        return cls(folder=folder, suites=suites, spec=spec)


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
        suite = gx.ExpectationSuite(name=name, expectations=expectations, meta=raw.get("meta"))
        # GX drops an expectation it does not know with a mere log line: a misspelt type
        # would be a rule that silently never runs.
        if len(suite.expectations) != len(expectations):
            known = {e.expectation_type for e in suite.expectations}
            lost = sorted({e["type"] for e in expectations} - known)
            raise ValueError(f"{contract.folder}/{table}.json: unknown expectation type(s) {lost}")
        _SUITES[name] = _gx().suites.add(suite)
    return _SUITES[name]


def _show(value: Any, column: str, cents: frozenset[str]) -> str:
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
    """Run the ``table`` suite on ``frame``.

    Rules that need a parameter listed in ``unavailable`` are left out. ``tally`` adds up,
    per (table, rule), the rows checked and the rows that failed.
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
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"contract {contract.folder} rule {meta['rule']} could not run: "
                f"{res.exception_info.get('exception_message')}"
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


@dataclass
class FileCheck:
    """Checks one file's chunks as they stream past, then the file as a whole.

    ``lookup`` is None offline (``edihub validate`` on a partner's machine): the rules that
    need the funds' registry are then reported as not checked instead of failing.
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
    seen: dict[str, set[Any]] = field(default_factory=dict)
    records_found: int = 0
    children_found: int = 0
    tally: Tally = field(default_factory=dict)
    sums: dict[str, int] = field(default_factory=dict)

    @property
    def unchecked_parameters(self) -> frozenset[str]:
        if self.lookup is not None:
            return frozenset()
        return frozenset(
            name
            for name, spec in self.contract.spec["parameters"].items()
            if "lookup" in spec or "newest" in spec
        )

    def _derive(self, table: str, frame: pd.DataFrame) -> pd.DataFrame:
        for name, spec in self.contract.spec.get("derived", {}).get(table, {}).items():
            if "join" in spec:
                # columns, or {literal: text} for a constant part
                parts = [
                    pd.Series(c["literal"], index=frame.index, dtype="string")
                    if isinstance(c, dict)
                    else _as_text(frame[c])
                    for c in spec["join"]
                ]
                joined = parts[0]
                for part in parts[1:]:
                    joined = joined + spec.get("sep", "/") + part
                frame[name] = joined
            elif "present" in spec:
                # 1 where the column has a value, else 0: countable, e.g. in a file summary
                frame[name] = frame[spec["present"]].notna().astype("int64")
            elif "absent" in spec:
                frame[name] = frame[spec["absent"]].isna().astype("int64")
            elif "product" in spec:
                left, right = spec["product"]
                frame[name] = frame[left] * frame[right]
            elif "repeat_of" in spec:
                # First occurrence wins, whichever chunk it was in.
                column = spec["repeat_of"]
                ids = frame[column]
                seen = self.seen.setdefault(column, set())
                # Membership in the set itself: isin(seen) would copy the whole set every
                # chunk, a cost that grows with the square of the file.
                earlier = pd.Series([v in seen for v in ids.tolist()], index=ids.index)
                repeated = ids.duplicated(keep="first") | earlier
                frame[name] = ids.where(repeated, None)
                seen.update(ids.dropna().tolist())
            else:
                raise ValueError(f"{self.contract.folder}: derived column {name} has no rule")
        return frame

    def _parameters(self, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, spec in self.contract.spec["parameters"].items():
            if "lookup" in spec:
                if self.lookup is None:
                    continue
                params[name] = self._lookup(spec["lookup"], frames)
            elif "newest" in spec:
                if self.lookup is None:
                    continue
                found = self.lookup.newest(
                    spec["newest"]["table"], spec["newest"]["column"], self._where(spec["newest"])
                )
                # with no earlier row, a bound every real value passes
                params[name] = pd.Timestamp(found) if found is not None else pd.Timestamp(0)
            elif "setting" in spec:
                params[name] = self.settings[spec["setting"]]
            elif "today" in spec:
                params[name] = pd.Timestamp(self.today)
                if spec.get("as") == "month_end":  # the current month counts as begun
                    params[name] += pd.offsets.MonthEnd(0)
            elif "days_before_today" in spec:
                # a number of days, or the name of a setting (Settings.windows)
                days = spec["days_before_today"]
                days = self.settings[days] if isinstance(days, str) else int(days)
                params[name] = pd.Timestamp(self.today - dt.timedelta(days=days))
            elif "context" in spec:
                params[name] = [self.context[spec["context"]]]
            else:
                raise ValueError(f"{self.contract.folder}: parameter {name} has no known source")
        return params

    def _where(self, spec: dict[str, Any]) -> dict[str, Any]:
        where = dict(spec.get("where", {}))
        if spec.get("same_sender"):
            where["sender"] = self.context["account"]
        return where

    def _lookup(self, spec: dict[str, Any], frames: dict[str, pd.DataFrame]) -> list[Any]:
        """The values of the chunk that the database holds: the parameter of an in-set rule."""
        assert self.lookup is not None
        table, column = spec["of"].split(".")
        frame = frames.get(table)
        if "on_date" not in spec:
            values = frame[column].dropna().unique().tolist() if frame is not None else []
            return sorted(
                self.lookup.present(spec["table"], spec["column"], values, self._where(spec))
            )
        # Valid on a date: the rule compares "<value>@<YYYY-MM-DD>" (a join derived column).
        pairs: list[tuple[Any, dt.date]] = []
        if frame is not None:
            dates = frame[spec["on_date"].split(".")[1]]
            keep = frame[column].notna() & dates.notna()
            pairs = sorted(
                set(zip(frame[column][keep], (d.date() for d in dates[keep]), strict=True))
            )
        found = self.lookup.valid_on(
            spec["table"], spec["column"], pairs, tuple(spec["period"]), self._where(spec)
        )
        return sorted(f"{value}@{day.isoformat()}" for value, day in found)

    def check_chunk(self, chunk: Chunk) -> list[Violation]:
        records = _frame(chunk.records)
        frames = {self.record_table: self._derive(self.record_table, records)}
        if self.child_table and chunk.children is not None:
            frames[self.child_table] = self._derive(self.child_table, _frame(chunk.children))
        params = self._parameters(frames)
        violations = []
        for table, frame in frames.items():
            violations += validate_frame(
                self.contract,
                table,
                frame,
                params,
                self.cents,
                self.unchecked_parameters,
                self.tally,
            )
        # Whole-file figures for the summary.
        self.records_found += len(records)
        if chunk.children is not None:
            self.children_found += chunk.children.num_rows
        for name, spec in self.contract.spec.get("summary", {}).items():
            if "sum" in spec:
                self.sums[name] = self.sums.get(name, 0) + int(records[spec["sum"]].sum())
        return violations

    def rule_results(self) -> list[dict[str, Any]]:
        """Every rule that ran on the file, with the rows it checked and the rows it failed."""
        return [
            {"table": t, "rule": r, "on_failure": o, "checked": c, "failed": f}
            for (t, r, o), (c, f) in sorted(self.tally.items())
        ]

    def check_file(self, header: dict[str, Any], trailer: dict[str, Any]) -> list[Violation]:
        row: dict[str, Any] = {"record_no": 0}
        for name, spec in self.contract.spec.get("summary", {}).items():
            if "header" in spec:
                row[name] = header.get(spec["header"])
                if spec.get("as") == "month_end" and row[name]:
                    # a YYYY-MM period, as its last day: comparable with date parameters
                    row[name] = pd.Timestamp(f"{row[name]}-01") + pd.offsets.MonthEnd(0)
                elif isinstance(row[name], dt.date):
                    row[name] = pd.Timestamp(row[name])
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
        frame = pd.DataFrame([row])
        summary_cents = frozenset(
            n
            for n, s in self.contract.spec.get("summary", {}).items()
            if s.get("trailer") in self.cents or s.get("sum") in self.cents
        )
        violations = validate_frame(
            self.contract,
            "file",
            frame,
            self._parameters({"file": frame}),  # lookups may take a summary field (of: file.x)
            summary_cents,
            self.unchecked_parameters,
            self.tally,
        )
        return [
            Violation(v.rule, v.on_failure, v.table, v.field, v.message, None, v.value)
            for v in violations
        ]


def _as_text(column: pd.Series) -> pd.Series:
    """A column as text for a join: dates as YYYY-MM-DD."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%d").astype("string")
    return column.astype("string")


def _frame(table: pa.Table) -> pd.DataFrame:
    # Dates become datetime64 so that GX compares them with Timestamp parameters.
    return table.to_pandas(date_as_object=False)
