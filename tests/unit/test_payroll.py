"""Gross from net and contributions: domain.md's worked examples and properties over every
documented rate period."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edihub.payroll.gross_net import contributions, gross_from_net, net_from_gross
from edihub.payroll.rates import last_day, parameters_for, rate_table

# Every month from the first documented value to a year past the last one.
PERIODS = [f"{y}-{m:02d}" for y in range(2015, 2027) for m in range(1, 13)]
CENTS = st.integers(min_value=0, max_value=5_000_000).map(lambda c: Decimal(c) / 100)


@pytest.mark.parametrize(
    ("net", "gross"), [("2000", "2305.69"), ("5000", "5892.22"), ("8000", "9316.40")]
)
def test_domain_worked_examples(net: str, gross: str) -> None:
    """domain.md §1.4, 2024-25 parameters (TA 3,947; CAR 6,028; AC 15,700)."""
    p = parameters_for("2025-09")
    assert gross_from_net(Decimal(net), p) == Decimal(gross)


def test_below_the_first_ceiling_gross_is_net_over_the_rate() -> None:
    p = parameters_for("2025-09")
    assert gross_from_net(Decimal("1000"), p) == (Decimal("1000") / Decimal("0.86742")).quantize(
        Decimal("0.01")
    )


@settings(max_examples=400, deadline=None)
@given(period=st.sampled_from(PERIODS), gross=CENTS)
def test_gross_net_gross_round_trips_to_the_cent(period: str, gross: Decimal) -> None:
    p = parameters_for(period)
    net = net_from_gross(gross, p)
    back = gross_from_net(net, p)
    assert net_from_gross(back, p) == net
    assert abs(back - gross) <= Decimal("0.01")


@settings(max_examples=300, deadline=None)
@given(period=st.sampled_from(PERIODS), a=CENTS, b=CENTS)
def test_net_never_falls_when_gross_rises(period: str, a: Decimal, b: Decimal) -> None:
    p = parameters_for(period)
    low, high = sorted((a, b))
    assert net_from_gross(low, p) <= net_from_gross(high, p)


def test_rates_in_force_on_the_last_day_of_the_period() -> None:
    assert last_day("2024-09").isoformat() == "2024-09-30"
    assert parameters_for("2024-09")["car_ceiling"] == Decimal("5840")
    assert parameters_for("2024-10")["car_ceiling"] == Decimal("6028")
    assert parameters_for("2023-12")["supp_t1_employee_rate"] == Decimal("0.0401")
    assert parameters_for("2024-01")["supp_t1_employee_rate"] == Decimal("0.04008")


def test_undocumented_periods_are_flagged_as_assumed() -> None:
    early = parameters_for("2016-12")
    assert "car_ceiling" in early.assumed and "ccss_ceiling" in early.assumed
    assert "pmss" not in early.assumed
    assert "rivermate" in parameters_for("2025-11").sources["car_ceiling"]


def test_every_rate_row_names_its_source() -> None:
    assert all(rate.source for rate in rate_table())


def test_contributions_add_up() -> None:
    p = parameters_for("2025-09")
    c = contributions(Decimal("5892.22"), p)
    assert c.net == Decimal("5000.00")
    assert c.gross - c.employee_total == c.net
    # Unemployment insurance is rounded to the euro in total.
    assert (c.ac_employer + c.ac_employee) % 1 == 0


def test_household_employer_pays_ccss_on_a_third() -> None:
    p = parameters_for("2024-03")
    c = contributions(Decimal("2000.00"), p, household_reduced_base=True)
    assert c.ccss_base == Decimal("660.00")
    assert c.ccss_employer == Decimal("88.11")  # 13.35 % of 660


def test_negative_net_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        gross_from_net(Decimal("-1"), parameters_for("2025-09"))
