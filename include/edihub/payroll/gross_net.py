"""Gross salary from net, and the contributions due to each fund (domain.md §1.1-1.4).

Employee deductions are piecewise linear in the gross G:

    ded(G) = CAR_ee·min(G, CAR ceiling) + AC_ee·min(G, AC ceiling)
           + supp_T1_ee·min(G, TA) + supp_T2_ee·clamp(G − TA, 0, 7·TA)

so net(G) = G − ded(G) is strictly increasing and is inverted segment by segment between the
breakpoints, exactly, in Decimal; the result is rounded to the cent and re-checked forward.
AGIRC-ARRCO's CET (0.14 %, due only above the PMSS) is left out: it would make net fall at the
PMSS and the inverse ambiguous; the funds' text on net declarations is not public (domain.md §6).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from edihub.payroll.rates import Parameters

CENT = Decimal("0.01")
EURO = Decimal("1")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(value, high))


def employee_deductions(gross: Decimal, p: Parameters) -> Decimal:
    ta = p["tranche_a_ceiling"]
    return (
        p["car_employee_rate"] * min(gross, p["car_ceiling"])
        + p["ac_employee_rate"] * min(gross, p["ac_ceiling"])
        + p["supp_t1_employee_rate"] * min(gross, ta)
        + p["supp_t2_employee_rate"] * _clamp(gross - ta, Decimal(0), 7 * ta)
    )


def net_from_gross(gross: Decimal, p: Parameters) -> Decimal:
    """The net pay of a gross salary, to the cent."""
    return _cents(gross - employee_deductions(gross, p))


def gross_from_net(net: Decimal, p: Parameters) -> Decimal:
    """The gross salary whose net pay is ``net``, to the cent.

    Of the gross amounts whose net rounds to ``net`` (slopes below 1 can give two), the one
    nearest the exact inverse is returned.
    """
    if net < 0:
        raise ValueError(f"net salary {net} is negative")
    ta = p["tranche_a_ceiling"]
    points = sorted({Decimal(0), ta, p["car_ceiling"], p["ac_ceiling"], 8 * ta})
    # Past the last ceiling nothing more is deducted: one more point far enough out.
    points.append(points[-1] + net + 1)

    def exact_net(g: Decimal) -> Decimal:
        return g - employee_deductions(g, p)

    low, high = next(
        (a, b) for a, b in itertools.pairwise(points) if exact_net(a) <= net <= exact_net(b)
    )
    slope = (exact_net(high) - exact_net(low)) / (high - low)
    exact = low + (net - exact_net(low)) / slope
    candidates = [_cents(exact) + k * CENT for k in (-2, -1, 0, 1, 2)]
    matching = [g for g in candidates if g >= 0 and net_from_gross(g, p) == net]
    if not matching:
        raise ArithmeticError(f"no gross salary gives the net {net} exactly to the cent")
    return min(matching, key=lambda g: abs(g - exact))


@dataclass(frozen=True)
class Contributions:
    """What a month's gross salary costs, per fund, to the cent (AC to the euro)."""

    gross: Decimal
    net: Decimal
    ccss_base: Decimal
    ccss_employer: Decimal
    car_employer: Decimal
    car_employee: Decimal
    ac_employer: Decimal
    ac_employee: Decimal
    supplementary_employer: Decimal
    supplementary_employee: Decimal

    @property
    def employer_total(self) -> Decimal:
        return (
            self.ccss_employer
            + self.car_employer
            + self.ac_employer
            + (self.supplementary_employer)
        )

    @property
    def employee_total(self) -> Decimal:
        return self.car_employee + self.ac_employee + self.supplementary_employee


def contributions(
    gross: Decimal,
    p: Parameters,
    household_reduced_base: bool = False,
) -> Contributions:
    """Dues on ``gross``. A household employer of at most two employees working under the
    hour limit in total pays CCSS on 33 % of the gross (domain.md §1.3)."""
    ta = p["tranche_a_ceiling"]
    t1, t2 = min(gross, ta), _clamp(gross - ta, Decimal(0), 7 * ta)
    if household_reduced_base:
        ccss_base = _cents(gross * p["household_ccss_base_ratio"])
        ccss_rate = p["household_ccss_rate"]
    else:
        ccss_base, ccss_rate = gross, p["ccss_employer_rate"]
    ccss_base = min(ccss_base, p["ccss_ceiling"])
    ac_base = min(gross, p["ac_ceiling"])
    # The funds round the unemployment contribution to the euro (domain.md §1.1).
    ac_total = (ac_base * (p["ac_employer_rate"] + p["ac_employee_rate"])).quantize(
        EURO, rounding=ROUND_HALF_UP
    )
    ac_employee = _cents(ac_base * p["ac_employee_rate"])
    return Contributions(
        gross=gross,
        net=net_from_gross(gross, p),
        ccss_base=ccss_base,
        ccss_employer=_cents(ccss_base * ccss_rate),
        car_employer=_cents(min(gross, p["car_ceiling"]) * p["car_employer_rate"]),
        car_employee=_cents(min(gross, p["car_ceiling"]) * p["car_employee_rate"]),
        ac_employer=ac_total - ac_employee,
        ac_employee=ac_employee,
        supplementary_employer=_cents(
            t1 * p["supp_t1_employer_rate"] + t2 * p["supp_t2_employer_rate"]
        ),
        supplementary_employee=_cents(
            t1 * p["supp_t1_employee_rate"] + t2 * p["supp_t2_employee_rate"]
        ),
    )
