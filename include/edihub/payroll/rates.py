"""Contribution rates and ceilings, effective-dated, from ``reference/payroll_rates.csv``.

Each row has its source. The rule of the funds (domain.md §1.1): the rates and ceilings in
force on the **last day of the period** apply. A period before a parameter's first documented
value takes that first value and is flagged as assumed, as are rows the sources leave
unconfirmed.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Rate:
    parameter: str
    valid_from: dt.date
    value: Decimal
    source: str
    assumed: bool


@dataclass(frozen=True)
class Parameters:
    """Every parameter in force on ``on``; ``assumed`` names those not documented for it."""

    on: dt.date
    values: dict[str, Decimal]
    sources: dict[str, str]
    assumed: frozenset[str] = field(default_factory=frozenset)

    def __getitem__(self, name: str) -> Decimal:
        return self.values[name]


@cache
def rate_table() -> tuple[Rate, ...]:
    text = (resources.files("edihub") / "reference" / "payroll_rates.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(
        sorted(
            (
                Rate(
                    parameter=r["parameter"],
                    valid_from=dt.date.fromisoformat(r["valid_from"]),
                    value=Decimal(r["value"]),
                    source=r["source"],
                    assumed=r["assumed"] == "yes",
                )
                for r in rows
            ),
            key=lambda rate: (rate.parameter, rate.valid_from),
        )
    )


def last_day(period: str) -> dt.date:
    """``YYYY-MM`` -> the last day of that month."""
    year, month = map(int, period.split("-"))
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def parameters_for(period: str) -> Parameters:
    on = last_day(period)
    values: dict[str, Decimal] = {}
    sources: dict[str, str] = {}
    assumed: set[str] = set()
    by_name: dict[str, list[Rate]] = {}
    for rate in rate_table():
        by_name.setdefault(rate.parameter, []).append(rate)
    for name, rates in by_name.items():
        in_force = [r for r in rates if r.valid_from <= on]
        chosen = in_force[-1] if in_force else rates[0]
        values[name], sources[name] = chosen.value, chosen.source
        if chosen.assumed or not in_force:
            assumed.add(name)
    return Parameters(on=on, values=values, sources=sources, assumed=frozenset(assumed))
