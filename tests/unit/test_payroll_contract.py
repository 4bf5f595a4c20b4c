"""The payroll data contracts (contracts/payroll/v1, v2) rule by rule, and what the XSD refuses.

Registry rules are checked against a dict standing in for the registry lookup here; the
integration tests run the same rules against PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from lxml import etree

from edihub.config import Settings
from edihub.contracts.engine import DataContract
from edihub.formats.contract import feed_formats
from edihub.formats.xml_engine import Chunk
from edihub.payroll_writer import write_payroll_file
from edihub.validation import check_file, make_file_check
from tests.fixtures.lookup import DictLookup
from tests.fixtures.payroll import (
    EMPLOYER,
    GROSS,
    KNOWN_EMPLOYEES,
    PAPER_ACCOUNT,
    PAPER_EMPLOYER,
    line,
    payroll_file,
    period_months_ago,
)

SETTINGS = Settings.from_env()
REGISTRY = {
    ("edi.registry_employer", "employer_id"): {EMPLOYER, "EMP002", PAPER_EMPLOYER},
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
    check = make_file_check(fmt, contract, EMPLOYER, lookup, SETTINGS)
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


# ---------------------------------------------------------------- v2: the employer apart from
# the sender, and the paper channel


def paper_file(path: Path, **changes: Any) -> Path:
    """A v2 declaration the funds' staff keyed in from paper for a household employer."""
    values: dict[str, Any] = {
        "sender": PAPER_ACCOUNT,
        "employer": PAPER_EMPLOYER,
        "channel": "paper",
        "employer_kind": "household",
        "version": 2,
    }
    return payroll_file(path, **(values | changes))


def file_rule_checks(verdict: Any) -> dict[str, tuple[int, int]]:
    """rule -> (rows checked, rows failed) of the file-level rules that ran."""
    return {
        r["rule"]: (r["checked"], r["failed"]) for r in verdict.rule_results if r["table"] == "file"
    }


def test_v2_employer_sending_its_own_declaration_is_accepted(tmp_path: Path) -> None:
    path = payroll_file(tmp_path / "f.xml", four_lines(), version=2)
    assert "<employer>EMP001</employer>" in path.read_text()
    verdict, errors = check(path)
    assert errors == []
    assert (verdict.state, verdict.format_version, verdict.records_loaded) == ("loaded", "2", 4)
    assert (verdict.header["employer"], verdict.header["channel"]) == (EMPLOYER, "electronic")


def test_v2_paper_declaration_from_the_paper_account_is_accepted(tmp_path: Path) -> None:
    lines = [line(1, gross_salary=None, net_salary=Decimal("1500.00"), base_ccss=None), line(2)]
    verdict, errors = check(paper_file(tmp_path / "f.xml", lines=lines), account=PAPER_ACCOUNT)
    assert errors == [] and verdict.state == "loaded"
    assert (verdict.header["sender"], verdict.header["employer"]) == (PAPER_ACCOUNT, PAPER_EMPLOYER)


def test_v2_electronic_declaration_for_another_employer_is_rejected(tmp_path: Path) -> None:
    path = payroll_file(tmp_path / "f.xml", version=2, employer="EMP002")
    verdict, errors = check(path)
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F08")
    assert verdict.records_loaded == 0
    assert [(e["level"], e["field"], e["value"]) for e in errors] == [
        ("file", "employer", f"employer=EMP002; sender={EMPLOYER}")
    ]


def test_v2_paper_declaration_from_an_employer_account_is_rejected(tmp_path: Path) -> None:
    """An employer may not pass its own file off as keyed in by the funds (nor send for
    another employer that way)."""
    for employer in (EMPLOYER, "EMP002"):
        path = paper_file(tmp_path / "f.xml", sender=EMPLOYER, employer=employer)
        verdict, errors = check(path, account=EMPLOYER)
        assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F09"), employer
        assert [(e["field"], e["value"]) for e in errors] == [("sender", f"sender={EMPLOYER}")]


def test_v2_channel_rules_are_checked_on_their_channel_only(tmp_path: Path) -> None:
    """GX honours the row_condition of both rule types used: PAY-F08
    (expect_column_pair_values_to_be_equal) checks electronic declarations only, PAY-F09
    (expect_column_values_to_be_in_set) paper ones only. Without the condition the paper
    declaration, whose employer is not its sender, would fail PAY-F08."""
    electronic, _ = check(payroll_file(tmp_path / "e.xml", version=2))
    paper, _ = check(paper_file(tmp_path / "p.xml"), account=PAPER_ACCOUNT)
    assert electronic.state == paper.state == "loaded"
    assert {k: file_rule_checks(electronic)[k] for k in ("PAY-F08", "PAY-F09")} == {
        "PAY-F08": (1, 0),
        "PAY-F09": (0, 0),
    }
    assert {k: file_rule_checks(paper)[k] for k in ("PAY-F08", "PAY-F09")} == {
        "PAY-F08": (0, 0),
        "PAY-F09": (1, 0),
    }


def test_v2_paper_senders_come_from_the_setting(tmp_path: Path) -> None:
    settings = dataclasses.replace(SETTINGS, paper_senders=("CSMGUICHET",))
    path = paper_file(tmp_path / "f.xml")
    verdict, _ = check_file(path, settings, "payroll", PAPER_ACCOUNT, lookup)
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F09")
    other = paper_file(tmp_path / "g.xml", sender="CSMGUICHET")
    assert check_file(other, settings, "payroll", "CSMGUICHET", lookup)[0].state == "loaded"


def test_paper_senders_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().paper_senders == ("CSMSAISIE",)
    assert Settings.from_env().for_contracts["paper_senders"] == ["CSMSAISIE"]
    monkeypatch.setenv("EDIHUB_PAPER_SENDERS", "CSMSAISIE, CSMGUICHET")
    assert Settings.from_env().paper_senders == ("CSMSAISIE", "CSMGUICHET")


def test_default_paper_sender_is_a_valid_header_sender() -> None:
    """A paper account the XSD refused as a sender could never send a paper declaration."""
    xsd = etree.parse(str(SETTINGS.formats_dir / "payroll" / "v2" / "payroll.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    [pattern] = xsd.xpath("//xs:simpleType[@name='PartnerId']//xs:pattern/@value", namespaces=ns)
    [sender] = xsd.xpath("//xs:element[@name='sender']/@type", namespaces=ns)
    assert sender == "PartnerId"
    assert all(re.fullmatch(pattern, s) for s in Settings.from_env().paper_senders)


@pytest.mark.parametrize(
    ("sender", "channel"),
    [(PAPER_ACCOUNT, "paper"), ("EMP999", "electronic")],
    ids=["paper", "electronic"],
)
def test_v2_unknown_employer_is_rejected(tmp_path: Path, sender: str, channel: str) -> None:
    """The registry is asked about the header's employer, not the sender: a paper account
    is no employer, and an employer unknown to the funds is refused whoever sends for it."""
    path = paper_file(tmp_path / "f.xml", sender=sender, employer="EMP999", channel=channel)
    verdict, errors = check(path, account=sender)
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F07")
    assert [(e["field"], e["value"]) for e in errors] == [("employer", "employer=EMP999")]


def test_v2_paper_account_is_not_an_employer(tmp_path: Path) -> None:
    path = payroll_file(tmp_path / "f.xml", sender=PAPER_ACCOUNT, version=2)
    verdict, errors = check(path, account=PAPER_ACCOUNT)
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F07")
    assert errors[0]["value"] == f"employer={PAPER_ACCOUNT}"


def test_v2_sender_must_be_the_delivering_account(tmp_path: Path) -> None:
    verdict, errors = check(paper_file(tmp_path / "f.xml"), account="CSMAUTRE")
    assert (verdict.state, verdict.reason_code) == ("rejected", "PAY-F01")
    assert errors[0]["value"] == f"sender={PAPER_ACCOUNT}"


def test_v2_schema_requires_the_employer(tmp_path: Path) -> None:
    path = payroll_file(tmp_path / "f.xml", version=2)
    path.write_text(path.read_text().replace(f"<employer>{EMPLOYER}</employer>", ""))
    verdict, _ = check(path)
    assert (verdict.state, verdict.reason_code) == ("rejected", "SCHEMA_VIOLATION")


def test_v2_schema_refuses_an_unknown_channel(tmp_path: Path) -> None:
    verdict, _ = check(payroll_file(tmp_path / "f.xml", version=2, channel="fax"))
    assert (verdict.state, verdict.reason_code) == ("rejected", "SCHEMA_VIOLATION")


def test_v1_and_v2_are_told_apart_by_namespace(tmp_path: Path) -> None:
    """Both versions are accepted side by side; v1 keeps its rules (its sender is the
    employer) and its files no employer element."""
    v1 = payroll_file(tmp_path / "v1.xml")
    assert "<employer>" not in v1.read_text()
    assert check(v1)[0].format_version == "1"
    v2 = payroll_file(tmp_path / "v2.xml", version=2)
    assert check(v2)[0].format_version == "2"
    # a v2 header in a v1 namespace is a schema error, not a v2 file
    v2.write_text(v2.read_text().replace("payroll:v2", "payroll:v1"))
    assert check(v2)[0].reason_code == "SCHEMA_VIOLATION"


def test_the_writer_refuses_an_employer_in_v1(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="v1 has no employer"):
        write_payroll_file(
            tmp_path / "f.xml", EMPLOYER, "1", "2026-10", [], dt.datetime(2026, 11, 2), employer="X"
        )


def test_v2_line_may_give_the_net_beside_the_gross(tmp_path: Path) -> None:
    lines = four_lines({"net_salary": Decimal("2500.00")})  # a company's payroll software
    verdict, errors = check(payroll_file(tmp_path / "f.xml", lines, version=2))
    assert (verdict.state, errors) == ("loaded", [])


@pytest.mark.parametrize(
    ("third", "rule"),
    [
        ({"net_salary": GROSS + Decimal("0.01")}, "PAY-R08"),
        ({"gross_salary": None, "base_ccss": None}, "PAY-R03"),
    ],
    ids=["net-above-gross", "neither"],
)
def test_v2_salary_rules_reject_the_line(tmp_path: Path, third: dict[str, Any], rule: str) -> None:
    verdict, errors = check(payroll_file(tmp_path / "f.xml", four_lines(third), version=2))
    assert (verdict.state, verdict.records_loaded) == ("loaded_with_errors", 3)
    assert rules(errors) == [(rule, 3)]
