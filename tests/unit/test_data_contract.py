"""The FSE data contract (Great Expectations suites under contracts/fse/v1) rule by rule.

Registry rules are checked against a dict standing in for the registry lookup here; the
integration tests run the same rules against PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from edihub import clock
from edihub.config import Settings
from edihub.contracts.engine import SeenValues
from edihub.fse_writer import Act
from edihub.validation import check_file
from tests.fixtures.fse import KNOWN_INSURED, PRACTITIONER, fse_file, sheet
from tests.fixtures.lookup import DictLookup
from tests.fixtures.registry import CARD_CODE, OLD_CARD_CODE

SETTINGS = Settings.from_env()
REGISTRY = {
    ("edi.registry_practitioner", "practitioner_id"): {PRACTITIONER},
    ("edi.registry_insured", "beneficiary_key"): {f"{r}/{k}" for r, k in KNOWN_INSURED},
    ("edi.fse_care_sheet", "sheet_id"): {"S-LOADED"},
}


CARDS = {
    ("edi.registry_card", "card_key"): [
        (f"{r}/{k}/{CARD_CODE}", dt.date(2020, 1, 1), None) for r, k in KNOWN_INSURED
    ]
}
lookup = DictLookup(REGISTRY, CARDS)


def check(path: Path, account: str | None = PRACTITIONER) -> tuple[Any, list[dict[str, Any]]]:
    return check_file(path, SETTINGS, "fse", account, lookup)


def rules(errors: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return sorted((e["rule"], e["record_no"]) for e in errors)


def test_clean_file_is_accepted(tmp_path: Path) -> None:
    verdict, errors = check(fse_file(tmp_path / "ok.xml"))
    assert errors == []
    assert (verdict.state, verdict.records_total, verdict.records_loaded) == ("loaded", 5, 5)


@pytest.mark.parametrize(
    ("change", "rule", "field"),
    [
        ({"total": Decimal("99.00")}, "FSE-R04", "total"),
        ({"care_date": clock.monaco_today() + dt.timedelta(days=3)}, "FSE-R05", "care_date"),
        ({"care_date": dt.date(2001, 1, 1)}, "FSE-R05", "care_date"),
        ({"practitioner_id": "P99999"}, "FSE-R06", "practitioner_id"),
        ({"registration_number": "9999"}, "FSE-R07", "registration_number"),
        ({"id": "S-LOADED"}, "FSE-R02", "sheet_id"),
        # the insured's card of 2019: not the code valid on the date of care
        ({"fse_code": OLD_CARD_CODE}, "FSE-R10", "fse_code"),
        (
            {"acts": [Act("C", 1, Decimal("-30.00"))], "total": Decimal("-30.00")},
            "FSE-R03",
            "total",
        ),
    ],
    ids=[
        "total",
        "future",
        "too-old",
        "practitioner",
        "insured",
        "already-loaded",
        "old-card",
        "negative",
    ],
)
def test_record_rules_reject_only_the_record(
    tmp_path: Path, change: dict[str, Any], rule: str, field: str
) -> None:
    sheets = [sheet(i) for i in range(1, 6)]
    sheets[2] = sheet(3, **change)
    verdict, errors = check(fse_file(tmp_path / "f.xml", sheets))
    assert verdict.state == "loaded_with_errors"
    assert verdict.records_rejected == 1 and verdict.records_loaded == 4
    mine = [e for e in errors if e["rule"] == rule]
    assert mine, errors
    assert mine[0]["record_no"] == 3
    assert mine[0]["record_id"] == sheets[2].id
    assert mine[0]["field"] == field
    assert mine[0]["value"]


def test_total_mismatch_shows_euros(tmp_path: Path) -> None:
    sheets = [sheet(1, total=Decimal("99.00")), sheet(2)]
    _, errors = check(fse_file(tmp_path / "f.xml", sheets))
    assert errors[0]["value"] == "total=99.00; acts_total=55.00"


def test_negative_act_rejects_its_sheet(tmp_path: Path) -> None:
    bad = sheet(2, acts=[Act("C", 1, Decimal("30.00")), Act("K", 1, Decimal("-5.00"))])
    verdict, errors = check(fse_file(tmp_path / "f.xml", [sheet(1), bad, sheet(3)]))
    assert verdict.state == "loaded_with_errors" and verdict.records_rejected == 1
    assert {(e["rule"], e["record_no"]) for e in errors} >= {("FSE-R08", 2), ("FSE-R09", 2)}


def test_duplicate_ids_in_file_are_rejected(tmp_path: Path) -> None:
    sheets = [sheet(1), sheet(2), sheet(2), sheet(3)]
    verdict, errors = check(fse_file(tmp_path / "f.xml", sheets))
    assert rules(errors) == [("FSE-R01", 3)]
    assert verdict.records_loaded == 3


def test_duplicate_ids_across_chunks_are_caught(tmp_path: Path) -> None:
    sheets = [sheet(1), sheet(2), sheet(3), sheet(1)]
    path = fse_file(tmp_path / "f.xml", sheets)
    verdict, errors = check_file(path, SETTINGS, "fse", PRACTITIONER, lookup, chunk_size=2)
    assert rules(errors) == [("FSE-R01", 4)]
    assert verdict.records_loaded == 3


@pytest.mark.parametrize(
    ("spoil", "rule"),
    [
        (
            lambda t: t.replace("<sheetCount>5</sheetCount>", "<sheetCount>4</sheetCount>"),
            "FSE-F02",
        ),
        (
            lambda t: t.replace(
                "<totalAmount>275.00</totalAmount>", "<totalAmount>275.01</totalAmount>"
            ),
            "FSE-F03",
        ),
    ],
    ids=["count", "amount"],
)
def test_trailer_mismatch_rejects_the_file(tmp_path: Path, spoil: Any, rule: str) -> None:
    path = fse_file(tmp_path / "f.xml")
    path.write_text(spoil(path.read_text()))
    verdict, errors = check(path)
    assert verdict.state == "rejected" and verdict.reason_code == rule
    assert verdict.records_loaded == 0
    assert [e["level"] for e in errors] == ["file"]


def test_sender_must_be_the_delivering_account(tmp_path: Path) -> None:
    verdict, errors = check(fse_file(tmp_path / "f.xml"), account="D20001")
    assert verdict.state == "rejected" and verdict.reason_code == "FSE-F01"
    assert errors[0]["value"] == "sender=P10001"


def test_file_without_sheets_is_rejected(tmp_path: Path) -> None:
    verdict, _ = check(fse_file(tmp_path / "f.xml", []))
    assert verdict.state == "rejected" and verdict.reason_code == "FSE-F04"


def test_all_records_rejected_rejects_the_file(tmp_path: Path) -> None:
    sheets = [sheet(i, practitioner_id="P99999") for i in range(1, 4)]
    verdict, _ = check(fse_file(tmp_path / "f.xml", sheets))
    assert verdict.state == "rejected" and verdict.reason_code == "ALL_RECORDS_REJECTED"


def test_offline_check_skips_registry_rules(tmp_path: Path) -> None:
    sheets = [sheet(1, practitioner_id="P99999"), sheet(2)]
    verdict, errors = check_file(fse_file(tmp_path / "f.xml", sheets), SETTINGS, "fse", None, None)
    assert verdict.state == "loaded" and errors == []


def test_a_misspelt_expectation_type_is_refused(tmp_path: Path) -> None:
    """GX alone would drop it with a log line, and the rule would never run."""
    import json
    import shutil

    import pandas as pd

    from edihub.contracts.engine import DataContract, validate_frame

    folder = tmp_path / "v1"
    shutil.copytree(SETTINGS.contracts_dir / "fse" / "v1", folder)
    suite = json.loads((folder / "act.json").read_text())
    suite["expectations"][0]["type"] = "expect_column_values_to_be_betwen"
    (folder / "act.json").write_text(json.dumps(suite))
    with pytest.raises(ValueError, match="unknown expectation type"):
        validate_frame(DataContract.load(folder), "act", pd.DataFrame({"amount": [1]}), {})


@pytest.mark.parametrize("kind", ["text", "int"])
def test_seen_values_agree_with_a_set_over_many_chunks(kind: str) -> None:
    """The compact store of earlier chunks' ids gives a Python set's answers, run merges
    included (chunks of varying size, ids coming back from any earlier chunk)."""
    rng = random.Random(7)
    seen, reference = SeenValues(), set()
    for size in [rng.randint(0, 300) for _ in range(60)]:
        ids = sorted({rng.randrange(5_000) for _ in range(size)})
        values = pa.array([f"K{i}/0" for i in ids] if kind == "text" else ids)
        keys = SeenValues.keys(values)
        before = seen.contains(keys)
        assert before.tolist() == [v in reference for v in values.to_pylist()]
        seen.add(keys[~before])
        reference.update(values.to_pylist())
