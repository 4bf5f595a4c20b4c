"""``edihub validate``: what a partner runs before sending a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lxml import etree

from edihub.load.registry import load_registry
from tests.fixtures.fse import fse_file, registry_csvs, sheet

ACK_NS = {"a": "urn:mc:caisses-sociales:edi:ack:v1"}


def validate(
    path: Path, database_url: str | None = None, feed: str = "fse"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EDIHUB_DATABASE_URL"}
    if database_url:
        env["EDIHUB_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "edihub.cli", "validate", "--feed", feed, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


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
    load_registry(dsn, registry_csvs(tmp_path / "registry"))
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
