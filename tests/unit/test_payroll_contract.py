"""The payroll data contract (contracts/payroll/v1) rule by rule, and what the XSD refuses.

Registry rules are checked against a dict standing in for the registry lookup here; the
integration tests run the same rules against PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from edihub.config import Settings
from edihub.contracts.engine import DataContract
from edihub.formats.contract import feed_formats
from edihub.formats.xml_engine import Chunk
from edihub.validation import _file_check, check_file
from tests.fixtures.lookup import DictLookup
from tests.fixtures.payroll import EMPLOYER, KNOWN_EMPLOYEES, line, payroll_file, period_months_ago

SETTINGS = Settings.from_env()
REGISTRY = {
    ("edi.registry_employer", "employer_id"): {EMPLOYER, "EMP002"},
    ("edi.registry_insured", "beneficiary_key"): {
        f"{number}/0" for number in (*KNOWN_EMPLOYEES, "111111", "222222")
    },
}


lookup = DictLookup(REGISTRY)


def check(path: Path, account: str | None = EMPLOYER) -> tuple[Any, list[dict[str, Any]]]:
    return check_file(path, SETTINGS, "payroll", account, lookup)


def rules(errors: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return sorted((e["rule"], e["record_no"]) for e in errors)


def four_lines(third: dict[str, Any] | None = None) -> list[Any]:
    ids = [*KNOWN_EMPLOYEES, "111111", "222222"]
    lines = [line(i, employee_id=ids[i - 1]) for i in range(1, 5)]
    if third is not None:
        lines[2] = line(3, **({"employee_id": ids[2]} | third))
    return lines


def test_clean_file_is_accepted(tmp_path: Path) -> None:
    verdict, errors = check(payroll_file(tmp_path / "ok.xml", four_lines()))
    assert errors == []
    assert (verdict.state, verdict.records_total, verdict.records_loaded) == ("loaded", 4, 4)
    assert verdict.batch_number == "000001" and verdict.format_version == "1"


def test_household_may_declare_net_salaries(tmp_path: Path) -> None:
    lines = [line(1, gross_salary=None, net_salary=Decimal("1500.00"), base_ccss=None), line(2)]
    verdict, errors = check(payroll_file(tmp_path / "f.xml", lines, employer_kind="household"))
    assert errors == [] and verdict.state == "loaded"


@pytest.mark.parametrize(
    ("change", "rule", "field"),
    [
        ({"employee_id": "999999"}, "PAY-R02", "employee_id"),
        ({"gross_salary": Decimal("-10.00"), "base_ccss": None}, "PAY-R04", "grossSalary"),
        ({"gross_salary": Decimal("0.00"), "base_ccss": None}, "PAY-R04", "grossSalary"),
        ({"hours_worked": Decimal("744.01")}, "PAY-R06", "hoursWorked"),
        ({"hours_worked": Decimal("-1.00")}, "PAY-R06", "hoursWorked"),
        ({"base_ccss": Decimal("3250.01")}, "PAY-R07", "baseCCSS"),
    ],
    ids=["unknown-employee", "negative", "zero", "hours-over", "hours-negative", "base-ccss"],
)
def test_record_rules_reject_only_the_line(
    tmp_path: Path, change: dict[str, Any], rule: str, field: str
) -> None:
    lines = four_lines(change)
    verdict, errors = check(payroll_file(tmp_path / "f.xml", lines))
    assert verdict.state == "loaded_with_errors", errors
    assert verdict.records_rejected == 1 and verdict.records_loaded == 3
    assert rules(errors) == [(rule, 3)]
    assert errors[0]["record_id"] == lines[2].employee_id
    assert errors[0]["field"] == field
    assert errors[0]["value"]


def test_negative_net_salary_is_rejected(tmp_path: Path) -> None:
    lines = [line(1), line(2, gross_salary=None, net_salary=Decimal("-5.00"), base_ccss=None)]
    verdict, errors = check(payroll_file(tmp_path / "f.xml", lines, employer_kind="household"))
    assert rules(errors) == [("PAY-R05", 2)]
    assert errors[0]["value"] == "net_salary=-5.00"  # shown in euros
    assert verdict.records_loaded == 1


def test_repeated_employee_keeps_the_first_line(tmp_path: Path) -> None:
    lines = [line(1), line(2), line(3, employee_id=line(1).employee_id)]
    verdict, errors = check(payroll_file(tmp_path / "f.xml", lines))
    assert rules(errors) == [("PAY-R01", 3)]
    assert verdict.records_loaded == 2


def test_repeated_employee_across_chunks_is_caught(tmp_path: Path) -> None:
    lines = [*four_lines(), line(5, employee_id=KNOWN_EMPLOYEES[0])]
    path = payroll_file(tmp_path / "f.xml", lines)
    verdict, errors = check_file(path, SETTINGS, "payroll", EMPLOYER, lookup, chunk_size=2)
    assert rules(errors) == [("PAY-R01", 5)]
    assert verdict.records_loaded == 4


def test_exactly_one_of_gross_and_net_is_a_contract_rule_too() -> None:
    """The XSD's choice already enforces it; the data contract says it again (PAY-R03)."""
    fmt = feed_formats(SETTINGS.formats_dir, "payroll")[0]
    contract = DataContract.load(SETTINGS.contracts_dir / "payroll" / "v1")
    check = _file_check(fmt, contract, EMPLOYER, lookup, SETTINGS)
    base = {
        "last_name": "X",
        "first_name": "Y",
        "hours_worked": 15167,
        "base_ccss": None,
        "base_car": None,
        "teleworking": None,
    }
    rows = [
        base | {"record_no": 1, "employee_id": "123456", "gross_salary": 100, "net_salary": 80},
        base | {"record_no": 2, "employee_id": "654321", "gross_salary": None, "net_salary": None},
        base | {"record_no": 3, "employee_id": "111111", "gross_salary": 100, "net_salary": None},
    ]
    schema = pa.schema(
        [("record_no", pa.int64()), ("line_no", pa.int64())]
        + [(f.name, pa.int64() if f.type == "cents" else pa.string()) for f in fmt.record.fields]
    )
    records = pa.Table.from_pylist([r | {"line_no": 0} for r in rows], schema=schema)
    violations = check.check_chunk(Chunk(records, None))
    assert sorted((v.rule, v.record_no) for v in violations) == [("PAY-R03", 1), ("PAY-R03", 2)]


@pytest.mark.parametrize(
    "salaries",
    ["<grossSalary>10.00</grossSalary><netSalary>8.00</netSalary>", ""],
    ids=["both", "neither"],
)
def test_schema_refuses_both_or_neither_salary(tmp_path: Path, salaries: str) -> None:
    path = payroll_file(tmp_path / "f.xml")
    text = path.read_text()
    path.write_text(text.replace("<grossSalary>3250.00</grossSalary>", salaries, 1))
    verdict, errors = check(path)
    assert (verdict.state, verdict.reason_code) == ("rejected", "SCHEMA_VIOLATION")
    assert errors[0]["record_no"] == 1 and errors[0]["record_id"] == line(1).employee_id


def test_company_may_not_declare_net_salaries(tmp_path: Path) -> None:
    lines = [line(1, gross_salary=None, net_salary=Decimal("1500.00"), base_ccss=None), line(2)]
    verdict, errors = check(payroll_file(tmp_path / "f.xml", lines, employer_kind="company"))
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F05")
    assert verdict.records_loaded == 0
    assert [(e["level"], e["value"]) for e in errors] == [("file", "employer_kind=company")]


@pytest.mark.parametrize("months_ago", [-1, 25, 120], ids=["next-month", "25-months", "10-years"])
def test_period_out_of_window_rejects_the_file(tmp_path: Path, months_ago: int) -> None:
    """The period may be this month at the latest (payroll is run before the month ends) and
    at most about 24 months old (its last day at most 730 days before today)."""
    path = payroll_file(tmp_path / "f.xml", period=period_months_ago(months_ago))
    verdict, errors = check(path)
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F04")
    assert errors[0]["field"] == "period"


@pytest.mark.parametrize("months_ago", [0, 1, 12, 23])
def test_periods_inside_the_window_are_accepted(tmp_path: Path, months_ago: int) -> None:
    verdict, errors = check(payroll_file(tmp_path / "f.xml", period=period_months_ago(months_ago)))
    assert errors == [] and verdict.state == "loaded"


@pytest.mark.parametrize(
    ("spoil", "rule"),
    [
        (
            lambda t: t.replace(
                "<employeeCount>2</employeeCount>", "<employeeCount>3</employeeCount>"
            ),
            "PAY-F02",
        ),
        (
            lambda t: t.replace(
                "<totalGross>6500.00</totalGross>", "<totalGross>6500.01</totalGross>"
            ),
            "PAY-F03",
        ),
    ],
    ids=["count", "total-gross"],
)
def test_trailer_mismatch_rejects_the_file(tmp_path: Path, spoil: Any, rule: str) -> None:
    path = payroll_file(tmp_path / "f.xml")
    path.write_text(spoil(path.read_text()))
    verdict, errors = check(path)
    assert (verdict.state, verdict.reason_code) == ("rejected", rule)
    assert verdict.records_loaded == 0
    assert [e["level"] for e in errors] == ["file"]


def test_net_lines_count_zero_in_the_total_gross(tmp_path: Path) -> None:
    lines = [line(1, gross_salary=None, net_salary=Decimal("1500.00"), base_ccss=None), line(2)]
    path = payroll_file(tmp_path / "f.xml", lines, employer_kind="household")
    assert "<totalGross>3250.00</totalGross>" in path.read_text()
    assert check(path)[0].state == "loaded"


def test_sender_must_be_the_delivering_account(tmp_path: Path) -> None:
    verdict, errors = check(payroll_file(tmp_path / "f.xml"), account="EMP002")
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F01")
    assert errors[0]["value"] == f"sender={EMPLOYER}"


def test_unknown_employer_is_rejected(tmp_path: Path) -> None:
    path = payroll_file(tmp_path / "f.xml", sender="EMP999")
    verdict, errors = check(path, account="EMP999")
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F07")
    assert errors[0]["value"] == "sender=EMP999"


def test_declaration_without_employees_is_rejected(tmp_path: Path) -> None:
    verdict, _ = check(payroll_file(tmp_path / "f.xml", []))
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F06")


def test_latin1_declared_utf8_is_refused(tmp_path: Path) -> None:
    path = payroll_file(tmp_path / "f.xml", [line(1, last_name="Ferrié"), line(2)])
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    verdict, errors = check(path)
    assert (verdict.state, verdict.reason_code) == ("rejected", "ENCODING")
    assert "0xe9" in errors[0]["message"]


def test_offline_check_skips_registry_rules(tmp_path: Path) -> None:
    lines = [line(1, employee_id="999999"), line(2)]
    path = payroll_file(tmp_path / "f.xml", lines)
    verdict, errors = check_file(path, SETTINGS, "payroll", None, None)
    assert verdict.state == "loaded" and errors == []
