"""The dashboard's figures, read from the ``kpi`` views (migration 0012) into typed tiles and
chart data, each tile beside the brochure's figure (``reference/brochure_figures.yaml``).

Nothing is computed here that a view could count: this module picks rows, names them and
pairs them with the brochure, so the page, the report and the JSON can only agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import psycopg2.extensions
import psycopg2.extras
import yaml

Unit = Literal["count", "employees", "days", "care sheets"]
ChartKind = Literal["line", "stacked", "grouped", "hbars"]

KINDS = {"general_practitioner": "General practitioners", "specialist": "Specialists",
         "dentist": "Dentists", "unknown": "Not in the registry"}  # fmt: skip
# How much history the time charts show: enough to see a trend, few enough bars to read.
CHART_MONTHS = 24
CHART_DAYS = 31
DELAY_CAP = 30  # longer delays are one "30+" bar


@dataclass(frozen=True)
class Reference:
    """A figure as the brochure prints it."""

    value: float | None
    ratio: float | None
    approximate: bool
    wording: str


@dataclass(frozen=True)
class Tile:
    """One brochure figure as the hub computes it. ``headline`` says which of value and ratio
    the brochure quotes first (a share alone: "85 % of employers")."""

    key: str
    section: str
    title: str
    value: float | None
    unit: Unit
    ratio: float | None
    ratio_of: str | None
    definition: str
    reference: Reference
    headline: Literal["value", "ratio"] = "value"
    note: str | None = None


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    kind: ChartKind
    categories: list[str]
    series: list[Series]
    y_label: str
    x_label: str = ""
    percent: bool = False
    # A dashed line after this category, labelled (the three-day promise).
    marker_after: str | None = None
    marker_label: str | None = None


@dataclass(frozen=True)
class Dashboard:
    as_of: dt.date | None  # the registry's snapshot date the registry figures are of
    tiles: list[Tile] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@cache
def brochure() -> dict[str, Reference]:
    text = (resources.files("edihub") / "reference" / "brochure_figures.yaml").read_text("utf-8")
    return {
        key: Reference(f.get("value"), f.get("ratio"), bool(f.get("approximate")), f["wording"])
        for key, f in yaml.safe_load(text).items()
    }


def _num(value: Any) -> float | None:
    """Views give numeric as Decimal; JSON and charts want plain numbers."""
    if value is None:
        return None
    return int(value) if isinstance(value, int) else float(value)


def _rows(cur: Any, view: str, order: str = "1") -> list[dict[str, Any]]:
    # Views and orders are this module's constants, never user input.
    cur.execute(f"SELECT * FROM kpi.{view} ORDER BY {order}")
    return [dict(r) for r in cur.fetchall()]


def _tile(key: str, section: str, title: str, value: Any, ratio: Any = None, **more: Any) -> Tile:
    ref = brochure()[key]
    more.setdefault("unit", "count")
    more.setdefault("ratio_of", None)
    headline = "ratio" if ref.value is None and ref.ratio is not None else "value"
    return Tile(key, section, title, _num(value), ratio=_num(ratio), reference=ref,
                headline=headline, **more)  # fmt: skip


def _insured_tiles(cur: Any) -> list[Tile]:
    [t] = _rows(cur, "teleservice_subscribers")
    [ins] = _rows(cur, "contracted_insurers")
    statements = _rows(cur, "statements_by_channel_daily")
    email = sum(r["email"] for r in statements)
    total = sum(r["statements"] for r in statements)
    section = "Insured and insurers"
    return [
        _tile("teleservice_subscribers", section, "Teleservice subscribers", t["subscribers"],
              definition="Insured (rank 0 of the registry: the account holder) with a "
              "teleservice subscription date."),
        _tile("validated_email", section, "Validated an e-mail", t["with_validated_email"],
              t["validated_email_ratio"], ratio_of="of subscribers",
              definition="Subscribers whose e-mail address is validated."),
        _tile("dematerialisation", section, "Dematerialisation option",
              t["with_dematerialisation"], t["dematerialisation_ratio"],
              ratio_of="of subscribers",
              definition="Subscribers who chose to receive their mail, statements included, "
              "electronically."),
        _tile("statements_by_email", section, "Statements by e-mail", email,
              round(email / total, 4) if total else None, ratio_of="of statements",
              definition="Claim statements issued by the hub routed to e-mail (validated "
              "e-mail and dematerialisation), of all statements issued."),
        _tile("contracted_insurers", section, "Insurers under convention", ins["contracted"],
              definition=f"Complementary insurers of the registry with a signed convention "
              f"(of {ins['insurers']} in the registry)."),
    ]  # fmt: skip


def _employer_tiles(cur: Any) -> list[Tile]:
    channels = {r["channel"]: r for r in _rows(cur, "employers_by_channel")}
    months = {r["month"]: r for r in _rows(cur, "household_teleservice_monthly")}
    electronic, paper = channels.get("electronic", {}), channels.get("paper", {})
    first, year = months.get(dt.date(2015, 10, 1), {}), months.get(dt.date(2016, 10, 1), {})
    section = "Employers"
    return [
        _tile("electronic_employers", section, "Employers declaring electronically",
              electronic.get("employers", 0), electronic.get("employer_ratio"),
              ratio_of="of employers",
              definition="Employers whose latest loaded salary declaration came electronically "
              "(not keyed in from paper by the funds' staff)."),
        _tile("paper_employer_size", section, "Size of paper declarers",
              paper.get("avg_employees"), unit="employees",
              definition="Average number of employees (registry) of the employers whose latest "
              "declaration was on paper."),
        _tile("paper_line_share", section, "Salary lines on paper", paper.get("lines", 0),
              paper.get("line_ratio"), ratio_of="of salary lines",
              definition="Salary lines of the loaded paper declarations, of all loaded salary "
              "lines."),
        _tile("household_first_month", section, "Household teleservice, first month",
              first.get("subscribers"), note="October 2015",
              definition="Household employers subscribed to the teleservice by the end of "
              "October 2015, the month it opened."),
        _tile("household_after_a_year", section, "Household teleservice, a year later",
              year.get("subscribers"), year.get("subscriber_ratio"),
              ratio_of="of household employers", note="October 2016",
              definition="Household employers subscribed by the end of October 2016, of all "
              "household employers of the registry."),
    ]  # fmt: skip


def _care_tiles(cur: Any) -> list[Tile]:
    kinds = {r["kind"]: r["practitioners"] for r in _rows(cur, "fse_practitioners_by_kind")}
    gp, sp = kinds.get("general_practitioner", 0), kinds.get("specialist", 0)
    monthly = _rows(cur, "fse_monthly_by_kind")
    last = max((r["month"] for r in monthly), default=None)
    sheets = sum(r["care_sheets"] for r in monthly if r["month"] == last) if last else None
    pharmacies = _rows(cur, "pharmacies_teletransmitting")
    started = [p["teletransmission_start_date"] for p in pharmacies
               if p["teletransmission_start_date"]]  # fmt: skip
    [delay] = _rows(cur, "reimbursement_within_three_days")
    senders = "distinct senders of loaded care sheets"
    section = "Practitioners, pharmacies, reimbursement"
    return [
        _tile("fse_doctors", section, "Doctors sending FSE", gp + sp,
              definition=f"General practitioners and specialists: {senders}."),
        _tile("fse_general_practitioners", section, "General practitioners", gp,
              definition=f"General practitioners (registry kind): {senders}."),
        _tile("fse_specialists", section, "Specialists", sp,
              definition=f"Specialists (registry kind): {senders}."),
        _tile("fse_dentists", section, "Dentists", kinds.get("dentist", 0),
              definition=f"Dentists (registry kind): {senders}."),
        _tile("fse_per_month", section, "FSE a month", sheets, unit="care sheets",
              note=f"care in {last:%B %Y}" if last else None,
              definition="Loaded care sheets of the latest month of care."),
        _tile("pharmacies", section, "Pharmacies teletransmitting", len(pharmacies),
              note=f"since {min(started):%B %Y}" if started else None,
              definition="Pharmacies that sent loaded invoices (registry start date of "
              "teletransmission)."),
        _tile("reimbursement_three_days", section, "Reimbursed within 3 days of receipt",
              delay["median_days_from_receipt"], delay["within_three_days_ratio"],
              unit="days", ratio_of="of claims within 3 days",
              definition="Median days from the day the funds received a care sheet or invoice "
              "to the payment date of its statement; the share paid within three days."),
    ]  # fmt: skip


def _month_label(day: dt.date) -> str:
    return f"{day:%Y-%m}"


def _charts(cur: Any) -> list[Chart]:
    household = _rows(cur, "household_teleservice_monthly")
    fse = _rows(cur, "fse_monthly_by_kind")
    fse_months = sorted({r["month"] for r in fse})[-CHART_MONTHS:]
    fse_kinds = [k for k in KINDS if any(r["kind"] == k for r in fse)]
    by_kind = {(r["month"], r["kind"]): r["care_sheets"] for r in fse}
    days = _rows(cur, "statements_by_channel_daily")[-CHART_DAYS:]
    channels = {r["channel"]: r for r in _rows(cur, "employers_by_channel")}
    delays = _rows(cur, "reimbursement_delay_distribution")
    width = min(max((r["days"] for r in delays), default=3), DELAY_CAP)
    bins = {"receipt": [0] * (width + 1), "care": [0] * (width + 1)}
    for r in delays:
        bins["receipt"][min(r["days"], width)] += r["from_receipt"]
        bins["care"][min(r["days"], width)] += r["from_care"]
    delay_labels = [str(d) for d in range(width + 1)]
    if width == DELAY_CAP:
        delay_labels[-1] = f"{DELAY_CAP}+"
    rows: dict[str, int] = {}
    for r in _rows(cur, "insurer_deliveries", "1, 3"):
        rows[r["insurer_id"]] = rows.get(r["insurer_id"], 0) + r["rows"]

    def share(channel: str, column: str) -> float:
        return 100 * float(channels.get(channel, {}).get(column) or 0)

    return [
        Chart("household_teleservice", "Household employers' teleservice since October 2015",
              "line", [_month_label(r["month"]) for r in household],
              [Series("Subscribers (cumulative)", [r["subscribers"] for r in household])],
              y_label="subscribers", x_label="month"),
        Chart("fse_monthly", "FSE per month of care, by practitioner kind", "stacked",
              [_month_label(m) for m in fse_months],
              [Series(KINDS[k], [by_kind.get((m, k), 0) for m in fse_months])
               for k in fse_kinds], y_label="care sheets", x_label="month of care"),
        Chart("statements_by_channel", "Statements by e-mail and on paper, per issue day",
              "stacked", [f"{r['issued_on']:%d %b}" for r in days],
              [Series("E-mail", [r["email"] for r in days]),
               Series("Paper", [r["paper"] for r in days])],
              y_label="statements", x_label="issue day"),
        Chart("employers_by_channel", "Employers and salary lines by declaration channel",
              "grouped", ["Employers", "Salary lines"],
              [Series("Electronic", [share("electronic", "employer_ratio"),
                                     share("electronic", "line_ratio")]),
               Series("Paper", [share("paper", "employer_ratio"), share("paper", "line_ratio")])],
              y_label="% of all", percent=True),
        Chart("reimbursement_delay", "Days to reimbursement: from receipt and from care",
              "grouped", delay_labels,
              [Series("From receipt", bins["receipt"]), Series("From care", bins["care"])],
              y_label="claims", x_label="days to the payment date",
              marker_after="3" if width > 3 else None, marker_label="3-day promise"),
        Chart("insurer_deliveries", "Statement lines delivered per insurer", "hbars",
              list(rows), [Series("Lines in published files", list(rows.values()))],
              y_label="lines"),
    ]  # fmt: skip


def read_dashboard(conn: psycopg2.extensions.connection) -> Dashboard:
    """Every tile and chart, read in one read-only snapshot of the database."""
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        # One snapshot: a load committing meanwhile cannot make two tiles disagree.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        [t] = _rows(cur, "teleservice_subscribers")
        tiles = [*_insured_tiles(cur), *_employer_tiles(cur), *_care_tiles(cur)]
        charts = _charts(cur)
    conn.rollback()
    return Dashboard(t["as_of"], tiles, charts)
