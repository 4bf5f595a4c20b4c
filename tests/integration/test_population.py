"""The registry part of the brochure's demo population (edihub.population), loaded through the
hub's registry contracts from the core systems' account, gives the brochure's registry figures
in the kpi views and the dashboard's tiles; the same seed gives the same bytes."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg2

from edihub.kpi import figures
from edihub.population import SNAPSHOT_DAY, write_demo, write_registry
from tests.fixtures.funds import Funds

CORE = "csm-core"
# The brochure's registry figures, each shown as the brochure prints it.
PINNED = ("teleservice_subscribers", "validated_email", "dematerialisation",
          "contracted_insurers", "household_first_month", "household_after_a_year")  # fmt: skip


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = write_registry(tmp_path / "a")
    again = write_registry(tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in again]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, again, strict=True))
    other = write_registry(tmp_path / "c", seed=7)
    assert first[0].read_bytes() != other[0].read_bytes()


def test_same_seed_same_partner_files(tmp_path: Path) -> None:
    first, again = write_demo(tmp_path / "a"), write_demo(tmp_path / "b")
    paths = [f.path for files in first.files.values() for f in files]
    paths_again = [f.path for files in again.files.values() for f in files]
    assert len(paths) == 431 and [p.name for p in paths] == [p.name for p in paths_again]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(paths, paths_again, strict=True))
    # December 2016's files, for the registry of its last day
    assert {p.parent.name for p in paths} == {"registry", "fse", "pharmacy", "payroll"}
    assert all(p.name.endswith(("_20161231.csv", "_000001.xml", "_00000001.txt",
                                "_2016-12.xml")) for p in paths)  # fmt: skip


def test_registry_gives_the_brochure_figures(dsn: str, tmp_path: Path) -> None:
    # An empty hub, not the `funds` fixture's seeded one: its 2026 snapshots are more recent
    # than 2016-12-31, which the registry contract refuses (REG-F02).
    hub = Funds(dsn, tmp_path)
    paths = write_registry(tmp_path / "registry")
    assert sorted(p.name for p in paths) == sorted(
        f"{d}_20161231.csv"
        for d in ("insured", "card", "insurer", "employer", "practitioner", "pharmacy")
    )
    for path in paths:
        hub.ingest("registry", path, CORE)  # asserts the file is loaded, every row

    assert hub.query("SELECT * FROM kpi.teleservice_subscribers") == [
        (47_596, 43_910, Decimal("0.9226"), 32_481, Decimal("0.6824"), SNAPSHOT_DAY)
    ]
    [(contracted, insurers, _, as_of)] = hub.query("SELECT * FROM kpi.contracted_insurers")
    assert (contracted, insurers, as_of) == (52, 52, SNAPSHOT_DAY)

    months = {
        m: (new, total, household, ratio)
        for m, new, total, household, ratio in hub.query(
            "SELECT * FROM kpi.household_teleservice_monthly"
        )
    }
    assert min(months) == dt.date(2015, 10, 1) and max(months) == dt.date(2016, 12, 1)
    assert months[dt.date(2015, 10, 1)] == (390, 390, 2_272, Decimal("0.1717"))
    assert months[dt.date(2016, 10, 1)][1:] == (1_136, 2_272, Decimal("0.5000"))
    assert sum(new for new, *_ in months.values()) == 1_136 + 64  # and a few since

    # The practitioner and pharmacy views count senders of loaded files (none here): the
    # registry rows the demo's files will come from are counted in the registry itself.
    assert hub.query(
        "SELECT kind, count(*), count(fse_start_date) FROM edi.registry_practitioner"
        " GROUP BY kind ORDER BY kind"
    ) == [("dentist", 30, 30), ("general_practitioner", 92, 92), ("specialist", 88, 88)]
    assert hub.query(
        "SELECT count(*), date_trunc('month', min(teletransmission_start_date))::date,"
        " date_trunc('month', max(teletransmission_start_date))::date FROM edi.registry_pharmacy"
    ) == [(15, dt.date(2016, 3, 1), dt.date(2016, 3, 1))]  # "depuis le mois de mars 2016"
    # One card per insured person; about 80,000 people covered.
    assert hub.query(
        "SELECT (SELECT count(*) FROM edi.registry_insured),"
        " (SELECT count(*) FROM edi.registry_card),"
        " (SELECT count(*) FROM edi.registry_insured i JOIN edi.registry_card c"
        "   USING (registration_number, beneficiary_rank))"
    ) == [(80_000, 80_000, 80_000)]

    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        board = figures.read_dashboard(conn)
    assert board.as_of == SNAPSHOT_DAY
    tiles = {t.key: t for t in board.tiles}

    def shown(key: str) -> tuple[float | None, float | None]:
        return tiles[key].value, tiles[key].ratio

    assert shown("teleservice_subscribers") == (47_596, None)
    assert shown("validated_email") == (43_910, 0.9226)
    assert round(tiles["validated_email"].ratio or 0, 2) == 0.92  # "92 %"
    assert shown("dematerialisation") == (32_481, 0.6824)
    assert round(tiles["dematerialisation"].ratio or 0, 2) == 0.68  # "68 %"
    assert shown("contracted_insurers") == (52, None)
    assert shown("household_first_month") == (390, None)
    assert shown("household_after_a_year") == (1_136, 0.5)  # "près de la moitié"
    for key in PINNED:
        assert tiles[key].value == tiles[key].reference.value, key
