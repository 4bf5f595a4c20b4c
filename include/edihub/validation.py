"""Check one file against its format and data contracts: shared by the hub and ``edihub validate``.

A file's verdict is one of the final states of ``edi.inbound_file``; its errors name the record,
the field, the rule and the offending value, as the acknowledgment shows them.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg2 import sql

from edihub.config import Settings
from edihub.contracts.engine import (
    REJECT_FILE,
    AtLeast,
    DataContract,
    FileCheck,
    Lookup,
    Violation,
)
from edihub.feeds import FEEDS
from edihub.formats.contract import FormatContract, feed_formats
from edihub.formats.errors import FileRefused
from edihub.formats.readers import open_reader

ERROR_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("record_no", pa.int64()),
        ("record_id", pa.string()),
        ("field", pa.string()),
        ("rule", pa.string()),
        ("value", pa.string()),
        ("message", pa.string()),
    ]
)


@dataclass
class Verdict:
    state: str
    records_total: int = 0
    records_rejected: int = 0
    reason_code: str | None = None
    reason: str | None = None
    batch_number: str | None = None
    format_version: str | None = None
    document: str | None = None  # for feed versions of several documents
    duplicate_of: int | None = None
    # every contract rule that ran: table, rule, on_failure, rows checked, rows failed
    rule_results: list[dict[str, Any]] = field(default_factory=list)
    # the file's header fields, as text (dates in ISO form)
    header: dict[str, str] = field(default_factory=dict)

    @property
    def records_loaded(self) -> int:
        if self.state in ("loaded", "loaded_with_errors"):
            return self.records_total - self.records_rejected
        return 0


def file_error(code: str, message: str, **where: Any) -> dict[str, Any]:
    return {
        "level": "file",
        "rule": code,
        "message": message,
        "record_no": None,
        "record_id": None,
        "field": None,
        "value": None,
    } | where


class DatabaseLookup:
    """The data contracts' questions (:class:`edihub.contracts.engine.Lookup`), answered by
    the hub's database on one connection. Names come from contract files, values are bound."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @staticmethod
    def _conditions(where: dict[str, Any]) -> tuple[list[sql.Composable], list[Any]]:
        conditions: list[sql.Composable] = []
        params: list[Any] = []
        for column, value in where.items():
            if isinstance(value, AtLeast):
                test, value = "{} >= %s", value.value
            else:
                test = "{} = ANY(%s)" if isinstance(value, list) else "{} = %s"
            conditions.append(sql.SQL(test).format(sql.Identifier(column)))
            params.append(value)
        return conditions, params

    def _rows(self, query: sql.Composable, params: list[Any]) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def present(
        self, table: str, column: str, values: list[Any], where: dict[str, Any]
    ) -> set[Any]:
        if not values:
            return set()
        conditions, params = self._conditions(where)
        conditions.insert(0, sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
        query = sql.SQL("SELECT DISTINCT {col} FROM {tbl} WHERE {cond}").format(
            col=sql.Identifier(column),
            tbl=sql.Identifier(*table.split(".")),
            cond=sql.SQL(" AND ").join(conditions),
        )
        return {r[0] for r in self._rows(query, [values, *params])}

    def valid_on(
        self,
        table: str,
        column: str,
        pairs: list[tuple[Any, dt.date]],
        period: tuple[str, str],
        where: dict[str, Any],
    ) -> set[tuple[Any, dt.date]]:
        if not pairs:
            return set()
        conditions, params = self._conditions(where)
        valid_from, valid_to = (sql.Identifier("t", c) for c in period)
        query = sql.SQL(
            "SELECT DISTINCT v.value, v.day FROM unnest(%s::text[], %s::date[]) AS v(value, day)"
            " JOIN {tbl} AS t ON t.{col} = v.value AND v.day >= {valid_from}"
            " AND (v.day <= {valid_to} OR {valid_to} IS NULL) {extra}"
        ).format(
            tbl=sql.Identifier(*table.split(".")),
            col=sql.Identifier(column),
            valid_from=valid_from,
            valid_to=valid_to,
            extra=sql.SQL("").join(sql.SQL(" AND t.") + c for c in conditions),
        )
        values, days = [list(x) for x in zip(*pairs, strict=True)]
        return {(r[0], r[1]) for r in self._rows(query, [values, days, *params])}

    def newest(self, table: str, column: str, where: dict[str, Any]) -> Any:
        conditions, params = self._conditions(where)
        query = sql.SQL("SELECT max({col}) FROM {tbl}{cond}").format(
            col=sql.Identifier(column),
            tbl=sql.Identifier(*table.split(".")),
            cond=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
            if conditions
            else sql.SQL(""),
        )
        return self._rows(query, params)[0][0]


def check_file(
    path: Path,
    settings: Settings,
    feed: str,
    account: str | None,
    lookup: Lookup | None,
    sink: StagingSink | None = None,
    chunk_size: int = 50_000,
    name: str | None = None,
) -> tuple[Verdict, list[dict[str, Any]]]:
    """Run the format and data contracts over one file. Shared by the hub and ``edihub validate``.

    ``name`` is the file's name as sent (by default, ``path``'s). Returns the verdict and the
    errors; accepted rows go to ``sink`` when one is given.
    """
    errors: list[dict[str, Any]] = []
    records_total = 0
    name = name or path.name
    try:
        try:
            fmt, reader = open_reader(
                path, name, feed_formats(settings.formats_dir, feed), chunk_size
            )
        except FileRefused as refused:
            if refused.hostile:  # read no further
                raise
            raise _wrong_folder(path, name, settings, feed) or refused from None
        contract = DataContract.load(fmt.contract_dir(settings.contracts_dir))
        check = make_file_check(fmt, contract, account, lookup, settings)
        rejected_records = 0
        for chunk in reader:
            if account is None:  # a partner checking its own file: it is the sender it names
                check.context["account"] = reader.header.get("sender")
            violations = check.check_chunk(chunk)
            ids = dict(
                zip(
                    chunk.records.column("record_no").to_pylist(),
                    chunk.records.column(fmt.record.id).to_pylist(),
                    strict=True,
                )
            )
            bad = {v.record_no for v in violations if v.record_no is not None}
            rejected_records += len(bad)
            records_total += chunk.records.num_rows
            errors += [_violation_error(v, ids.get(v.record_no)) for v in violations]
            if sink is not None:
                sink.write(chunk.records, chunk.children, bad)
        if account is None:
            check.context["account"] = reader.header.get("sender")
        file_violations = check.check_file(reader.header, reader.trailer)
        errors += [_violation_error(v, None) for v in file_violations]
        verdict = Verdict(
            state="loaded",
            records_total=records_total,
            records_rejected=rejected_records,
            batch_number=reader.header.get("batch_number"),
            format_version=str(fmt.version),
            document=fmt.document or None,
            rule_results=check.rule_results(),
            header={
                k: v.isoformat() if hasattr(v, "isoformat") else str(v)
                for k, v in reader.header.items()
                if v is not None
            },
        )
        file_level = [v for v in file_violations if v.on_failure == REJECT_FILE]
        if file_level:
            verdict.state = "rejected"
            verdict.records_rejected = records_total
            verdict.reason_code = file_level[0].rule
            verdict.reason = file_level[0].message
        elif rejected_records == records_total:
            verdict.state = "rejected"
            verdict.reason_code = "ALL_RECORDS_REJECTED"
            verdict.reason = "every record of the file was rejected"
        elif rejected_records and contract.spec.get("all_or_nothing"):
            verdict.state = "rejected"
            verdict.records_rejected = records_total
            verdict.reason_code = "INCOMPLETE_SNAPSHOT"
            verdict.reason = (
                f"{rejected_records} of {records_total} records failed; this file is loaded "
                "whole or not at all, and the previous one stays in force"
            )
        elif rejected_records:
            verdict.state = "loaded_with_errors"
        return verdict, errors
    except FileRefused as refused:
        state = "quarantined" if refused.hostile else "rejected"
        errors.append(
            file_error(
                refused.code,
                refused.message,
                record_no=refused.record_no,
                record_id=refused.record_id,
            )
        )
        return Verdict(state, records_total, records_total, refused.code, str(refused)), errors


def _wrong_folder(path: Path, name: str, settings: Settings, feed: str) -> FileRefused | None:
    """A refusal that says where the file belongs, when it is not this feed's but another's
    (each engine's sniffing reads only the start of the file)."""
    for other in FEEDS:
        if other == feed:
            continue
        try:
            fmt, _reader = open_reader(path, name, feed_formats(settings.formats_dir, other), 1)
        except FileRefused:
            continue
        return FileRefused(
            "WRONG_FOLDER",
            f"this is a {fmt.label} file ({FEEDS[other]}), sent to the {feed} folder; "
            f"send it to /inbound/{other}/ instead (nothing of it was loaded)",
        )
    return None


def make_file_check(
    fmt: FormatContract,
    contract: DataContract,
    account: str | None,
    lookup: Lookup | None,
    settings: Settings,
) -> FileCheck:
    """The data-contract check of one file of format ``fmt`` (check_file's, and the
    benchmarks' and tests' that run the contract on chunks of their own)."""
    record, children = fmt.record, fmt.record.children
    # Amount columns, shown in euros in error values: cents fields, and sums of cents fields.
    cents = {
        f.name for t in fmt.tables if t is not fmt.header for f in t.fields if f.type == "cents"
    }
    cents |= {name for name, agg in record.aggregates.items() if agg.get("sum") in cents}
    return FileCheck(
        contract=contract,
        record_table=record.table,
        child_table=children.table if children else None,
        cents=frozenset(cents),
        context={"account": account},
        lookup=lookup,
        settings=settings.for_contracts,
    )


def _violation_error(v: Violation, record_id: Any) -> dict[str, Any]:
    return {
        "level": "file" if v.record_no is None else "record",
        "record_no": v.record_no,
        "record_id": None if record_id is None else str(record_id),
        "field": v.field or None,
        "rule": v.rule,
        "value": v.value,
        "message": v.message,
    }


class StagingSink:
    """Accepted rows of one file, written to Parquet chunk by chunk (bounded memory)."""

    def __init__(self, folder: Path) -> None:
        if folder.exists():
            shutil.rmtree(folder)  # a rerun of validate starts clean
        folder.mkdir(parents=True)
        self.folder = folder
        self._writers: dict[str, pq.ParquetWriter] = {}

    def _write(self, name: str, table: pa.Table) -> None:
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema)
        self._writers[name].write_table(table)

    def write(self, records: pa.Table, children: pa.Table | None, bad: set[int]) -> None:
        keep = pc.invert(pc.is_in(records.column("record_no"), pa.array(sorted(bad), pa.int64())))
        self._write("records", records.filter(keep))
        if children is not None:
            keep_children = pc.invert(
                pc.is_in(children.column("record_no"), pa.array(sorted(bad), pa.int64()))
            )
            self._write("children", children.filter(keep_children))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
