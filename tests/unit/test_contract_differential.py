"""The compiled engine (edihub.contracts.compiled) gives exactly Great Expectations' verdicts.

Great Expectations on pandas (engine.validate_frame) is the reference semantics of the data
contracts; the hub runs them compiled to pyarrow.compute. For every suite of every contract
folder under contracts/ (walked, so a new contract is covered without a line here), a seeded
generator builds tables shaped as the parsers and the file summary build them, from values
that sit on each rule's edges: nulls in every column, the bounds and one step beyond them,
empty, unicode and control-character text, the members of every value set and strangers,
the values row conditions compare with, pairs equal, one apart and half missing, parameters
from lookups (a registry holding half the values asked for), context, settings and today.
Both engines run on them; the violations (rule, record, field, value text, order) and the
tallies (rows checked, rows failed) must be identical, and every rule must have both passed
and failed somewhere, so the data cannot miss a rule. Then a FileCheck per folder runs each
engine over two chunks and the file summary, as check_file does.

Last, hand-written cases of GX semantics that surprise, each pinned to its expected outcome.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from edihub.cli import main
from edihub.config import Settings
from edihub.contracts.compiled import UnsupportedRule
from edihub.contracts.docs import suite_name
from edihub.contracts.engine import (
    DataContract,
    FileCheck,
    _for_gx,
    _frame,
    contract_folders,
    validate_frame,
)
from edihub.feeds import FEEDS
from edihub.formats.contract import FormatContract, feed_formats
from edihub.formats.xml_engine import ARROW_TYPES, Chunk
from edihub.validation import make_file_check
from tests.fixtures.lookup import DictLookup

SETTINGS = Settings.from_env()
TODAY = dt.date(2016, 12, 31)
ACCOUNT = "P10001"
ROWS = 200


@cache
def _formats() -> list[FormatContract]:
    return [fmt for feed in FEEDS for fmt in feed_formats(SETTINGS.formats_dir, feed)]


def _format_of(folder: Path) -> FormatContract:
    """The format whose data contract ``folder`` is, or for a version's shared folder (its
    documents' common rules), the first of its documents."""
    formats = _formats()
    for fmt in formats:
        if fmt.contract_dir(SETTINGS.contracts_dir) == folder:
            return fmt
    return next(f for f in formats if f.contract_dir(SETTINGS.contracts_dir).parent == folder)


FOLDERS = contract_folders(SETTINGS.contracts_dir)
IDS = [str(f.relative_to(SETTINGS.contracts_dir)) for f in FOLDERS]


# -- the values the generator draws from

# Text that regexes, lengths and sets of contracts/ find on either side of their edge, and
# what Python's re and RE2 disagree on: a final newline, NBSP, \v, \x1c, non-ASCII digits.
TEXTS = [
    "",
    " ",
    "a",
    "Z",
    "é",
    "ß",
    "\u00a0",
    "x\n",
    "\t",
    "\x0b",
    "\x1c",
    "nan",
    "None",
    "1234",
    "123456",
    "1234567",
    "123",
    "0000000000000",
    "123456789012",
    "1234567890123\n",
    "\u0661\u0662\u0663\u0664",
    "\uff11\uff12\uff13\uff14",
    "ABCD1234",
    "abcd1234",
    "ABCD123",
    "a@b.c",
    "a.b@c.de",
    "a b@c.d",
    "a\u00a0b@c.de",
    "a@b",
    "é@exemple.mc",
    "a@b.c\n",
    "@b.c",
    "a@b.c\x1c",
    "23:59",
    "00:00",
    "24:00",
    "9:30",
    "19:5",
    "19:50\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
    "ssh-rsa AAAAB3Nza== user@host",
    "ssh-rsa AAAAB3Nza== user\x01",
    "ssh-dss AAAAB3",
    "ecdsa-sha2-nistp256 AAAAE2",
    "x" * 2001,
    "csm-core",
    "a" * 32,
    "a" * 33,
    "-a",
    "A.b_c-d",
    "abc\n",
    "P10001",
    "PH000001",
    "EMP001",
]
NUMBERS = [0, 1, -1, 2, 7, 99, 100, 101, 1000, 12345, 74400, 74401, 10**12, -(10**12)]
TIMESTAMPS = [
    dt.datetime(2016, 12, 31, 23, 30, tzinfo=dt.UTC),
    dt.datetime(2017, 1, 1, 0, 0, tzinfo=dt.UTC),
]


def _dates() -> list[dt.date]:
    """Days on the edges of every date parameter: today, the month's end, each window's
    start (the settings'), one day either side, and 1970-01-01 (no earlier snapshot)."""
    edges = [TODAY, dt.date(2017, 1, 31), dt.date(2016, 11, 30), dt.date(1970, 1, 1)]
    for days in (SETTINGS.care_window_days, SETTINGS.declaration_window_days):
        edges.append(TODAY - dt.timedelta(days=days))
    return sorted({d + dt.timedelta(days=k) for d in edges for k in (-1, 0, 1)})


DATES = _dates()


def _walk_conditions(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if raw.get("type") in ("and", "or"):
        for c in raw["conditions"]:
            yield from _walk_conditions(c)
    else:
        yield raw


def _edges(suite: dict[str, Any]) -> dict[str, list[Any]]:
    """Column -> the literal values the suite's rules test it against, and their neighbours."""
    found: dict[str, list[Any]] = {}
    for exp in suite["expectations"]:
        kw = exp["kwargs"]
        for cond in _walk_conditions(kw.get("row_condition") or {"type": "none"}):
            if cond.get("type") == "comparison":
                value = cond["parameter"]
                values = value if isinstance(value, list) else [value]
                near = [v + k for v in values if type(v) is int for k in (-1, 1)]
                found.setdefault(cond["column"]["name"], []).extend(values + near)
        if "column" not in kw:
            continue
        column = found.setdefault(kw["column"], [])
        if isinstance(kw.get("value_set"), list):
            column.extend(kw["value_set"])
        for bound in ("min_value", "max_value"):
            value = kw.get(bound)
            if type(value) is int:
                if exp["type"] == "expect_column_value_lengths_to_be_between":
                    column.extend("k" * max(value + k, 0) for k in (-1, 0, 1))
                else:
                    column.extend(value + k for k in (-1, 0, 1))
    return found


def _pairs(suite: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (e["kwargs"]["column_A"], e["kwargs"]["column_B"])
        for e in suite["expectations"]
        if "column_A" in e["kwargs"]
    ]


def _fits(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind in ("int", "cents"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "timestamp":
        return isinstance(value, dt.datetime)
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def _pool(kind: str, edges: list[Any]) -> list[Any]:
    pools: dict[str, list[Any]] = {
        "string": TEXTS,
        "int": NUMBERS,
        "cents": NUMBERS,
        "bool": [True, False],
        "date": DATES,
        "timestamp": TIMESTAMPS,
    }
    fitting = [v for v in edges if _fits(kind, v)]
    # the edges weigh as much as the whole generic pool
    return pools[kind] + fitting * max(1, len(pools[kind]) // max(len(fitting), 1))


def _step(rng: random.Random, value: Any) -> Any:
    """One step up or down from ``value``, where there is one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + rng.choice([-1, 1])
    if isinstance(value, dt.date):
        return value + dt.timedelta(days=rng.choice([-1, 1]))
    return value


def _rows(
    rng: random.Random,
    columns: dict[str, str],
    edges: dict[str, list[Any]],
    pairs: list[tuple[str, str]],
    n: int,
) -> dict[str, list[Any]]:
    """``n`` rows of ``columns`` (name -> format type): a null in every column now and then,
    values from each column's pool, and for each pair of compared columns rows where the
    second repeats the first, is one step from it, or is missing."""
    data: dict[str, list[Any]] = {}
    for name, kind in columns.items():
        pool = _pool(kind, edges.get(name, []))
        data[name] = [None if rng.random() < 0.2 else rng.choice(pool) for _ in range(n)]
    for a, b in pairs:
        if a not in columns or b not in columns or columns[a] != columns[b]:
            continue
        for i in range(n):
            roll = rng.random()
            if roll < 0.35:
                data[b][i] = data[a][i]
            elif roll < 0.5:
                data[b][i] = _step(rng, data[a][i])
    return data


def _table(columns: dict[str, str], data: dict[str, list[Any]], first: int) -> pa.Table:
    n = len(next(iter(data.values())))
    arrays = {"record_no": pa.array(range(first, first + n), pa.int64())}
    for name, kind in columns.items():
        if name != "record_no":
            arrays[name] = pa.array(data[name], ARROW_TYPES[kind])
    return pa.table(arrays)


def _record_columns(fmt: FormatContract) -> dict[str, str]:
    record = fmt.record
    return (
        {"line_no": "int"}
        | {name: "int" for name in record.aggregates}
        | {f.name: f.type for f in record.fields}
    )


def _child_columns(fmt: FormatContract) -> dict[str, str]:
    children = fmt.record.children
    assert children is not None
    return {fmt.record.id: "string", "child_no": "int"} | {f.name: f.type for f in children.fields}


def _summary_columns(fmt: FormatContract, contract: DataContract) -> dict[str, str]:
    """The file summary's fields as check_file builds them, by type."""
    header = {f.name: f.type for f in fmt.header.fields}
    trailer = {f.name: f.type for f in fmt.trailer.fields} if fmt.trailer else {}
    columns: dict[str, str] = {}
    for name, spec in contract.spec.get("summary", {}).items():
        if "header" in spec:
            columns[name] = "date" if spec.get("as") == "month_end" else header[spec["header"]]
        elif "trailer" in spec:
            columns[name] = trailer[spec["trailer"]]
        elif "context" in spec:
            columns[name] = "string"
        else:
            columns[name] = "int"
    return columns


@dataclasses.dataclass
class Case:
    """A contract folder with its format, and a FileCheck for it on the generated registry."""

    folder: Path
    contract: DataContract
    fmt: FormatContract
    rng: random.Random
    lookup: DictLookup = dataclasses.field(default_factory=lambda: DictLookup({}))

    @property
    def record_table(self) -> str:
        return self.fmt.record.table

    def check(self, engine: str, lookup: DictLookup | None) -> FileCheck:
        check = make_file_check(self.fmt, self.contract, ACCOUNT, lookup, SETTINGS)
        return dataclasses.replace(check, today=TODAY, engine=engine)

    def columns(self, table: str) -> dict[str, str]:
        if table == "file":
            return _summary_columns(self.fmt, self.contract)
        if table == self.record_table:
            return _record_columns(self.fmt)
        return _child_columns(self.fmt)

    def generate(self, table: str, n: int, first: int = 1) -> pa.Table:
        """``n`` rows for ``table``, derived columns added, aimed at its suite's edges."""
        suite = self.contract.suites.get(table, {"expectations": []})
        columns = self.columns(table)
        edges = _edges(suite)
        # the registry lookups' and context's values in the text pools too
        extra = [ACCOUNT, *SETTINGS.paper_senders, *SETTINGS.registry_senders]
        for name in columns:
            edges.setdefault(name, []).extend(extra)
        data = _rows(self.rng, columns, edges, _pairs(suite), n)
        return self.check("compiled", None)._derive(table, _table(columns, data, first))

    def seed_registry(self, tables: dict[str, pa.Table]) -> None:
        """The registry holds about half of the values each lookup asks about (valid on the
        day, or not, for the dated ones); ``newest`` finds one of the edge days, or nothing."""
        for spec in self.contract.spec["parameters"].values():
            if "newest" in spec:
                key = (spec["newest"]["table"], spec["newest"]["column"])
                self.lookup.tables[key] = set(self.rng.sample(DATES, self.rng.choice([0, 1])))
                continue
            if "lookup" not in spec:
                continue
            lookup = spec["lookup"]
            table, column = lookup["of"].split(".")
            if table not in tables:
                continue
            values = sorted(set(tables[table][column].drop_null().to_pylist()), key=str)
            key = (lookup["table"], lookup["column"])
            if "on_date" not in lookup:
                self.lookup.tables.setdefault(key, set()).update(
                    v for v in values if self.rng.random() < 0.5
                )
                continue
            days = [DATES[0], TODAY - dt.timedelta(days=30), TODAY, DATES[-1]]
            self.lookup.periods.setdefault(key, []).extend(
                (v, self.rng.choice(days), self.rng.choice([None, *days])) for v in values
            )


def _case(folder: Path, seed: int) -> Case:
    return Case(folder, DataContract.load(folder), _format_of(folder), random.Random(seed))


def _same(gx: list[Any], compiled: list[Any], where: str) -> None:
    assert len(compiled) == len(gx), where
    for g, c in zip(gx, compiled, strict=True):
        assert c == g, where


def _compare(
    case: Case,
    table: str,
    data: pa.Table,
    params: dict[str, Any],
    unavailable: frozenset[str],
) -> dict[tuple[str, str, str], list[int]]:
    check = case.check("compiled", None)
    cents = check.summary_cents if table == "file" else check.cents
    gx_tally: dict[tuple[str, str, str], list[int]] = {}
    tally: dict[tuple[str, str, str], list[int]] = {}
    gx = validate_frame(
        case.contract, table, _frame(data), _for_gx(params), cents, unavailable, gx_tally
    )
    compiled = case.contract.compiled[table].validate(data, params, cents, unavailable, tally)
    where = f"{case.folder.relative_to(SETTINGS.contracts_dir)}/{table} without {set(unavailable)}"
    _same(gx, compiled, where)
    assert tally == gx_tally, where
    return tally


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_every_suite_gives_gx_verdicts(folder: Path) -> None:
    case = _case(folder, seed=2016 + FOLDERS.index(folder))
    tables = {t: case.generate(t, ROWS) for t in case.contract.suites}
    case.seed_registry(tables)
    params = case.check("compiled", case.lookup)._parameters(tables)
    offline = case.check("compiled", None).unchecked_parameters
    for table, data in tables.items():
        tally = _compare(case, table, data, params, frozenset())
        if offline & {p for r in case.contract.compiled[table].rules for p in r.parameters}:
            _compare(case, table, data, params, offline)  # the order once rules are left out
        # every rule both passed and failed on some row: the data reached its edge
        for (_, rule, _), (checked, failed) in tally.items():
            assert 0 < failed < checked, f"{folder}/{table} {rule}: {failed} of {checked} failed"


def _header(case: Case, records: int, sums: dict[str, int]) -> tuple[dict, dict]:
    """A header and trailer as a reader gives them: declared counts and sums right, one off
    or missing; the other fields from their pools (with their edges)."""
    rng = case.rng
    suite = case.contract.suites.get("file", {"expectations": []})
    edges = _edges(suite)
    header: dict[str, Any] = {}
    for f in case.fmt.header.fields:
        pool = _pool(f.type, [*edges.get(f.name, []), ACCOUNT, *SETTINGS.paper_senders])
        header[f.name] = rng.choice(pool)
    for spec in case.contract.spec.get("summary", {}).values():
        if spec.get("as") == "month_end":
            header[spec["header"]] = rng.choice([f"{d:%Y-%m}" for d in DATES])
    trailer: dict[str, Any] = {}
    found = {s.get("trailer"): n for n, s in case.contract.spec.get("summary", {}).items()}
    for f in case.fmt.trailer.fields if case.fmt.trailer else ():
        right = sums.get(found.get(f.name, ""), records)
        trailer[f.name] = rng.choice([right, right, right + 1, None])
    return header, trailer


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_file_check_gives_gx_verdicts(folder: Path) -> None:
    """Two chunks and the file summary through a FileCheck of each engine, as check_file
    runs them: derived columns across chunks (repeats), parameters, the summary."""
    case = _case(folder, seed=7 + FOLDERS.index(folder))
    n = 30
    chunks = []
    for first in (1, n + 1):
        records = case.generate(case.record_table, n, first)
        raw = records.select(
            [
                c
                for c in records.column_names
                if c in {"record_no", *case.columns(case.record_table)}
            ]
        )
        children = None
        if case.fmt.record.children:
            child_table = case.fmt.record.children.table
            children = case.generate(child_table, 2 * n, 1)
            record_nos = [case.rng.randint(first, first + n - 1) for _ in range(2 * n)]
            children = children.set_column(0, "record_no", pa.array(sorted(record_nos)))
            children = children.select(
                [c for c in children.column_names if c in {"record_no", *case.columns(child_table)}]
            )
        chunks.append(Chunk(raw, children))
        case.seed_registry({case.record_table: records})
    lookup = case.lookup if FOLDERS.index(folder) % 2 == 0 else None  # half of them offline
    gx, compiled = case.check("gx", lookup), case.check("compiled", lookup)
    for i, chunk in enumerate(chunks):
        _same(gx.check_chunk(chunk), compiled.check_chunk(chunk), f"{folder} chunk {i}")
    header, trailer = _header(case, compiled.records_found, compiled.sums)
    _same(gx.check_file(header, trailer), compiled.check_file(header, trailer), f"{folder} file")
    assert compiled.rule_results() == gx.rule_results()
    assert compiled.sums == gx.sums and compiled.records_found == gx.records_found == 2 * n
    assert any(r["failed"] for r in compiled.rule_results())


def test_the_walk_finds_every_format_s_contract() -> None:
    """Each kind of file the hub reads is checked against a folder the tests above cover."""
    assert {fmt.contract_dir(SETTINGS.contracts_dir) for fmt in _formats()} == set(FOLDERS)


# -- GX semantics that surprise, each pinned to what both engines give


def _contract(tmp_path: Path, *expectations: tuple[str, dict[str, Any]]) -> DataContract:
    folder = tmp_path / "contract"
    folder.mkdir()
    (folder / "contract.yaml").write_text("parameters: {}\n")
    suite = {
        "name": f"edge_{tmp_path.name}",
        "expectations": [
            {
                "type": kind,
                "kwargs": kwargs,
                "meta": {"rule": f"R{i}", "on_failure": "reject_record", "message": "m"},
            }
            for i, (kind, kwargs) in enumerate(expectations, start=1)
        ],
    }
    (folder / "t.json").write_text(json.dumps(suite))
    return DataContract.load(folder)


def _both(
    contract: DataContract,
    data: dict[str, pa.Array | list[Any]],
    params: dict[str, Any] | None = None,
    cents: frozenset[str] = frozenset(),
) -> tuple[list[tuple[str, int | None, str | None]], dict[str, list[int]]]:
    """Both engines on ``data`` (record_no 1, 2, ... added): their identical violations as
    (rule, record_no, value), and tallies by rule."""
    n = len(next(iter(data.values())))
    table = pa.table({"record_no": pa.array(range(1, n + 1), pa.int64()), **data})
    gx_tally: dict[tuple[str, str, str], list[int]] = {}
    tally: dict[tuple[str, str, str], list[int]] = {}
    gx = validate_frame(
        contract, "t", _frame(table), _for_gx(params or {}), cents, frozenset(), gx_tally
    )
    compiled = contract.compiled["t"].validate(table, params or {}, cents, frozenset(), tally)
    assert compiled == gx and tally == gx_tally
    return [(v.rule, v.record_no, v.value) for v in compiled], {
        r: c for (_, r, _), c in tally.items()
    }


def test_a_null_is_counted_as_checked_but_never_fails_a_value_rule(tmp_path: Path) -> None:
    contract = _contract(
        tmp_path,
        ("expect_column_values_to_be_in_set", {"column": "x", "value_set": ["a"]}),
        ("expect_column_values_to_match_regex", {"column": "x", "regex": "^b$"}),
        ("expect_column_values_to_be_between", {"column": "n", "min_value": 1}),
    )
    found, tally = _both(contract, {"x": ["a", None, "b"], "n": [None, 0, 1]})
    assert found == [("R1", 3, "x=b"), ("R2", 1, "x=a"), ("R3", 2, "n=0.0")]
    assert tally == {"R1": [3, 1], "R2": [3, 1], "R3": [3, 1]}


def test_a_row_condition_is_pandas_query_on_nulls(tmp_path: Path) -> None:
    """``kind == 'a'`` leaves out a row whose kind is null, ``kind != 'a'`` takes it in
    (NaN != 'a' holds in pandas); the rows left out are not counted as checked."""
    equal = {"type": "comparison", "column": {"name": "kind"}, "operator": "==", "parameter": "a"}
    contract = _contract(
        tmp_path,
        ("expect_column_values_to_not_be_null", {"column": "x", "row_condition": equal}),
        (
            "expect_column_values_to_not_be_null",
            {"column": "y", "row_condition": equal | {"operator": "!="}},
        ),
    )
    found, tally = _both(
        contract, {"kind": ["a", None, "b"], "x": [None, None, None], "y": [None, None, None]}
    )
    assert found == [("R1", 1, "x=None"), ("R2", 2, "y=None"), ("R2", 3, "y=None")]
    assert tally == {"R1": [1, 1], "R2": [2, 2]}


def test_and_or_and_sets_in_row_conditions(tmp_path: Path) -> None:
    """No contract combines conditions yet: AND, OR (an AND inside it), IN and NOT IN, as
    DataFrame.query runs them; a null is NOT IN every list."""

    def compare(column: str, operator: str, parameter: Any) -> dict[str, Any]:
        return {
            "type": "comparison",
            "column": {"name": column},
            "operator": operator,
            "parameter": parameter,
        }

    either = {
        "type": "or",
        "conditions": [
            {"type": "and", "conditions": [compare("n", ">=", 2), compare("k", "IN", ["a", "b"])]},
            {"type": "nullity", "column": {"name": "k"}, "is_null": True},
        ],
    }
    both = {"type": "and", "conditions": [compare("n", "<", 3), compare("k", "NOT_IN", ["a"])]}
    contract = _contract(
        tmp_path,
        ("expect_column_values_to_not_be_null", {"column": "x", "row_condition": either}),
        ("expect_column_values_to_not_be_null", {"column": "y", "row_condition": both}),
    )
    nothing = [None] * 6
    found, tally = _both(
        contract,
        {
            "n": [1, 2, 3, None, 5, 0],
            "k": ["a", "b", None, "a", "c", None],
            "x": nothing,
            "y": nothing,
        },
    )
    assert [(r, n) for r, n, _ in found] == [("R1", 2), ("R1", 3), ("R1", 6), ("R2", 2), ("R2", 6)]
    assert tally == {"R1": [3, 3], "R2": [2, 2]}


def test_regexes_are_python_s_not_re2_s(tmp_path: Path) -> None:
    """pyarrow's RE2 and Python's re (which GX's pandas uses) disagree: ``$`` also matches
    before a final newline, ``\\d`` takes Arabic-Indic digits, ``\\s`` takes NBSP, \\v and
    \\x1c; ``\\Z`` is the true end. The compiled engine asks RE2 only about printable ASCII."""
    contract = _contract(
        tmp_path,
        ("expect_column_values_to_match_regex", {"column": "x", "regex": "^[0-9]{4}$"}),
        ("expect_column_values_to_match_regex", {"column": "x", "regex": "^[0-9]{4}\\Z"}),
        ("expect_column_values_to_match_regex", {"column": "y", "regex": "^\\d+$"}),
        ("expect_column_values_to_match_regex", {"column": "z", "regex": "^\\S+$"}),
    )
    found, _ = _both(
        contract,
        {
            "x": ["1234", "1234\n", "1234\n\n", "12345"],
            "y": ["1234", "\u0661\u0662", "\uff11", "1a"],
            "z": ["ab", "a\u00a0b", "a\x0bb", "a\x1cb"],
        },
    )
    assert found == [
        ("R1", 3, "x=1234\n\n"),
        ("R1", 4, "x=12345"),
        ("R2", 2, "x=1234\n"),
        ("R2", 3, "x=1234\n\n"),
        ("R2", 4, "x=12345"),
        ("R3", 4, "y=1a"),
        ("R4", 2, "z=a\u00a0b"),
        ("R4", 3, "z=a\x0bb"),
        ("R4", 4, "z=a\x1cb"),
    ]


def test_values_are_shown_as_pandas_holds_them(tmp_path: Path) -> None:
    """Once a chunk is a DataFrame, an integer column with a null is float64 (12.0, nan), a
    boolean one holds None, a text null is nan and a date one NaT; cents show in euros."""
    contract = _contract(
        tmp_path,
        (
            "expect_column_pair_values_to_be_equal",
            {"column_A": "n", "column_B": "amount", "ignore_row_if": "neither"},
        ),
        (
            "expect_column_pair_values_to_be_equal",
            {"column_A": "flag", "column_B": "other_flag", "ignore_row_if": "neither"},
        ),
        (
            "expect_column_pair_values_to_be_equal",
            {"column_A": "text", "column_B": "other_text", "ignore_row_if": "neither"},
        ),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "day", "column_B": "since", "ignore_row_if": "neither"},
        ),
    )
    day = dt.date(2016, 12, 31)
    found, _ = _both(
        contract,
        {
            "n": pa.array([12, None], pa.int64()),
            "amount": pa.array([1250, None], pa.int64()),
            "flag": pa.array([True, None]),
            "other_flag": pa.array([False, True]),
            "text": pa.array(["x", None]),
            "other_text": pa.array(["y", "y"]),
            "day": pa.array([day, None], pa.date32()),
            "since": pa.array([day, day], pa.date32()),
        },
        cents=frozenset({"amount"}),
    )
    assert found == [
        ("R1", 1, "n=12.0; amount=12.50"),
        ("R1", 2, "n=nan; amount=nan"),
        ("R2", 1, "flag=True; other_flag=False"),
        ("R2", 2, "flag=None; other_flag=True"),
        ("R3", 1, "text=x; other_text=y"),
        ("R3", 2, "text=nan; other_text=y"),
        ("R4", 1, "day=2016-12-31; since=2016-12-31"),
        ("R4", 2, "day=NaT; since=2016-12-31"),
    ]


def test_rules_run_grouped_by_column_not_in_suite_order(tmp_path: Path) -> None:
    """GX's Validator groups a suite's expectations by column, in order of first appearance
    (pairs and multicolumn rules form one group), before running them."""
    contract = _contract(
        tmp_path,
        ("expect_column_values_to_be_in_set", {"column": "a", "value_set": [1]}),
        ("expect_column_pair_values_to_be_equal", {"column_A": "a", "column_B": "b"}),
        ("expect_column_values_to_be_null", {"column": "b"}),
        ("expect_column_values_to_be_between", {"column": "a", "max_value": 1}),
    )
    found, _ = _both(contract, {"a": [2], "b": [3]})
    assert [r for r, _, _ in found] == ["R1", "R4", "R2", "R3"]


def test_a_pair_with_one_value_missing_fails_unless_told(tmp_path: Path) -> None:
    """ignore_row_if leaves out the rows where both are missing by default: one missing value
    fails the pair. a > b is strict without or_equal."""
    contract = _contract(
        tmp_path,
        ("expect_column_pair_values_to_be_equal", {"column_A": "a", "column_B": "b"}),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "a", "column_B": "b", "ignore_row_if": "either_value_is_missing"},
        ),
    )
    found, tally = _both(contract, {"a": [1, None, None, 2], "b": [1, 1, None, 3]})
    assert found == [
        ("R1", 2, "a=nan; b=1.0"),
        ("R1", 4, "a=2.0; b=3.0"),
        ("R2", 1, "a=1.0; b=1.0"),
        ("R2", 4, "a=2.0; b=3.0"),
    ]
    assert tally == {"R1": [4, 2], "R2": [4, 2]}


def test_a_sum_is_pandas_float_once_a_column_has_a_null(tmp_path: Path) -> None:
    """A missing value fails the sum (all missing: the row is left out); with a null in the
    column, pandas adds in float64, where 2**53 + 1 is 2**53."""
    contract = _contract(
        tmp_path,
        ("expect_multicolumn_sum_to_equal", {"column_list": ["a", "b"], "sum_total": 2**53}),
    )
    found, tally = _both(
        contract, {"a": [2**53 + 1, 1, None, None], "b": pa.array([0, None, None, 5], pa.int64())}
    )
    assert found == [("R1", 2, "a=1.0; b=nan"), ("R1", 4, "a=nan; b=5.0")]
    assert tally == {"R1": [4, 2]}


def test_a_rule_that_cannot_run_stops_both_engines(tmp_path: Path) -> None:
    """A number bound on a text column: GX fails the expectation (its exception, per metric,
    is not a verdict) and the compiled engine refuses the comparison."""
    contract = _contract(
        tmp_path, ("expect_column_values_to_be_between", {"column": "x", "min_value": 1})
    )
    table = pa.table({"record_no": [1], "x": ["a"]})
    with pytest.raises(RuntimeError, match=r"rule R1 .*could not run"):
        validate_frame(contract, "t", _frame(table), {})
    with pytest.raises(RuntimeError, match=r"rule R1 .*could not run"):
        contract.compiled["t"].validate(table, {})


@pytest.mark.parametrize(
    ("kind", "kwargs", "refused"),
    [
        ("expect_column_values_to_be_unique", {"column": "x"}, "unknown expectation type"),
        ("expect_column_values_to_be_null", {"column": "x", "mostly": 0.9}, "unknown \\['mostly"),
        ("expect_column_values_to_be_null", {"column": "x", "row_condition": "x > 1"}, "only GX"),
        (
            "expect_column_values_to_be_null",
            {
                "column": "x",
                "row_condition": {
                    "type": "comparison",
                    "column": {"name": "y"},
                    "operator": "~",
                    "parameter": 1,
                },
            },
            "operator",
        ),
        (
            "expect_column_values_to_be_null",
            {
                "column": "x",
                "row_condition": {
                    "type": "and",
                    "conditions": [
                        {
                            "type": "or",
                            "conditions": [
                                {"type": "nullity", "column": {"name": "y"}, "is_null": True}
                            ],
                        },
                    ],
                },
            },
            "an OR inside an AND",
        ),
        ("expect_column_values_to_be_in_set", {"column": "x", "value_set": {"a": 1}}, "value_set"),
        ("expect_column_values_to_be_between", {"column": "x"}, "both be None"),
    ],
)
def test_what_the_compiler_does_not_know_stops_the_contract_at_load(
    tmp_path: Path, kind: str, kwargs: dict[str, Any], refused: str
) -> None:
    with pytest.raises(UnsupportedRule, match=refused):
        _contract(tmp_path, (kind, kwargs))


def test_docs_contracts_builds_gx_data_docs_of_every_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Data Docs still come from Great Expectations, from the same suites."""
    assert main(["docs", "contracts", "--out", str(tmp_path / "site")]) == 0
    index = tmp_path / "site" / "index.html"
    assert capsys.readouterr().out.strip() == str(index)
    html = index.read_text()
    for folder in FOLDERS:
        contract = DataContract.load(folder)
        for table, suite in contract.suites.items():
            name = suite_name(SETTINGS.contracts_dir, folder, table)
            assert name in html, name
            page = tmp_path / "site" / "expectations" / Path(*name.split(".")).with_suffix(".html")
            text = page.read_text()
            columns = {e["kwargs"].get("column") for e in suite["expectations"]} - {None}
            assert all(c in text for c in columns), (name, columns)
