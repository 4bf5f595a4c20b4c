"""``edihub validate`` (what a partner runs before sending a file) and ``edihub registry load``
(how an engineer seeds a hub's registry)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lxml import etree

from tests.fixtures.fse import fse_file, sheet
from tests.fixtures.registry import CORE, registry_snapshots, seed_registry

ACK_NS = {"a": "urn:mc:caisses-sociales:edi:ack:v1"}


def edihub(
    *args: str, database_url: str | None = None, state: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EDIHUB_DATABASE_URL"}
    if database_url:
        env["EDIHUB_DATABASE_URL"] = database_url
    if state:
        env["EDIHUB_STATE_DIR"] = str(state)
    return subprocess.run(
        [sys.executable, "-m", "edihub.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def validate(
    path: Path, database_url: str | None = None, feed: str = "fse", *more: str
) -> subprocess.CompletedProcess[str]:
    return edihub("validate", "--feed", feed, *more, str(path), database_url=database_url)


def status(out: str) -> str:
    return etree.fromstring(out.encode()).find("a:result", ACK_NS).get("status")


def test_accepted_file_exits_0_and_prints_its_ack(tmp_path: Path) -> None:
    result = validate(fse_file(tmp_path / "ok.xml"))
    assert result.returncode == 0, result.stderr
    assert status(result.stdout) == "accepted"
    assert "offline check" in result.stderr


def test_record_errors_exit_1_and_name_the_record(tmp_path: Path) -> None:
    sheets = [sheet(1), sheet(2, total=sheet(2).declared_total + 1)]
    result = validate(fse_file(tmp_path / "f.xml", sheets))
    assert result.returncode == 1
    assert status(result.stdout) == "accepted_with_errors"
    assert 'record="2"' in result.stdout and 'rule="FSE-R04"' in result.stdout


def test_rejected_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_bytes(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')
    result = validate(path)
    assert result.returncode == 2
    assert status(result.stdout) == "quarantined"
    assert 'rule="DTD_FORBIDDEN"' in result.stdout


def test_with_the_database_the_registry_rules_run(tmp_path: Path, dsn: str) -> None:
    seed_registry(dsn, tmp_path)
    path = fse_file(tmp_path / "f.xml", [sheet(1), sheet(2, registration_number="9999")])
    offline, online = validate(path), validate(path, dsn)
    assert offline.returncode == 0
    assert online.returncode == 1 and 'rule="FSE-R07"' in online.stdout
    assert "offline" not in online.stderr


def test_validate_takes_the_pharmacy_feed(tmp_path: Path) -> None:
    from tests.fixtures.pharmacy import invoice, pharmacy_file

    good = pharmacy_file(tmp_path / "ok.txt")
    bad = pharmacy_file(tmp_path / "bad.txt", [invoice(1, total=1)])
    ok = validate(good, feed="pharmacy")
    assert ok.returncode == 0, ok.stderr
    failed = validate(bad, feed="pharmacy")
    assert failed.returncode == 2 and 'rule="PHA-R03"' in failed.stdout


def test_validate_takes_registry_snapshots(tmp_path: Path) -> None:
    good = registry_snapshots(tmp_path / "r")[2]  # practitioner_20260131.csv
    ok = validate(good, None, "registry", "--sender", CORE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "practitioner_20260131.csv"
    bad.write_text(good.read_text().replace(",", ";"))
    refused = validate(bad, None, "registry", "--sender", CORE)
    assert refused.returncode == 2 and 'rule="HEADER_ROW"' in refused.stdout
    assert "separated by semicolons" in refused.stdout


def test_registry_load_seeds_the_registry_through_its_contracts(tmp_path: Path, dsn: str) -> None:
    files = [str(p) for p in registry_snapshots(tmp_path / "r")]
    first = edihub("registry", "load", *files, database_url=dsn, state=tmp_path / "state")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "insured_20260131.csv: loaded, 3 rows" in first.stdout
    again = edihub("registry", "load", files[0], database_url=dsn, state=tmp_path / "state")
    assert again.returncode == 2
    assert "insured_20260131.csv: duplicate (DUPLICATE_FILE), 0 rows" in again.stdout


def test_validate_takes_fse_v2_messages_and_names_the_right_folder(tmp_path: Path) -> None:
    import datetime as dt

    from tests.fixtures.fse import message, v2_file
    from tests.fixtures.pharmacy import pharmacy_file

    ok = validate(v2_file(tmp_path / "ws.xml", "work_stoppage"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    ended_before = message("work_stoppage", 2, end_date=dt.date(2020, 1, 1))
    spoiled = v2_file(
        tmp_path / "ws2.xml", "work_stoppage", [message("work_stoppage", 1), ended_before]
    )
    with_errors = validate(spoiled)
    assert with_errors.returncode == 1 and 'rule="WS-R08"' in with_errors.stdout
    misplaced = validate(pharmacy_file(tmp_path / "PHA.txt"))  # checked as an FSE file
    assert misplaced.returncode == 2 and 'rule="WRONG_FOLDER"' in misplaced.stdout
    assert "send it to /inbound/pharmacy/" in misplaced.stdout
