"""Reimbursement rates, effective-dated, from ``reference/reimbursement_rates.csv``.

The CSV is the reference: reviewed like code, a source per row, an ``assumed`` flag where no
Monaco source confirms the rate (domain.md §6). Pricing is one SQL statement over thousands of
lines, so the rows are copied into ``edi.reimbursement_rate`` before each adjudication, in the
same transaction, and every priced line records the rate and the row it came from.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

import psycopg2.extensions
import psycopg2.extras


@dataclass(frozen=True)
class ReimbursementRate:
    claim_kind: str
    category: str
    exemption: bool
    valid_from: dt.date
    valid_to: dt.date | None
    rate_percent: Decimal
    source: str
    assumed: bool


@cache
def rate_table() -> tuple[ReimbursementRate, ...]:
    text = (resources.files("edihub") / "reference" / "reimbursement_rates.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(
        ReimbursementRate(
            claim_kind=r["claim_kind"],
            category=r["category"],
            exemption=r["exemption"] == "true",
            valid_from=dt.date.fromisoformat(r["valid_from"]),
            valid_to=dt.date.fromisoformat(r["valid_to"]) if r["valid_to"] else None,
            rate_percent=Decimal(r["rate_percent"]),
            source=r["source"],
            assumed=r["assumed"] == "yes",
        )
        for r in rows
    )


def refresh(cur: psycopg2.extensions.cursor) -> None:
    """Make ``edi.reimbursement_rate`` the CSV's rows (inside the caller's transaction)."""
    cur.execute("DELETE FROM edi.reimbursement_rate")
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO edi.reimbursement_rate (claim_kind, category, exemption, valid_from,"
        " valid_to, rate_percent, source, assumed) VALUES %s",
        [
            (
                r.claim_kind,
                r.category,
                r.exemption,
                r.valid_from,
                r.valid_to,
                r.rate_percent,
                r.source,
                r.assumed,
            )
            for r in rate_table()
        ],
    )
