"""FSE v2 (formats/fse/v2, contracts/fse/v2): every document and its rules, one by one.

The registry is a dict here (``DictLookup``, which honours the lookups' ``where`` filters on
practitioner kinds and request statuses); the integration tests run the same rules on
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edihub import clock
from edihub.config import Settings
from edihub.validation import check_file
from tests.fixtures.fse import (
    DENTIST,
    KNOWN_INSURED,
    MESSAGES,
    PRACTITIONER,
    SENDERS,
    fse_file,
    message,
    v2_file,
)
from tests.fixtures.lookup import DictLookup
from tests.fixtures.registry import CARD_CODE, OLD_CARD_CODE

SETTINGS = Settings.from_env()
SPECIALIST = "S30001"


def _approval(request_id: str, status: str) -> dict[str, Any]:
    key = f"{DENTIST}/{request_id}"
    return {"approval_key": key, "message_key": f"{key}/{status}", "status": status}


lookup = DictLookup(
    tables={
        ("edi.registry_insured", "beneficiary_key"): {f"{r}/{k}" for r, k in KNOWN_INSURED},
        ("edi.fse_care_sheet", "sheet_id"): {"S-LOADED"},
        ("edi.fse_work_stoppage", "prescription_id"): {"AT-LOADED"},
        ("edi.fse_exemption_request", "request_id"): {"ETM-LOADED"},
        ("edi.fse_invalidity_request", "request_id"): {"INV-LOADED"},
    },
    periods={
        ("edi.registry_card", "card_key"): [
            (f"{r}/{k}/{code}", start, end)
            for r, k in KNOWN_INSURED
            for code, start, end in (
                (OLD_CARD_CODE, dt.date(2019, 1, 1), dt.date(2019, 12, 31)),
                (CARD_CODE, dt.date(2020, 1, 1), None),
            )
        ]
    },
    rows={
        "edi.registry_practitioner": [
            {"practitioner_id": PRACTITIONER, "kind": "general_practitioner"},
            {"practitioner_id": SPECIALIST, "kind": "specialist"},
            {"practitioner_id": DENTIST, "kind": "dentist"},
        ],
        "edi.fse_prior_approval": [
            _approval("DAP-SUBMITTED", "submitted"),
            _approval("DAP-WITHDRAWN", "submitted"),
            _approval("DAP-WITHDRAWN", "withdrawn"),
        ],
    },
)


def check(path: Path, document: str, account: str | None = None) -> tuple[Any, list[Any]]:
    sender = account or SENDERS.get(document, PRACTITIONER)
    return check_file(path, SETTINGS, "fse", sender, lookup)


def future(days: int) -> dt.date:
    return clock.monaco_today() + dt.timedelta(days=days)


@pytest.mark.parametrize("document", sorted(MESSAGES))
def test_each_document_is_read_by_its_root_element_and_accepted(
    tmp_path: Path, document: str
) -> None:
    verdict, errors = check(v2_file(tmp_path / "f.xml", document), document)
    assert errors == []
    assert (verdict.state, verdict.format_version, verdict.document) == ("loaded", "2", document)
    assert verdict.records_loaded == 5


def test_version_1_and_version_2_are_accepted_side_by_side(tmp_path: Path) -> None:
    v1, _ = check(fse_file(tmp_path / "v1.xml"), "care_sheet")
    v2, _ = check(v2_file(tmp_path / "v2.xml", "care_sheet"), "care_sheet")
    assert (v1.state, v1.format_version, v1.document) == ("loaded", "1", None)
    assert (v2.state, v2.format_version, v2.document) == ("loaded", "2", "care_sheet")


# (document, changes to record 3, the rules that reject it)
RECORD_RULES = [
    ("care_sheet", {"fse_code": OLD_CARD_CODE}, "FSE-R10"),
    ("care_sheet", {"practitioner_id": DENTIST, "prior_approval_id": "DAP-UNKNOWN"}, "FSE-R11"),
    ("care_sheet", {"practitioner_id": DENTIST, "prior_approval_id": "DAP-WITHDRAWN"}, "FSE-R12"),
    # a request id is the dentist's own: another practitioner cannot use it
    ("care_sheet", {"prior_approval_id": "DAP-SUBMITTED"}, "FSE-R11"),
    ("work_stoppage", {"id": "AT-LOADED"}, "WS-R02"),
    ("work_stoppage", {"practitioner_id": DENTIST}, "WS-R03"),
    # an insured unknown to the registry has no card either
    ("work_stoppage", {"registration_number": "9999"}, "WS-R04 WS-R05"),
    ("work_stoppage", {"fse_code": OLD_CARD_CODE}, "WS-R05"),
    ("work_stoppage", {"prescribed_on": future(3), "start_date": future(3)}, "WS-R06"),
    ("work_stoppage", {"beneficiary_rank": 1}, "WS-R07"),
    ("work_stoppage", {"end_date": clock.monaco_today() - dt.timedelta(days=10)}, "WS-R08"),
    ("work_stoppage", {"start_date": clock.monaco_today() - dt.timedelta(days=9)}, "WS-R09"),
    ("exemption_request", {"id": "ETM-LOADED"}, "TME-R02"),
    ("exemption_request", {"practitioner_id": DENTIST}, "TME-R03"),
    ("exemption_request", {"fse_code": OLD_CARD_CODE}, "TME-R05"),
    ("exemption_request", {"requested_on": dt.date(2020, 6, 1)}, "TME-R06"),
    ("exemption_request", {"condition_code": None}, "TME-R07"),
    ("exemption_request", {"exempt_until": dt.date(2020, 1, 1)}, "TME-R08"),
    ("invalidity_request", {"id": "INV-LOADED"}, "INV-R02"),
    ("invalidity_request", {"practitioner_id": DENTIST}, "INV-R03"),
    ("invalidity_request", {"beneficiary_rank": 1}, "INV-R07"),
    ("invalidity_request", {"stopped_work_since": clock.monaco_today()}, "INV-R08"),
    ("prior_approval", {"id": "DAP-SUBMITTED"}, "DPA-R02"),
    ("prior_approval", {"practitioner_id": PRACTITIONER}, "DPA-R03"),
    ("prior_approval", {"fse_code": OLD_CARD_CODE}, "DPA-R05"),
    ("prior_approval", {"estimated_total": Decimal("1.00")}, "DPA-R07"),
    ("prior_approval", {"status": "withdrawn", "id": "DAP-UNKNOWN"}, "DPA-R08"),
]


@pytest.mark.parametrize(
    ("document", "changes", "rule"), RECORD_RULES, ids=[r for _d, _c, r in RECORD_RULES]
)
def test_a_failing_record_rule_rejects_that_record_only(
    tmp_path: Path, document: str, changes: dict[str, Any], rule: str
) -> None:
    messages = [message(document, i) for i in range(1, 6)]
    messages[2] = message(document, 3, **changes)
    verdict, errors = check(v2_file(tmp_path / "f.xml", document, messages), document)
    assert verdict.state == "loaded_with_errors", errors
    assert (verdict.records_rejected, verdict.records_loaded) == (1, 4)
    assert {(e["rule"], e["record_no"], e["record_id"]) for e in errors} == {
        (r, 3, messages[2].id) for r in rule.split()
    }


# Conditional rules: what they must not reject.
ALLOWED = [
    # a dentist's sheet under the approval it submitted
    ("care_sheet", {"practitioner_id": DENTIST, "prior_approval_id": "DAP-SUBMITTED"}),
    ("care_sheet", {"practitioner_id": SPECIALIST}),
    # an extension may start before the day it is prescribed (it continues a stoppage)
    ("work_stoppage", {"kind": "extension", "start_date": clock.monaco_today() - dt.timedelta(9)}),
    # only a long-term condition needs its code
    ("exemption_request", {"ground": "costly_act", "condition_code": None}),
    ("prior_approval", {"status": "withdrawn", "id": "DAP-SUBMITTED"}),
]


@pytest.mark.parametrize(("document", "changes"), ALLOWED)
def test_conditional_rules_leave_other_records_alone(
    tmp_path: Path, document: str, changes: dict[str, Any]
) -> None:
    messages = [message(document, i) for i in range(1, 6)]
    messages[2] = message(document, 3, **changes)
    verdict, errors = check(v2_file(tmp_path / "f.xml", document, messages), document)
    assert (verdict.state, errors) == ("loaded", [])


@pytest.mark.parametrize("document", sorted(MESSAGES))
def test_a_file_sent_by_another_account_is_rejected(tmp_path: Path, document: str) -> None:
    verdict, _ = check(v2_file(tmp_path / "f.xml", document), document, account="P99999")
    assert (verdict.state, verdict.reason_code) == ("rejected", "FSE-F01")


@pytest.mark.parametrize("document", sorted(MESSAGES))
def test_a_trailer_count_that_does_not_match_rejects_the_file(
    tmp_path: Path, document: str
) -> None:
    path = v2_file(tmp_path / "f.xml", document)
    path.write_text(path.read_text().replace("<recordCount>5<", "<recordCount>6<"))
    verdict, _ = check(path, document)
    assert (verdict.state, verdict.reason_code) == ("rejected", "FSE-F02")


@pytest.mark.parametrize("document", ["care_sheet", "prior_approval"])
def test_documents_with_amounts_check_the_trailer_total_too(tmp_path: Path, document: str) -> None:
    path = v2_file(tmp_path / "f.xml", document)
    text = path.read_text()
    start = text.index("<totalAmount>") + len("<totalAmount>")
    path.write_text(text[:start] + "1" + text[start:])  # 10 times more, or so
    verdict, _ = check(path, document)
    assert (verdict.state, verdict.reason_code) == ("rejected", "FSE-F03")
    # the shared file rules ran as well
    assert {"FSE-F01", "FSE-F02", "FSE-F03", "FSE-F04"} <= {
        r["rule"] for r in verdict.rule_results if r["table"] == "file"
    }


def test_an_empty_file_is_rejected(tmp_path: Path) -> None:
    verdict, _ = check(v2_file(tmp_path / "f.xml", "work_stoppage", []), "work_stoppage")
    assert (verdict.state, verdict.reason_code) == ("rejected", "FSE-F04")


def test_a_message_under_the_wrong_root_is_a_schema_violation(tmp_path: Path) -> None:
    path = v2_file(tmp_path / "f.xml", "work_stoppage")
    path.write_text(path.read_text().replace("workStoppageFile", "invalidityRequestFile"))
    verdict, errors = check(path, "invalidity_request")
    assert (verdict.state, verdict.reason_code) == ("rejected", "SCHEMA_VIOLATION")
    assert "workStoppage" in errors[0]["message"]


def test_an_unknown_root_element_names_the_documents_accepted(tmp_path: Path) -> None:
    path = v2_file(tmp_path / "f.xml", "work_stoppage")
    path.write_text(path.read_text().replace("workStoppageFile", "sickNoteFile"))
    verdict, errors = check(path, "work_stoppage")
    assert (verdict.state, verdict.reason_code) == ("rejected", "UNKNOWN_FORMAT")
    assert "fse/v2/work_stoppage" in errors[0]["message"]
