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
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import lxml.html
import psycopg2
import pytest
from fastapi.testclient import TestClient

from edihub.kpi import figures, report
from edihub.registry_writer import write_snapshot
from edihub.statements import MONACO, build_statements, monaco_today
from edihub.ui.kpi_app import app as kpi_app
from tests.fixtures.exports import Exports
from tests.fixtures.fse import DENTIST, PRACTITIONER, fse_file, sheet
from tests.fixtures.payroll import PAPER_ACCOUNT, line, payroll_file, period_months_ago
from tests.fixtures.pharmacy import invoice, pharmacy_file
from tests.fixtures.postgres import fresh_database
from tests.fixtures.registry import CORE, SNAPSHOT_DAY, seed_registry
from tests.fixtures.sftp import _embedded
from tests.test_cli import edihub

SPECIALIST = "S30001"
DAY = SNAPSHOT_DAY + dt.timedelta(days=1)  # our snapshots replace the fixture's registry
TODAY = monaco_today()
D0, D4 = TODAY, TODAY + dt.timedelta(days=4)  # the two issue days
CARE_A, CARE_B = TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=40)  # two months
P1, P2 = period_months_ago(1), period_months_ago(2)


def _insured(number: str, rank: int, subscribed: bool, validated: bool, demat: bool,
             insurer: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "registration_number": number, "beneficiary_rank": rank, "last_name": f"NOM{number}",
        "first_name": f"P{rank}", "postal_address": "1 rue Grimaldi, 98000 MONACO",
        "email": f"{number}.{rank}@example.mc",
        "teleservice_subscribed_on": dt.date(2016, 3, 1) if subscribed else None,
        "email_validated": validated, "dematerialisation": demat, "insurer_id": insurer,
        "insurer_member_number": f"M-{number}" if insurer else None,
        "insurer_consent": insurer is not None,
    }  # fmt: skip


# Rank 0: 4 subscribers (123456, 654321, 111111, 333333), 3 validated, 2 dematerialised;
# 123456's beneficiary (rank 1) is subscribed too but is not an account of its own.
INSURED = [
    _insured("123456", 0, True, True, True, "INS01"),  # statements by e-mail, copy to INS01
    _insured("123456", 1, True, True, False),
    _insured("654321", 0, True, True, False, "INS02"),  # on paper, copy to INS02
    _insured("111111", 0, True, False, False),
    _insured("222222", 0, False, False, False),
    _insured("333333", 0, True, True, True),
]
INSURERS = [
    {"insurer_id": iid, "name": f"Mutuelle {iid}", "convention_signed_on": signed,
     "status": "active", "sftp_account": iid.lower(), "export_format": "csv",
     "export_time": "06:00"}
    for iid, signed in (("INS01", dt.date(2014, 1, 1)), ("INS02", dt.date(2015, 6, 1)),
                        ("INS03", None))
]  # fmt: skip
PRACTITIONERS = [
    {"practitioner_id": PRACTITIONER, "kind": "general_practitioner", "name": "Dr Test"},
    {"practitioner_id": "P10002", "kind": "general_practitioner", "name": "Dr Silent"},
    {"practitioner_id": SPECIALIST, "kind": "specialist", "specialty": "cardiology",
     "name": "Dr Heart"},
    {"practitioner_id": DENTIST, "kind": "dentist", "name": "Dr Tooth"},
]  # fmt: skip
PHARMACIES = [
    {"pharmacy_id": "PH000001", "name": "Pharmacie Test",
     "teletransmission_start_date": dt.date(2016, 3, 1)},
    {"pharmacy_id": "PH000002", "name": "Pharmacie Muette",
     "teletransmission_start_date": dt.date(2016, 3, 15)},
]  # fmt: skip


def _employer(eid: str, kind: str, size: int, channel: str, subscribed: dt.date | None) -> Any:
    return {"employer_id": eid, "name": f"Employeur {eid}", "kind": kind, "size": size,
            "declaration_channel": channel, "teleservice_subscribed_on": subscribed}  # fmt: skip


# Household: EMP002, EMP004, EMP005 (before the opening: counted in October 2015) subscribe in
# the first month, EMP006 a year later, EMP003 never: 3 then 4 of 5.
EMPLOYERS = [
    _employer("EMP001", "company", 12, "electronic", dt.date(2014, 1, 1)),
    _employer("EMP002", "household", 1, "electronic", dt.date(2015, 10, 5)),
    _employer("EMP003", "household", 1, "paper", None),
    _employer("EMP004", "household", 2, "electronic", dt.date(2015, 10, 20)),
    _employer("EMP005", "household", 1, "electronic", dt.date(2015, 9, 15)),
    _employer("EMP006", "household", 1, "electronic", dt.date(2016, 10, 10)),
    _employer("EMP007", "company", 5, "paper", None),
]


def _declarations(folder: Path) -> list[tuple[Path, str]]:
    """EMP001 twice (3 lines each), EMP002 and EMP004 (1 line each): electronic; EMP003 (1)
    and EMP007 (2) on paper, keyed in by the funds' staff. 8 + 3 salary lines."""
    employees = ["123456", "654321", "111111"]

    def gross(n: int) -> list[Any]:
        return [line(i, employee_id=employees[i]) for i in range(n)]

    def net(n: int) -> list[Any]:
        return [line(i, employee_id=employees[i], gross_salary=None, base_ccss=None,
                     base_car=None, net_salary=Decimal("1200.00")) for i in range(n)]  # fmt: skip

    return [
        (payroll_file(folder / "d1.xml", gross(3), sender="EMP001", period=P1), "EMP001"),
        (payroll_file(folder / "d2.xml", gross(3), sender="EMP001", period=P2, batch="000002"),
         "EMP001"),
        (payroll_file(folder / "d3.xml", net(1), sender="EMP002", period=P1,
                      employer_kind="household"), "EMP002"),
        (payroll_file(folder / "d4.xml", net(1), sender="EMP004", period=P1,
                      employer_kind="household"), "EMP004"),
        (payroll_file(folder / "d5.xml", net(1), sender=PAPER_ACCOUNT, employer="EMP003",
                      channel="paper", employer_kind="household", period=P1, version=2),
         PAPER_ACCOUNT),
        (payroll_file(folder / "d6.xml", gross(2), sender=PAPER_ACCOUNT, employer="EMP007",
                      channel="paper", period=P1, version=2, batch="000002"), PAPER_ACCOUNT),
    ]  # fmt: skip


def _sheets(sender: str, specs: list[tuple[int, str, int, dt.date]]) -> list[Any]:
    return [sheet(i, practitioner_id=sender, registration_number=reg, beneficiary_rank=rank,
                  care_date=care) for i, reg, rank, care in specs]  # fmt: skip


@pytest.fixture(scope="module")
def population(
    pg_admin_url: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory,
    embedded_host_key_path: Path,
) -> Iterator[Exports]:  # fmt: skip
    """One hub for the module (seeding it is most of the time). Issued on D0: the GP's four
    sheets and two pharmacy invoices, received today; on D4: the specialist's two sheets and
    the dentist's one, also received today. Published: INS01 and INS02 of D0, INS01 of D4."""
    folder = tmp_path_factory.mktemp("kpi")
    with (
        fresh_database(pg_admin_url, pg_template) as dsn,
        _embedded(folder, embedded_host_key_path) as server,
    ):
        seed_registry(dsn, folder)
        hub = Exports(dsn, folder, server)  # with the insurers' SFTP accounts
        for document, rows in (("insured", INSURED), ("insurer", INSURERS),
                               ("practitioner", PRACTITIONERS), ("pharmacy", PHARMACIES),
                               ("employer", EMPLOYERS)):  # fmt: skip
            hub.ingest("registry", write_snapshot(folder / "reg", document, DAY, rows), CORE)
        for path, sender in _declarations(folder):
            hub.ingest("payroll", path, sender)
        gp = [(1, "123456", 0, CARE_A), (2, "123456", 1, CARE_A), (3, "654321", 0, CARE_A),
              (4, "654321", 0, CARE_B)]  # fmt: skip
        hub.ingest("fse", fse_file(folder / "gp.xml", _sheets(PRACTITIONER, gp)), PRACTITIONER)
        invoices = [invoice(1, registration_number="123456", beneficiary_rank=0),
                    invoice(2, registration_number="654321", beneficiary_rank=0)]  # fmt: skip
        hub.ingest("pharmacy", pharmacy_file(folder / "ph.txt", invoices), "PH000001")
        _close(dsn, D0)
        specialist = [(11, "123456", 0, CARE_A), (12, "654321", 0, CARE_A)]
        hub.ingest("fse", fse_file(folder / "sp.xml", _sheets(SPECIALIST, specialist),
                                   sender=SPECIALIST), SPECIALIST)  # fmt: skip
        hub.ingest("fse", fse_file(folder / "de.xml", _sheets(DENTIST, [(21, "123456", 1, CARE_B)]),
                                   sender=DENTIST), DENTIST)  # fmt: skip
        _close(dsn, D4)
        for insurer_id, day in (("INS01", D0), ("INS02", D0), ("INS01", D4)):
            hub.publish(insurer_id, day)
        yield hub


def _close(dsn: str, day: dt.date) -> None:
    build_statements(dsn, now=dt.datetime.combine(day, dt.time(12), MONACO), close_today=True)


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
