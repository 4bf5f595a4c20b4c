"""The payroll feed (XML, no child records) through the same collection, on the real servers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edihub.payroll.gross_net import contributions, gross_from_net
from edihub.payroll.rates import parameters_for
from tests.fixtures.hub import ACK_NS, Hub, ack_status, make_hub
from tests.fixtures.payroll import (
    EMPLOYER,
    PAPER_ACCOUNT,
    PAPER_EMPLOYER,
    line,
    payroll_file,
    period_months_ago,
)
from tests.fixtures.registry import seed_registry


@pytest.fixture
def hub(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, EMPLOYER, dsn, tmp_path / "state", "payroll")


@pytest.fixture
def paper(hub: Hub) -> Hub:
    """The funds' paper-keying account on the same hub (registry seeded by ``hub``)."""
    return make_hub(hub.server, PAPER_ACCOUNT, hub.dsn, hub.settings.state_dir, "payroll")


def test_clean_declaration_is_loaded(hub: Hub, tmp_path: Path) -> None:
    hub.send(payroll_file(tmp_path / "DSM_1.xml"))
    hub.collect()
    assert hub.files() == [("DSM_1.xml", "loaded", None, 2, True, True)]
    assert hub.query(
        "SELECT sender, employee_id, record_no, last_name, hours_worked, gross_salary,"
        " net_salary, base_ccss, base_car, teleworking"
        " FROM edi.payroll_salary_line ORDER BY record_no"
    ) == [
        (EMPLOYER, "654321", 1, "Employee1", 15167, 325000, None, 325000, 325000, False),
        (EMPLOYER, "123456", 2, "Employee2", 15167, 325000, None, 325000, 325000, True),
    ]
    assert ack_status(hub.ack("DSM_1.xml")) == ("accepted", "A")


def test_household_net_salary_is_loaded(hub: Hub, tmp_path: Path) -> None:
    lines = [
        line(1, gross_salary=None, net_salary=Decimal("1500.00"), base_ccss=None, base_car=None),
        line(2, teleworking=None),
    ]
    hub.send(payroll_file(tmp_path / "DSM_2.xml", lines, employer_kind="household"))
    hub.collect()
    assert [(s, loaded) for _, s, _, loaded, *_ in hub.files()] == [("loaded", 2)]
    assert hub.query(
        "SELECT employee_id, gross_salary, net_salary, base_ccss, teleworking"
        " FROM edi.payroll_salary_line ORDER BY record_no"
    ) == [("654321", None, 150000, None, False), ("123456", 325000, None, 325000, None)]


def test_record_rules_reject_the_line_only(hub: Hub, tmp_path: Path) -> None:
    lines = [
        line(1),
        line(2, employee_id="999999"),
        line(3, employee_id="123456", gross_salary=Decimal("-1.00"), base_ccss=None),
        line(4, employee_id="654321"),
    ]
    hub.send(payroll_file(tmp_path / "DSM_3.xml", lines))
    hub.collect()
    [(_, state, _, loaded, *_)] = hub.files()
    assert (state, loaded) == ("loaded_with_errors", 1)
    errors = {
        (e.get("record"), e.get("rule"))
        for e in hub.ack("DSM_3.xml").iterfind(".//a:error", ACK_NS)
    }
    assert errors == {("2", "PAY-R02"), ("3", "PAY-R04"), ("4", "PAY-R01")}
    assert hub.query("SELECT employee_id FROM edi.payroll_salary_line") == [("654321",)]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {
                "lines": [line(1, gross_salary=None, net_salary=Decimal("9.00"), base_ccss=None)],
                "employer_kind": "company",
            },
            "PAY-F05",
        ),
        ({"period": period_months_ago(-1)}, "PAY-F04"),
        ({"sender": "EMP002"}, "PAY-F01"),
    ],
    ids=["company-net", "future-period", "other-sender"],
)
def test_file_rules_reject_the_whole_declaration(
    hub: Hub, tmp_path: Path, kwargs: dict[str, Any], reason: str
) -> None:
    hub.send(payroll_file(tmp_path / "DSM_4.xml", **kwargs))
    hub.collect()
    assert [(s, r) for _, s, r, *_ in hub.files()] == [("rejected", reason)]
    assert hub.query("SELECT count(*) FROM edi.payroll_salary_line") == [(0,)]
    assert hub.inbox() == []
    error = hub.ack("DSM_4.xml").find("a:errors/a:error", ACK_NS)
    assert error.get("rule") == reason and error.text


def test_both_salaries_is_a_schema_violation(hub: Hub, tmp_path: Path) -> None:
    path = payroll_file(tmp_path / "DSM_5.xml")
    text = path.read_text()
    path.write_text(text.replace("</grossSalary>", "</grossSalary><netSalary>1.00</netSalary>", 1))
    hub.send(path)
    hub.collect()
    assert [(s, r) for _, s, r, *_ in hub.files()] == [("rejected", "SCHEMA_VIOLATION")]


def test_each_month_is_a_new_declaration_of_the_same_employees(hub: Hub, tmp_path: Path) -> None:
    hub.send(payroll_file(tmp_path / "a.xml", period=period_months_ago(2)))
    hub.collect()
    hub.send(payroll_file(tmp_path / "b.xml", batch="000002", period=period_months_ago(1)))
    hub.collect()
    assert [(s, loaded) for _, s, _, loaded, *_ in hub.files()] == [("loaded", 2), ("loaded", 2)]
    assert hub.query(
        "SELECT employee_id, count(DISTINCT file_id) FROM edi.payroll_salary_line"
        " GROUP BY employee_id ORDER BY employee_id"
    ) == [("123456", 2), ("654321", 2)]


def test_the_hub_computes_gross_and_dues_when_the_declaration_loads(
    hub: Hub, tmp_path: Path
) -> None:
    """A household with one part-time employee declared net: the hub finds the gross that
    gives that net under the period's rates, and CCSS is due on a third of it."""
    period = period_months_ago(1)
    p = parameters_for(period)
    lines = [line(1, hours_worked=Decimal("86.67"), gross_salary=None,
                  net_salary=Decimal("1200.00"), base_ccss=None, base_car=None)]  # fmt: skip
    hub.send(payroll_file(tmp_path / "DSM_3.xml", lines, employer_kind="household", period=period))
    hub.collect()
    [(gross, net, computed, ccss_base, ccss, employee_total)] = hub.query(
        "SELECT gross, net, gross_computed, ccss_base, ccss_employer,"
        " car_employee + ac_employee + supplementary_employee FROM edi.payroll_contribution"
    )
    expected = gross_from_net(Decimal("1200.00"), p)
    assert (Decimal(gross) / 100, net, computed) == (expected, 120000, True)
    assert gross - employee_total == net
    dues = contributions(expected, p, household_reduced_base=True)
    assert (Decimal(ccss_base) / 100, Decimal(ccss) / 100) == (dues.ccss_base, dues.ccss_employer)
    assert dues.ccss_base == (expected * Decimal("0.33")).quantize(Decimal("0.01"))


def test_a_company_pays_ccss_on_the_whole_declared_gross(hub: Hub, tmp_path: Path) -> None:
    period = period_months_ago(1)
    hub.send(payroll_file(tmp_path / "DSM_4.xml", [line(1)], period=period))
    hub.collect()
    [(gross, computed, ccss_base)] = hub.query(
        "SELECT gross, gross_computed, ccss_base FROM edi.payroll_contribution"
    )
    ceiling = int(parameters_for(period)["ccss_ceiling"] * 100)
    assert not computed and ccss_base == min(gross, ceiling)


def household_documents(hub: Hub, folder: str, employee: str) -> str:
    """The payslip of ``employee``, as the partner reads it in ``folder``, once checked that
    the folder holds it and the contribution summary, and nothing else."""
    with hub.server.connect(hub.partner) as sftp:
        assert sorted(sftp.listdir(folder)) == [
            f"bulletin_{employee}.html",
            "recapitulatif_cotisations.html",
        ]
        with sftp.open(f"{folder}/bulletin_{employee}.html") as fh:
            return fh.read().decode("utf-8")


def test_a_household_employer_gets_payslips_and_a_summary(hub: Hub, tmp_path: Path) -> None:
    period = period_months_ago(1)
    lines = [line(1, last_name="O'<Brien>", gross_salary=None, net_salary=Decimal("1200.00"),
                  hours_worked=Decimal("86.67"), base_ccss=None, base_car=None)]  # fmt: skip
    hub.send(payroll_file(tmp_path / "DSM_5.xml", lines, employer_kind="household", period=period))
    hub.collect()
    [(employee,)] = hub.query("SELECT employee_id FROM edi.payroll_salary_line")
    payslip = household_documents(hub, f"/outbound/payroll/{period}", employee)
    assert "1\u202f200.00 €" in payslip  # the net declared
    assert "base 33 %" in payslip and "calculé à partir du net déclaré" in payslip
    assert "&lt;Brien&gt;" in payslip and "<Brien>" not in payslip


def test_companies_get_no_payslips_from_the_hub(hub: Hub, tmp_path: Path) -> None:
    hub.send(payroll_file(tmp_path / "DSM_6.xml", [line(1)], period=period_months_ago(1)))
    hub.collect()
    with hub.server.connect(hub.partner) as sftp:
        assert sftp.listdir("/outbound/payroll") == []


# ---------------------------------------------------------------- v2: the paper channel


def test_a_paper_declaration_is_loaded_as_the_employers(paper: Hub, tmp_path: Path) -> None:
    """The funds' staff key in a household employer's paper declaration and send it from
    their own account: the lines and the dues are the employer's, and the payslips go to the
    paper account's folder for that employer, for the mail room to print and post."""
    period = period_months_ago(1)
    lines = [line(1, gross_salary=None, net_salary=Decimal("1200.00"),
                  hours_worked=Decimal("86.67"), base_ccss=None, base_car=None)]  # fmt: skip
    path = payroll_file(tmp_path / "DSM_P1.xml", lines, sender=PAPER_ACCOUNT,
                        employer=PAPER_EMPLOYER, channel="paper", employer_kind="household",
                        period=period, version=2)  # fmt: skip
    paper.send(path)
    paper.collect()
    assert paper.files() == [("DSM_P1.xml", "loaded", None, 1, True, True)]
    assert ack_status(paper.ack("DSM_P1.xml")) == ("accepted", "A")
    [(employee,)] = paper.query("SELECT employee_id FROM edi.payroll_salary_line")
    assert paper.query("SELECT sender, employer_id FROM edi.payroll_salary_line") == [
        (PAPER_ACCOUNT, PAPER_EMPLOYER)
    ]
    assert paper.query(
        "SELECT sender, employer_id, period, gross_computed FROM edi.payroll_contribution"
    ) == [(PAPER_ACCOUNT, PAPER_EMPLOYER, period, True)]
    assert paper.query(
        "SELECT employer_id, sender, channel, period, employer_kind, lines"
        " FROM edi.payroll_declaration"
    ) == [(PAPER_EMPLOYER, PAPER_ACCOUNT, "paper", period, "household", 1)]
    with paper.server.connect(paper.partner) as sftp:
        assert sftp.listdir(f"/outbound/payroll/{period}") == [PAPER_EMPLOYER]
    payslip = household_documents(paper, f"/outbound/payroll/{period}/{PAPER_EMPLOYER}", employee)
    assert f"<strong>{PAPER_EMPLOYER}</strong>" in payslip
    assert PAPER_ACCOUNT not in payslip  # the payslip is the employer's, not the funds'


@pytest.mark.parametrize(
    ("account", "kwargs", "reason"),
    [
        (EMPLOYER, {"employer": "EMP002"}, "PAY-F08"),
        (EMPLOYER, {"employer": "EMP002", "channel": "paper"}, "PAY-F09"),
        (PAPER_ACCOUNT, {"employer": "EMP999", "channel": "paper"}, "PAY-F07"),
    ],
    ids=["electronic-for-another", "paper-from-an-employer", "unknown-employer"],
)
def test_v2_file_rules_reject_the_whole_declaration(
    hub: Hub, paper: Hub, tmp_path: Path, account: str, kwargs: dict[str, Any], reason: str
) -> None:
    sender = hub if account == EMPLOYER else paper
    path = payroll_file(tmp_path / "DSM_7.xml", sender=account, version=2, **kwargs)
    sender.send(path)
    sender.collect()
    assert [(s, r) for _, s, r, *_ in sender.files()] == [("rejected", reason)]
    assert sender.query("SELECT count(*) FROM edi.payroll_salary_line") == [(0,)]
    assert sender.query("SELECT count(*) FROM edi.payroll_declaration") == [(0,)]
    error = sender.ack("DSM_7.xml").find("a:errors/a:error", ACK_NS)
    assert error.get("rule") == reason and error.text


def test_v1_and_v2_declarations_load_side_by_side(hub: Hub, tmp_path: Path) -> None:
    """An employer may send v1 or v2; either way the lines, the dues and the payslips are
    its own, in its own folder as before."""
    household = {"employer_kind": "household", "lines": [line(1)]}
    hub.send(payroll_file(tmp_path / "v1.xml", period=period_months_ago(2), **household))
    hub.send(payroll_file(tmp_path / "v2.xml", batch="000002", period=period_months_ago(1),
                          version=2, **household))  # fmt: skip
    hub.collect()
    assert sorted((name, s) for name, s, *_ in hub.files()) == [
        ("v1.xml", "loaded"),
        ("v2.xml", "loaded"),
    ]
    assert hub.query(
        "SELECT DISTINCT l.employer_id, c.employer_id FROM edi.payroll_salary_line l"
        " JOIN edi.payroll_contribution c USING (file_id, employee_id)"
    ) == [(EMPLOYER, EMPLOYER)]
    assert hub.query(
        "SELECT employer_id, sender, channel, period, lines FROM edi.payroll_declaration"
        " ORDER BY period"
    ) == [
        (EMPLOYER, EMPLOYER, "electronic", period_months_ago(2), 1),
        (EMPLOYER, EMPLOYER, "electronic", period_months_ago(1), 1),
    ]
    with hub.server.connect(hub.partner) as sftp:
        for months in (1, 2):
            files = sftp.listdir(f"/outbound/payroll/{period_months_ago(months)}")
            assert "recapitulatif_cotisations.html" in files


def test_v2_a_net_above_the_gross_rejects_its_line(hub: Hub, tmp_path: Path) -> None:
    lines = [
        line(1, net_salary=Decimal("2500.00")),  # the net the payslip shows, beside the gross
        line(2, net_salary=Decimal("3250.01")),  # above the gross: PAY-R08
    ]
    hub.send(payroll_file(tmp_path / "DSM_v2.xml", lines, version=2))
    hub.collect()
    assert [(s, n) for _, s, _, n, *_ in hub.files()] == [("loaded_with_errors", 1)]
    assert {
        (e.get("record"), e.get("rule"))
        for e in hub.ack("DSM_v2.xml").iterfind(".//a:error", ACK_NS)
    } == {("2", "PAY-R08")}
    # the dues of the line kept come from its declared gross
    assert hub.query(
        "SELECT l.gross_salary, l.net_salary, c.gross, c.gross_computed"
        " FROM edi.payroll_salary_line l JOIN edi.payroll_contribution c"
        " USING (file_id, employee_id)"
    ) == [(325000, 250000, 325000, False)]
