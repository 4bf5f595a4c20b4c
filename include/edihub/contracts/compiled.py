"""The data contracts' Great Expectations suites, compiled to ``pyarrow.compute``.

This is the engine the hub runs: each expectation becomes a function of a chunk's Arrow table
giving the rows it checks and the rows it fails, with the semantics Great Expectations 1.x has on
pandas (``engine.validate_frame``, the reference): the same rules in the same order, the same
counts (GX's ``element_count`` and ``unexpected_count``) and the values shown in errors as
pandas holds them. ``tests/unit/test_contract_differential.py`` holds the two engines to that on
every suite under contracts/.

An expectation type, kwarg or row condition this module does not know is refused when the suite
is compiled (at contract load), never skipped. A column type a rule was not written for (a date
compared with a number, say) is refused when the rule first meets it: GX would either fail there
too or give an answer this engine does not copy.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

Tally = dict[tuple[str, str, str], list[int]]
"""(table, rule, on_failure) -> [rows checked, rows failed], over a whole file."""

Params = dict[str, Any]
Column = pa.ChunkedArray | pa.Array
# What a compiled expectation gives on a table: rows checked, and the failing rows as a
# boolean mask without nulls.
Outcome = tuple[int, Column]


@dataclass(frozen=True)
class Violation:
    rule: str
    on_failure: str
    table: str
    field: str
    message: str
    record_no: int | None = None
    value: str | None = None


class UnsupportedRule(ValueError):
    """A rule, or a column type it meets, whose GX semantics this engine does not reproduce."""


# -- what pandas compares with what

NUMBER, TEXT, BOOL, DATE, TIMESTAMP, NULL = "number", "text", "bool", "date", "timestamp", "null"


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_null(dtype):
        return NULL
    if pa.types.is_boolean(dtype):
        return BOOL
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return NUMBER
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return TEXT
    if pa.types.is_date(dtype):
        return DATE
    if pa.types.is_timestamp(dtype):
        return TIMESTAMP
    raise UnsupportedRule(f"column type {dtype}")


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    if isinstance(value, dt.datetime):
        return TIMESTAMP
    if isinstance(value, dt.date):
        return DATE
    raise UnsupportedRule(f"value {value!r} ({type(value).__name__})")


def _constant(n: int, value: bool) -> pa.Array:
    return pa.repeat(pa.scalar(value), n) if n else pa.array([], pa.bool_())


def _members(column: Column, values: Iterable[Any]) -> Column:
    """pandas ``isin``: the rows whose value is among ``values`` (a null never is)."""
    kind = _kind(column.type)
    wanted = [v for v in values if v is not None]
    if kind == NULL:
        return _constant(len(column), False)
    kinds = {_value_kind(v) for v in wanted}
    if kinds - {kind} and (kind in (BOOL, DATE, TIMESTAMP) or kinds & {BOOL, DATE, TIMESTAMP}):
        # pandas matches True with 1 and a date with its text: not copied
        raise UnsupportedRule(f"{sorted(kinds)} values in a set for a {column.type} column")
    if pa.types.is_integer(column.type):
        # 1.0 is 1 to pandas; 1.5 is nothing an integer column holds
        wanted = [
            int(v)
            for v in wanted
            if _value_kind(v) == NUMBER and (isinstance(v, int) or float(v).is_integer())
        ]
    else:
        wanted = [v for v in wanted if _value_kind(v) == kind]
    value_set = pa.array(wanted, column.type)
    return pc.fill_null(pc.is_in(column, value_set=value_set), False)


def _scalar(value: Any, column: Column) -> pa.Scalar | None:
    """``value`` as a scalar to compare with ``column`` as pandas would, or None when pandas
    finds them never equal (text against a number, anything against a column of nulls)."""
    kind, other = _kind(column.type), _value_kind(value)
    if kind == NULL:
        return None
    if kind != other:
        if {kind, other} & {BOOL, DATE, TIMESTAMP}:
            raise UnsupportedRule(f"{value!r} compared with a {column.type} column")
        return None
    if kind == TIMESTAMP and (value.tzinfo is None) != (column.type.tz is None):
        raise UnsupportedRule(f"{value!r} compared with a {column.type} column")
    return pa.scalar(value)


_ORDER: dict[str, Callable[..., Column]] = {
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


def _compare(column: Column, operator: str, value: Any) -> Column:
    """``column <operator> value`` as ``DataFrame.query`` has it: a null is unequal to
    everything (so ``!=`` holds on it) and fails every order."""
    if operator in ("IN", "NOT_IN"):
        member = _members(column, value)
        return member if operator == "IN" else pc.invert(member)
    scalar = _scalar(value, column)
    if scalar is None:
        if operator in _ORDER:
            raise UnsupportedRule(f"{value!r} ordered against a {column.type} column")
        return _constant(len(column), operator == "!=")
    if operator == "==":
        return pc.fill_null(pc.equal(column, scalar), False)
    if operator == "!=":
        return pc.fill_null(pc.not_equal(column, scalar), True)
    return pc.fill_null(_ORDER[operator](column, scalar), False)


def _pair_compare(a: Column, b: Column, operator: str) -> Column:
    """Two columns compared row by row as pandas compares two Series: false where either is
    null, never equal across kinds (text and numbers), refused where pandas would raise."""
    ka, kb = _kind(a.type), _kind(b.type)
    if NULL in (ka, kb):
        return _constant(len(a), False)
    if ka != kb:
        if operator in _ORDER or {ka, kb} & {BOOL, DATE, TIMESTAMP}:
            raise UnsupportedRule(f"{a.type} compared with {b.type}")
        return _constant(len(a), False)
    if operator in _ORDER and ka == BOOL:
        raise UnsupportedRule("booleans ordered")
    if ka == TIMESTAMP and (a.type.tz is None) != (b.type.tz is None):
        raise UnsupportedRule(f"{a.type} compared with {b.type}")
    fn = pc.equal if operator == "==" else _ORDER[operator]
    return pc.fill_null(fn(a, b), False)


# -- regular expressions: Python's re.search, as pandas' str.contains runs it

_PLAIN = r"^[\x20-\x7e]*$"  # printable ASCII: where RE2 and Python's re agree (see _re2)
_SAFE_ESCAPES = set("AbBdDsSwWntrfv\\.^$|?*+()[]{}-/ :@#'\"<>=!,&~%`_;")


def _re2(pattern: str) -> str | None:
    """``pattern`` for RE2 (pyarrow's regex engine) when it means there what Python's ``re``
    means on printable-ASCII text, else None.

    On such text the two differ only in syntax: Python's end of string ``\\Z`` is RE2's
    ``\\z``; lookarounds, backreferences, possessive or ``{,n}`` quantifiers and POSIX classes
    have no safe translation. ``$`` (Python's also matches before a final newline) and the
    Unicode reach of ``\\s``, ``\\d``, ``\\w`` and of case folding only show on other text,
    which goes to Python's ``re``."""
    if not pattern.isascii() or "[:" in pattern or "(?" in pattern.replace("(?:", ""):
        return None
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped == "Z":
                out.append(r"\z")
            elif escaped == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", pattern[i + 2 : i + 4]):
                out.append(pattern[i : i + 4])
                i += 2
            elif escaped in _SAFE_ESCAPES and escaped:
                out.append(char + escaped)
            else:
                return None
            i += 2
            continue
        if char == "{":
            quantifier = re.match(r"\{[0-9]+(,[0-9]*)?\}", pattern[i:])
            if quantifier is None:
                return None
            out.append(quantifier.group())
            i += len(quantifier.group())
            if pattern[i : i + 1] == "+":  # possessive
                return None
            continue
        if char in "*+?" and pattern[i + 1 : i + 2] == "+":
            return None
        out.append(char)
        i += 1
    translated = "".join(out)
    try:
        pc.match_substring_regex(pa.array([""]), translated)
    except pa.ArrowInvalid:
        return None
    return translated


def _search(column: Column, pattern: re.Pattern[str], re2: str | None) -> Column:
    """Rows whose value ``pattern.search`` finds (nulls: false). RE2 takes the printable
    ASCII values when the pattern translates; Python's ``re`` takes the others."""
    if re2 is None:
        found = [v is not None and pattern.search(v) is not None for v in column.to_pylist()]
        return pa.array(found, pa.bool_())
    fast = pc.fill_null(pc.match_substring_regex(column, re2), False)
    other = pc.fill_null(pc.invert(pc.match_substring_regex(column, _PLAIN)), False)
    rows = pc.indices_nonzero(other).to_pylist()
    if not rows:
        return fast
    values = column.take(rows).to_pylist()
    flags = [False] * len(column)
    for row in pc.indices_nonzero(fast).to_pylist():
        flags[row] = True
    for row, value in zip(rows, values, strict=True):
        flags[row] = pattern.search(value) is not None
    return pa.array(flags, pa.bool_())


# -- row conditions (GX's Condition objects, as their JSON)

Condition = Callable[[pa.Table], Column]

_OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "IN", "NOT_IN")
_MAX_CONDITIONS = 100  # GX's own limit


def _keys(raw: dict[str, Any], required: set[str], optional: set[str], where: str) -> None:
    missing, unknown = required - raw.keys(), raw.keys() - required - optional
    if missing or unknown:
        raise UnsupportedRule(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")


def _condition(raw: Any, where: str, inside: str = "") -> tuple[Condition, int]:
    """A row condition and the number of its comparisons. GX's rules on nesting hold: no OR
    inside an AND, no OR inside an OR (directly or through an AND)."""
    if not isinstance(raw, dict):
        raise UnsupportedRule(f"{where}: row_condition {raw!r} (only GX Condition objects)")
    kind = raw.get("type")
    if kind == "comparison":
        _keys(raw, {"type", "column", "operator", "parameter"}, set(), where)
        _keys(raw["column"], {"name"}, set(), where)
        name, operator, value = raw["column"]["name"], raw["operator"], raw["parameter"]
        if operator not in _OPERATORS:
            raise UnsupportedRule(f"{where}: row_condition operator {operator!r}")
        if operator in ("IN", "NOT_IN"):
            if not isinstance(value, list) or len({_value_kind(v) for v in value}) > 1:
                raise UnsupportedRule(f"{where}: {operator} needs a list of one kind of value")
        elif value is None or isinstance(value, list | dict):
            raise UnsupportedRule(f"{where}: row_condition parameter {value!r}")
        else:
            _value_kind(value)  # a kind of value pandas compares as this engine does
        return (lambda t: _compare(t[name], operator, value)), 1
    if kind == "nullity":
        _keys(raw, {"type", "column", "is_null"}, set(), where)
        _keys(raw["column"], {"name"}, set(), where)
        name, is_null = raw["column"]["name"], bool(raw["is_null"])
        return (lambda t: pc.is_null(t[name]) if is_null else pc.is_valid(t[name])), 1
    if kind in ("and", "or"):
        _keys(raw, {"type", "conditions"}, set(), where)
        if kind == "or" and inside:
            raise UnsupportedRule(f"{where}: an OR inside an {inside.upper()} (GX refuses it)")
        parts = [_condition(c, where, inside or kind) for c in raw["conditions"]]
        if not parts:
            raise UnsupportedRule(f"{where}: an empty {kind.upper()}")
        combine = pc.and_ if kind == "and" else pc.or_
        conditions = [c for c, _ in parts]
        return (lambda t: reduce(combine, (c(t) for c in conditions))), sum(n for _, n in parts)
    raise UnsupportedRule(f"{where}: row_condition type {kind!r}")


# -- expectations


@dataclass(frozen=True)
class Rule:
    """One compiled expectation."""

    type: str
    meta: dict[str, Any]
    group: str | None  # its ``column``: GX evaluates a suite's rules grouped by column
    shown: tuple[str, ...]  # the columns an error shows, in GX's order
    parameters: frozenset[str]
    evaluate: Callable[[pa.Table, Params], Outcome]


def _resolve(value: Any, params: Params) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return params[value["$PARAMETER"]]
    return value


def _is_parameter(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$PARAMETER"}


def _domain(condition: Condition | None, table: pa.Table) -> Column:
    return condition(table) if condition else _constant(table.num_rows, True)


def _count(mask: Column) -> int:
    return int(pc.sum(mask, min_count=0).as_py())


Test = Callable[[Column, Params], Column]  # the rows that pass, on a column's values


def _column_rule(
    column: str, test: Test | None, nulls_fail: bool, condition: Condition | None
) -> Callable[[pa.Table, Params], Outcome]:
    """A column map expectation. With a ``test``, nulls are never checked (GX's
    filter_column_isnull); without one, the rule fails the null rows (``nulls_fail``) or the
    others (expect_column_values_to_be_null)."""

    def evaluate(table: pa.Table, params: Params) -> Outcome:
        domain = _domain(condition, table)
        values = table[column]
        if test is not None:
            failing = pc.and_(pc.is_valid(values), pc.invert(test(values, params)))
        else:
            failing = pc.is_null(values) if nulls_fail else pc.is_valid(values)
        return _count(domain), pc.and_(domain, failing)

    return evaluate


def _in_set(kwargs: dict[str, Any], negate: bool) -> Test:
    def test(values: Column, params: Params) -> Column:
        value_set = _resolve(kwargs["value_set"], params)
        if value_set is None:  # GX: vacuously true
            return _constant(len(values), True)
        member = _members(values, value_set)
        return pc.invert(member) if negate else member

    return test


def _bounds(kwargs: dict[str, Any], params: Params) -> tuple[Any, Any, bool, bool]:
    low, high = _resolve(kwargs.get("min_value"), params), _resolve(kwargs.get("max_value"), params)
    if low is None and high is None:
        raise UnsupportedRule("min_value and max_value cannot both be None")
    if low is not None and high is not None:
        if _value_kind(low) != _value_kind(high):
            raise UnsupportedRule(f"bounds {low!r} and {high!r}")
        if low > high:
            raise UnsupportedRule("min_value cannot be greater than max_value")
    return low, high, bool(kwargs.get("strict_min")), bool(kwargs.get("strict_max"))


def _within(values: Column, low: Any, high: Any, strict_min: bool, strict_max: bool) -> Column:
    passes = _constant(len(values), True)
    for bound, strict, above in ((low, strict_min, True), (high, strict_max, False)):
        if bound is None:
            continue
        scalar = _scalar(bound, values)
        if scalar is None:
            raise UnsupportedRule(f"{bound!r} as a bound of a {values.type} column")
        op = (">" if strict else ">=") if above else ("<" if strict else "<=")
        passes = pc.and_(passes, pc.fill_null(_ORDER[op](values, scalar), False))
    return passes


def _between(kwargs: dict[str, Any]) -> Test:
    def test(values: Column, params: Params) -> Column:
        bounds = _bounds(kwargs, params)
        if _kind(values.type) in (BOOL, TIMESTAMP):
            # pandas orders booleans among numbers, and refuses a naive bound on a zoned time
            raise UnsupportedRule(f"a between rule on a {values.type} column")
        return _within(values, *bounds)

    return test


def _lengths(kwargs: dict[str, Any]) -> Test:
    def test(values: Column, params: Params) -> Column:
        bounds = _bounds(kwargs, params)
        if _kind(values.type) != TEXT:
            raise UnsupportedRule(f"value lengths of a {values.type} column (pandas: its text)")
        return _within(pc.utf8_length(values), *bounds)

    return test


def _regex(kwargs: dict[str, Any], where: str) -> Test:
    if not isinstance(kwargs["regex"], str):
        raise UnsupportedRule(f"{where}: regex must be a string")
    try:
        pattern = re.compile(kwargs["regex"])
    except re.error as error:
        raise UnsupportedRule(f"{where}: regex {kwargs['regex']!r}: {error}") from error
    re2 = _re2(kwargs["regex"])

    def test(values: Column, params: Params) -> Column:
        if _kind(values.type) != TEXT:
            raise UnsupportedRule(f"a regex on a {values.type} column (pandas: its text)")
        return _search(values, pattern, re2)

    return test


def _skipping_nulls(test: Test) -> Test:
    """A column of nulls alone (a summary field with no value) reaches no test."""

    def guarded(values: Column, params: Params) -> Column:
        if _kind(values.type) == NULL:
            return _constant(len(values), True)
        return test(values, params)

    return guarded


def _ignored(valid: list[Column], ignore: str) -> Column | None:
    """The rows ``ignore_row_if`` keeps, or None for all of them."""
    if ignore in ("both_values_are_missing", "all_values_are_missing"):
        return reduce(pc.or_, valid)
    if ignore in ("either_value_is_missing", "any_value_is_missing"):
        return reduce(pc.and_, valid)
    return None


def _pair_rule(
    column_a: str, column_b: str, operator: str, ignore: str, condition: Condition | None
) -> Callable[[pa.Table, Params], Outcome]:
    def evaluate(table: pa.Table, params: Params) -> Outcome:
        domain = _domain(condition, table)
        a, b = table[column_a], table[column_b]
        kept = _ignored([pc.is_valid(a), pc.is_valid(b)], ignore)
        failing = pc.invert(_pair_compare(a, b, operator))
        return _count(domain), pc.and_(domain if kept is None else pc.and_(domain, kept), failing)

    return evaluate


def _sum_rule(
    columns: list[str], total: Any, ignore: str, condition: Condition | None
) -> Callable[[pa.Table, Params], Outcome]:
    def evaluate(table: pa.Table, params: Params) -> Outcome:
        domain = _domain(condition, table)
        values = [table[c] for c in columns]
        if any(_kind(v.type) not in (NUMBER, NULL) for v in values):
            raise UnsupportedRule(f"a sum of {[str(v.type) for v in values]} columns")
        kept = _ignored([pc.is_valid(v) for v in values], ignore)
        # pandas adds in float64 once a column holds a null (its int64 is float64 then)
        floats = any(v.null_count or not pa.types.is_integer(v.type) for v in values)
        summed = reduce(
            pc.add, (v.cast(pa.float64() if floats else pa.int64(), safe=False) for v in values)
        )
        target = _resolve(total, params)
        if _value_kind(target) != NUMBER:
            raise UnsupportedRule(f"sum_total {target!r}")
        equal = pc.fill_null(pc.equal(summed, pa.scalar(float(target))), False)
        return _count(domain), pc.and_(
            domain if kept is None else pc.and_(domain, kept), pc.invert(equal)
        )

    return evaluate


_BOUNDS = {"min_value", "max_value", "strict_min", "strict_max"}
# type -> (required kwargs, optional kwargs), besides the columns and row_condition
_KWARGS: dict[str, tuple[set[str], set[str]]] = {
    "expect_column_values_to_be_in_set": ({"value_set"}, set()),
    "expect_column_values_to_not_be_in_set": ({"value_set"}, set()),
    "expect_column_values_to_be_between": (set(), _BOUNDS),
    "expect_column_value_lengths_to_be_between": (set(), _BOUNDS),
    "expect_column_values_to_match_regex": ({"regex"}, set()),
    "expect_column_values_to_be_null": (set(), set()),
    "expect_column_values_to_not_be_null": (set(), set()),
    "expect_column_pair_values_to_be_equal": (set(), {"ignore_row_if"}),
    "expect_column_pair_values_a_to_be_greater_than_b": (set(), {"ignore_row_if", "or_equal"}),
    "expect_multicolumn_sum_to_equal": ({"sum_total"}, {"ignore_row_if"}),
}
_PARAMETER_KWARGS = {"value_set", "min_value", "max_value", "sum_total"}
_IGNORE = {
    "pair": ("both_values_are_missing", "either_value_is_missing", "neither"),
    "multi": ("all_values_are_missing", "any_value_is_missing", "never"),
}


def _columns_of(kind: str) -> set[str]:
    if "_pair_" in kind:
        return {"column_A", "column_B"}
    if "multicolumn" in kind:
        return {"column_list"}
    return {"column"}


def compile_rule(expectation: dict[str, Any], where: str) -> Rule:
    """One expectation of a suite, or UnsupportedRule naming what it does not know."""
    kind, kwargs = expectation["type"], expectation["kwargs"]
    if kind not in _KWARGS:
        raise UnsupportedRule(f"{where}: unknown expectation type(s) [{kind!r}]")
    where = f"{where} {expectation.get('meta', {}).get('rule', '')} ({kind})"
    unknown = expectation.keys() - {"type", "kwargs", "meta", "id", "notes"}
    if unknown:
        raise UnsupportedRule(f"{where}: unknown key(s) {sorted(unknown)}")
    required, optional = _KWARGS[kind]
    _keys(kwargs, required | _columns_of(kind), optional | {"row_condition"}, f"{where} kwargs")
    for name, value in kwargs.items():
        parameter_ok = _is_parameter(value) and name in _PARAMETER_KWARGS
        if name != "row_condition" and isinstance(value, dict) and not parameter_ok:
            raise UnsupportedRule(f"{where}: {name} {value!r}")
    for name in ("strict_min", "strict_max", "or_equal"):
        if kwargs.get(name) not in (None, True, False):
            raise UnsupportedRule(f"{where}: {name} {kwargs[name]!r}")
    condition: Condition | None = None
    if "row_condition" in kwargs:
        condition, count = _condition(kwargs["row_condition"], where)
        if count > _MAX_CONDITIONS:
            raise UnsupportedRule(f"{where}: more than {_MAX_CONDITIONS} conditions")
    parameters = frozenset(v["$PARAMETER"] for v in kwargs.values() if _is_parameter(v))
    meta = expectation["meta"]
    if _columns_of(kind) == {"column"}:
        column = kwargs["column"]
        if kind.endswith("_between") and not parameters:
            _bounds(kwargs, {})  # literal bounds: refused now, not at the first chunk
        test: Test | None = None
        if kind.endswith("_in_set"):
            test = _in_set(kwargs, negate="_not_" in kind)
        elif kind == "expect_column_values_to_be_between":
            test = _between(kwargs)
        elif kind == "expect_column_value_lengths_to_be_between":
            test = _lengths(kwargs)
        elif kind == "expect_column_values_to_match_regex":
            test = _regex(kwargs, where)
        evaluate = _column_rule(
            column,
            test and _skipping_nulls(test),
            kind == "expect_column_values_to_not_be_null",
            condition,
        )
        return Rule(kind, meta, column, (column,), parameters, evaluate)
    if _columns_of(kind) == {"column_A", "column_B"}:
        a, b = kwargs["column_A"], kwargs["column_B"]
        ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
        if ignore not in _IGNORE["pair"]:
            raise UnsupportedRule(f"{where}: ignore_row_if {ignore!r}")
        operator = "==" if kind.endswith("_equal") else (">=" if kwargs.get("or_equal") else ">")
        return Rule(
            kind, meta, None, (a, b), parameters, _pair_rule(a, b, operator, ignore, condition)
        )
    columns = kwargs["column_list"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise UnsupportedRule(f"{where}: column_list {columns!r}")
    ignore = kwargs.get("ignore_row_if", "all_values_are_missing")
    if ignore not in _IGNORE["multi"]:
        raise UnsupportedRule(f"{where}: ignore_row_if {ignore!r}")
    evaluate = _sum_rule(columns, kwargs["sum_total"], ignore, condition)
    return Rule(kind, meta, None, tuple(columns), parameters, evaluate)


# -- values as errors show them: as pandas holds them once the chunk is a DataFrame


def _shown(column: Column, rows: list[int], cents: bool) -> list[str]:
    """The text of ``column``'s values at ``rows``, as ``engine._show`` writes the pandas
    value: an integer column with a null is float64 there (``12.0``, ``nan``), a boolean one
    holds Python objects (``None``), text nulls are ``nan``, dates are YYYY-MM-DD and ``NaT``;
    amounts in cents are shown in euros."""
    kind = _kind(column.type)
    values = column.take(rows).to_pylist()
    if kind == NULL:
        return ["None"] * len(values)
    if kind == NUMBER:
        floats = column.null_count > 0 or pa.types.is_floating(column.type)
        out = []
        for value in values:
            if value is None:
                out.append("nan")
                continue
            number = float(value) if floats else value
            out.append(f"{number / 100:.2f}" if cents else str(number))
        return out
    if kind == BOOL:
        return ["None" if v is None else str(v) for v in values]
    if kind == TEXT:
        return ["nan" if v is None else v for v in values]
    # dates and timestamps: pandas Timestamps, shown by their date
    return [
        "NaT" if v is None else (v.date() if kind == TIMESTAMP else v).isoformat() for v in values
    ]


@dataclass
class CompiledSuite:
    """A suite's rules, run in GX's order: grouped by column, in order of first appearance."""

    table: str
    where: str  # the suite's file, for errors
    rules: list[Rule]
    _orders: dict[frozenset[str], list[Rule]] = field(default_factory=dict)

    def ordered(self, skip: frozenset[str]) -> list[Rule]:
        """The rules that need none of the parameters in ``skip``, in GX's order (which
        ``Validator.process_expectations_for_validation`` sets once they are left out)."""
        if skip not in self._orders:
            groups: dict[str | None, list[Rule]] = {}
            for rule in self.rules:
                if not rule.parameters & skip:
                    groups.setdefault(rule.group, []).append(rule)
            self._orders[skip] = [rule for group in groups.values() for rule in group]
        return self._orders[skip]

    def validate(
        self,
        table: pa.Table,
        parameters: Params,
        cents: frozenset[str] = frozenset(),
        unavailable: frozenset[str] = frozenset(),
        tally: Tally | None = None,
    ) -> list[Violation]:
        """The suite on ``table``: what ``engine.validate_frame`` gives on it as a DataFrame."""
        if table.num_rows == 0:
            return []
        violations: list[Violation] = []
        for rule in self.ordered(unavailable):
            meta = rule.meta
            try:
                checked, failing = rule.evaluate(table, parameters)
            except (UnsupportedRule, KeyError, TypeError, pa.ArrowException) as error:
                raise RuntimeError(
                    f"contract {self.where} rule {meta['rule']} ({rule.type}) could not run: "
                    f"{error!r}"
                ) from error
            rows = pc.indices_nonzero(failing).to_pylist()
            if tally is not None:
                counts = tally.setdefault((self.table, meta["rule"], meta["on_failure"]), [0, 0])
                counts[0] += checked
                counts[1] += len(rows)
            if not rows:
                continue
            shown = [_shown(table[c], rows, c in cents) for c in rule.shown]
            record_nos = table["record_no"].take(rows).to_pylist()
            for i, record_no in enumerate(record_nos):
                violations.append(
                    Violation(
                        rule=meta["rule"],
                        on_failure=meta["on_failure"],
                        table=self.table,
                        field=meta.get("field", ""),
                        message=meta["message"],
                        record_no=int(record_no),
                        value="; ".join(
                            f"{c}={s[i]}" for c, s in zip(rule.shown, shown, strict=True)
                        ),
                    )
                )
        return violations


def compile_suite(table: str, suite: dict[str, Any], where: str) -> CompiledSuite:
    """A suite's expectations compiled, or UnsupportedRule for the first one it cannot be."""
    return CompiledSuite(table, where, [compile_rule(e, where) for e in suite["expectations"]])
