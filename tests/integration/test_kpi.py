"""The KPI layer on the real PostgreSQL: a small known population sent through the hub's own
collection (registry snapshots, FSE, pharmacy and payroll files, statements built and insurer
files published by the real code), then every view's numbers as counted by hand, the report
(HTML and JSON agreeing, self-contained), the CLI and the Airflow page behind a login."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import runpy
from decimal import Decimal
from pathlib import Path
from typing import Any

import lxml.html
import psycopg2
import pytest
from fastapi.testclient import TestClient

from edihub.kpi import figures, report
from edihub.ui.kpi_app import app as kpi_app
from tests.fixtures.exports import Exports
from tests.fixtures.fse import DENTIST, PRACTITIONER
from tests.fixtures.kpi import CARE_A, CARE_B, D0, D4, DAY, P1, P2, SPECIALIST, TODAY
from tests.test_cli import edihub


def _view(hub: Exports, view: str, order: str = "1") -> list[tuple[Any, ...]]:
    return hub.query(f"SELECT * FROM kpi.{view} ORDER BY {order}")


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


# ---------------------------------------------------------------- the views, counted by hand


def test_every_kpi_view_is_documented(population: Exports) -> None:
    rows = population.query(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'kpi'"
    )
    assert len(rows) == 15
    # Each says what it counts and from which tables.
    assert all(re.search(r"\b(edi|kpi)\.\w+", comment or "") for _, comment in rows), rows


def test_insured_and_insurers(population: Exports) -> None:
    assert _view(population, "teleservice_subscribers") == [
        (4, 3, Decimal("0.7500"), 2, Decimal("0.5000"), DAY)
    ]
    assert _view(population, "contracted_insurers") == [(2, 3, dt.date(2014, 1, 1), DAY)]


def test_employers_by_channel(population: Exports) -> None:
    assert _view(population, "employer_channel") == [
        ("EMP001", "electronic", P1, "company", 12),  # its older declaration is electronic too
        ("EMP002", "electronic", P1, "household", 1),
        ("EMP003", "paper", P1, "household", 1),
        ("EMP004", "electronic", P1, "household", 2),
        ("EMP007", "paper", P1, "company", 5),
    ]
    # channel, employers, share, avg employees, declarations, lines, lines/declaration, share
    assert _view(population, "employers_by_channel") == [
        ("electronic", 3, Decimal("0.6000"), Decimal("5.00"), 4, 8, Decimal("2.00"),
         Decimal("0.7273")),
        ("paper", 2, Decimal("0.4000"), Decimal("3.00"), 2, 3, Decimal("1.50"), Decimal("0.2727")),
    ]  # fmt: skip
    assert _view(population, "salary_lines_by_channel_month", "1, 2") == [
        (P2, "electronic", 1, 3, Decimal("1.0000")),
        (P1, "electronic", 3, 5, Decimal("0.6250")),
        (P1, "paper", 2, 3, Decimal("0.3750")),
    ]


def test_household_teleservice_month_by_month(population: Exports) -> None:
    months = _view(population, "household_teleservice_monthly")
    # October 2015 to February 2026 (the employer snapshot's month): 10 years and 5 months.
    assert len(months) == 125 and months[-1][0] == dt.date(2026, 2, 1)
    assert months[0] == (dt.date(2015, 10, 1), 3, 3, 5, Decimal("0.6000"))
    assert months[1] == (dt.date(2015, 11, 1), 0, 3, 5, Decimal("0.6000"))
    assert months[12] == (dt.date(2016, 10, 1), 1, 4, 5, Decimal("0.8000"))
    assert sum(m[1] for m in months) == 4 and months[-1][2] == 4


def test_practitioners_and_care_sheets(population: Exports) -> None:
    # P10002 is in the registry but sent nothing: not counted.
    assert _view(population, "fse_practitioners_by_kind") == [
        ("dentist", 1, 1),
        ("general_practitioner", 1, 4),
        ("specialist", 1, 2),
    ]
    assert _view(population, "fse_monthly_by_kind", "1, 2") == sorted([
        (_month(CARE_B), "dentist", 1, 1), (_month(CARE_B), "general_practitioner", 1, 1),
        (_month(CARE_A), "general_practitioner", 3, 1), (_month(CARE_A), "specialist", 2, 1),
    ])  # fmt: skip


def test_pharmacies(population: Exports) -> None:
    dispensed = TODAY - dt.timedelta(days=1)
    assert _view(population, "pharmacies_teletransmitting") == [
        ("PH000001", "Pharmacie Test", dt.date(2016, 3, 1), 2, dispensed, dispensed)
    ]


def test_statements_by_channel(population: Exports) -> None:
    half = Decimal("0.5000")
    assert _view(population, "statements_by_channel_daily") == [
        (D0, 1, 1, 2, half),
        (D4, 1, 1, 2, half),
    ]
    monthly = _view(population, "statements_by_channel_monthly")
    if _month(D0) == _month(D4):
        assert monthly == [(_month(D0), 2, 2, 4, half)]
    else:
        assert monthly == [(_month(D0), 1, 1, 2, half), (_month(D4), 1, 1, 2, half)]


def test_reimbursement_delay_from_receipt_and_from_care(population: Exports) -> None:
    delays = {(r[1], r[2]): r[7:] for r in _view(population, "reimbursement_delay", "2, 3")}
    # Paid the day after issue. D0's claims: 1 day after receipt; D4's: 5 days.
    assert delays == {
        (PRACTITIONER, "S-000001"): (3, 1), (PRACTITIONER, "S-000002"): (3, 1),
        (PRACTITIONER, "S-000003"): (3, 1), (PRACTITIONER, "S-000004"): (41, 1),
        ("PH000001", "F00000000001"): (2, 1), ("PH000001", "F00000000002"): (2, 1),
        (SPECIALIST, "S-000011"): (7, 5), (SPECIALIST, "S-000012"): (7, 5),
        (DENTIST, "S-000021"): (45, 5),
    }  # fmt: skip
    assert _view(population, "reimbursement_delay_distribution") == [
        (1, 6, 0),
        (2, 0, 2),
        (3, 0, 3),
        (5, 3, 0),
        (7, 0, 2),
        (41, 0, 1),
        (45, 0, 1),
    ]
    assert _view(population, "reimbursement_within_three_days") == [
        (9, 6, Decimal("0.6667"), 1, 3, 5)
    ]


def test_insurer_deliveries(population: Exports) -> None:
    # 123456's statements: D0 two sheets (2 acts each) and an invoice (2 lines); D4 two sheets.
    assert _view(population, "insurer_deliveries", "1, 3") == [
        ("INS01", "Mutuelle INS01", D0, 1, 6), ("INS01", "Mutuelle INS01", D4, 1, 4),
        ("INS02", "Mutuelle INS02", D0, 1, 6),
    ]  # fmt: skip


# ---------------------------------------------------------------- figures, report, CLI


def _dashboard(hub: Exports) -> figures.Dashboard:
    with contextlib.closing(psycopg2.connect(hub.dsn)) as conn:
        return figures.read_dashboard(conn)


def test_each_tile_has_the_views_figure_beside_the_brochures(population: Exports) -> None:
    tiles = {t.key: t for t in _dashboard(population).tiles}
    assert set(tiles) == set(figures.brochure())  # one tile per brochure figure
    got = {k: (t.value, t.ratio) for k, t in tiles.items()}
    assert got == {
        "teleservice_subscribers": (4, None), "validated_email": (3, 0.75),
        "dematerialisation": (2, 0.5), "statements_by_email": (2, 0.5),
        "contracted_insurers": (2, None), "electronic_employers": (3, 0.6),
        "paper_employer_size": (3.0, None), "paper_line_share": (3, 0.2727),
        "household_first_month": (3, None), "household_after_a_year": (4, 0.8),
        "fse_doctors": (2, None), "fse_general_practitioners": (1, None),
        "fse_specialists": (1, None), "fse_dentists": (1, None),
        "fse_per_month": (5 if _month(CARE_A) != _month(CARE_B) else 7, None),
        "pharmacies": (1, None), "reimbursement_three_days": (1, 0.6667),
    }  # fmt: skip
    ref = tiles["validated_email"].reference
    assert (ref.value, ref.ratio) == (43910, 0.92) and ref.wording.startswith("43.910 (92 %)")
    assert tiles["electronic_employers"].headline == "ratio"  # the brochure quotes a share


def _self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I), "fetches"
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html


def test_the_report_is_self_contained_and_agrees_with_the_json(
    population: Exports, tmp_path: Path
) -> None:
    d = _dashboard(population)
    html = report.html_document(d)
    _self_contained(html)
    doc = lxml.html.fromstring(html)
    data = report.as_dict(d)
    tiles = {t.get("data-key"): " ".join(t.text_content().split())
             for t in doc.xpath("//article[@data-key]")}  # fmt: skip
    assert list(tiles) == [t["key"] for t in data["tiles"]]
    for t in data["tiles"]:  # the page shows the JSON's figures, and the brochure's
        shown = tiles[t["key"]]
        if t["ratio"] is not None:
            assert f"{100 * t['ratio']:.0f} %" in shown, (t["key"], shown)
        assert f"{t['value']:,.0f}" in shown and t["reference"]["wording"] in shown
    charts = doc.xpath("//figure[@data-chart]/svg")
    assert [c.getparent().get("data-chart") for c in charts] == [c["key"] for c in data["charts"]]
    for svg_el, chart in zip(charts, data["charts"], strict=True):
        assert svg_el.xpath("string(./title)") == chart["title"]
        bars = svg_el.xpath(".//rect/title | .//circle/title")
        assert len(bars) == sum(len(s["values"]) for s in chart["series"]), chart["key"]
    delay = next(c for c in data["charts"] if c["key"] == "reimbursement_delay")
    assert delay["series"][0]["values"][1] == 6 and delay["series"][0]["values"][5] == 3


def test_edihub_kpi_report_writes_the_file(population: Exports, tmp_path: Path) -> None:
    out = tmp_path / "kpi.html"
    result = edihub("kpi", "report", "--out", str(out), database_url=population.dsn)
    assert result.returncode == 0, result.stderr
    assert "17 figures, 6 charts" in result.stdout
    _self_contained(out.read_text("utf-8"))
    assert out.read_text("utf-8") == report.html_document(_dashboard(population))
    result = edihub("kpi", "report", "--json", "--out", str(tmp_path / "k.json"),
                    database_url=population.dsn)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "k.json").read_text("utf-8")) == report.as_dict(
        _dashboard(population)
    )
    assert edihub("kpi", "report", "--out", str(out)).returncode != 0  # no database named


# ---------------------------------------------------------------- the Airflow page

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "edihub_plugin.py"
PAGE = "/edihub-kpi/kpi"


@pytest.fixture(scope="module")
def api_server(airflow_db: None) -> Any:
    """Airflow's own API server, with the plugins of plugins/."""
    from airflow.api_fastapi.app import create_app

    return create_app(apps="core")


def test_the_plugin_mounts_the_dashboard() -> None:
    plugin = runpy.run_path(str(PLUGIN))["EdiHubPlugin"]
    mounted = {m["url_prefix"]: m["app"] for m in plugin.fastapi_apps}
    assert mounted["/edihub-kpi"] is kpi_app
    [view] = [v for v in plugin.external_views if v["name"] == "KPI dashboard"]
    assert view["href"] == PAGE.lstrip("/")  # relative: works behind a base_url


@pytest.mark.parametrize("path", [PAGE, f"{PAGE}.json"])
def test_anonymous_requests_are_refused(api_server: Any, path: str) -> None:
    assert TestClient(api_server).get(path).status_code == 401


def test_a_viewer_sees_the_same_dashboard_as_the_report_and_the_json(
    api_server: Any, population: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    monkeypatch.setenv("EDIHUB_DATABASE_URL", population.dsn)
    browser = TestClient(api_server)
    user = SimpleAuthManagerUser(username="manager", role="viewer")
    browser.cookies.set("_token", get_auth_manager().generate_jwt(user))  # the UI's cookie
    page = browser.get(PAGE)
    assert page.status_code == 200
    d = _dashboard(population)
    assert report.fragment(d) in page.text  # the report's HTML, wrapped
    _self_contained(page.text)
    assert browser.get(f"{PAGE}.json").json() == report.as_dict(d)
