"""The inbound flow end to end on real servers: PostgreSQL, and SFTP both embedded and OpenSSH.

Each test drops files as a partner would (its own key, its own chroot), runs the hub's
collection, and checks the three places a file's fate shows: the database, the SFTP server
(inbox emptied only after commit, archive filled) and the acknowledgment the partner reads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from edihub import collect
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.hub import ACK_NS, Hub, ack_status, make_hub
from tests.fixtures.registry import seed_registry


@pytest.fixture
def hub(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, PRACTITIONER, dsn, tmp_path / "state", "fse")


def test_clean_file_is_loaded_archived_and_acknowledged(hub: Hub, tmp_path: Path) -> None:
    hub.send(fse_file(tmp_path / "FSE_1.xml"))
    assert len(hub.collect()) == 1
    assert hub.files() == [("FSE_1.xml", "loaded", None, 5, True, True)]
    assert hub.query("SELECT count(*) FROM edi.fse_care_sheet") == [(5,)]
    assert hub.query("SELECT count(*), sum(amount) FROM edi.fse_act") == [(10, 27500)]
    assert hub.inbox() == []
    archived = list((hub.server.root / "archive" / PRACTITIONER / "fse").rglob("*"))
    assert [p for p in archived if p.is_file()]
    ack = hub.ack("FSE_1.xml")
    assert ack_status(ack) == ("accepted", "A")
    assert ack.find("a:result", ACK_NS).get("recordsAccepted") == "5"


def _contract_violation(tmp_path: Path) -> Path:
    sheets = [sheet(1), sheet(2, registration_number="9999"), sheet(3)]
    return fse_file(tmp_path / "f.xml", sheets)


def _spoiled(tmp_path: Path, old: str, new: str) -> Path:
    path = fse_file(tmp_path / "f.xml")
    path.write_text(path.read_text().replace(old, new, 1))
    return path


BAD_INPUTS = {
    "malformed": (lambda t: _spoiled(t, "</total>", "</totl>"), "rejected", "NOT_WELL_FORMED"),
    "schema-violation": (
        lambda t: _spoiled(t, "<fseCode>AB12CD34</fseCode>", "<fseCode>x</fseCode>"),
        "rejected",
        "SCHEMA_VIOLATION",
    ),
    "contract-violation": (_contract_violation, "loaded_with_errors", None),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_ends_in_a_known_state_with_its_ack(hub: Hub, tmp_path: Path, case: str) -> None:
    make, state, reason = BAD_INPUTS[case]
    hub.send(make(tmp_path), "FSE_bad.xml")
    hub.send(fse_file(tmp_path / "FSE_next.xml", [sheet(i) for i in range(10, 13)], batch="000002"))
    hub.collect()
    outcomes = {name: (st, code) for name, st, code, *_ in hub.files()}
    assert outcomes["FSE_bad.xml"] == (state, reason)
    # The hub went on with the next file.
    assert outcomes["FSE_next.xml"] == ("loaded", None)
    loaded_from_bad = 2 if case == "contract-violation" else 0
    assert hub.query("SELECT count(*) FROM edi.fse_care_sheet") == [(3 + loaded_from_bad,)]
    assert hub.inbox() == []
    ack = hub.ack("FSE_bad.xml")
    assert ack_status(ack)[0] == {"loaded_with_errors": "accepted_with_errors"}.get(state, state)
    error = ack.find("a:errors/a:error", ACK_NS)
    assert error is not None and error.text
    if reason:
        assert error.get("rule") == reason
    else:  # the record, field, rule and value the sender must fix
        assert (error.get("record"), error.get("recordId"), error.get("rule")) == (
            "2",
            "S-000002",
            "FSE-R07",
        )
        assert error.get("field") == "registration_number"


def test_the_same_file_twice_is_loaded_once(hub: Hub, tmp_path: Path) -> None:
    path = fse_file(tmp_path / "FSE_1.xml")
    hub.send(path)
    hub.collect()
    hub.send(path, "FSE_1_again.xml")
    hub.collect()
    assert [(n, s, r) for n, s, r, *_ in hub.files()] == [
        ("FSE_1.xml", "loaded", None),
        ("FSE_1_again.xml", "duplicate", "DUPLICATE_FILE"),
    ]
    assert hub.query("SELECT count(*) FROM edi.fse_care_sheet") == [(5,)]
    assert ack_status(hub.ack("FSE_1_again.xml")) == ("duplicate", "R")


def test_the_same_batch_number_twice_is_loaded_once(hub: Hub, tmp_path: Path) -> None:
    hub.send(fse_file(tmp_path / "a.xml", [sheet(1)], batch="000007"))
    hub.collect()
    hub.send(fse_file(tmp_path / "b.xml", [sheet(2)], batch="000007"))
    hub.collect()
    assert [(n, s, r) for n, s, r, *_ in hub.files()] == [
        ("a.xml", "loaded", None),
        ("b.xml", "duplicate", "DUPLICATE_BATCH"),
    ]
    assert hub.query("SELECT sheet_id FROM edi.fse_care_sheet") == [("S-000001",)]


def test_a_rejected_batch_may_be_resent_corrected(hub: Hub, tmp_path: Path) -> None:
    hub.send(fse_file(tmp_path / "a.xml", [sheet(1, practitioner_id="P99999")], batch="9"))
    hub.collect()
    hub.send(fse_file(tmp_path / "b.xml", [sheet(1)], batch="9"))
    hub.collect()
    assert [s for _, s, *_ in hub.files()] == ["rejected", "loaded"]


def test_half_uploaded_files_are_left_alone(hub: Hub, tmp_path: Path) -> None:
    settings = dataclasses.replace(hub.settings, settle_seconds=3600)
    inbox = hub.server.root / "partners" / PRACTITIONER / "inbound" / "fse"
    hub.send(fse_file(tmp_path / "fresh.xml"))  # complete, but written just now
    # An upload still under its temporary name:
    with hub.server.connect(hub.partner) as sftp:
        sftp.putfo(io.BytesIO(b"<?xml version='1.0'?><fseFile"), "/inbound/fse/big.xml.part")
    with hub.server.connect(hub.server.hub) as sftp:
        assert list(collect.collect(sftp, hub.dsn, settings, "fse")) == []
    assert hub.files() == []
    assert sorted(p.name for p in inbox.iterdir()) == ["big.xml.part", "fresh.xml"]


def test_crash_after_commit_then_rerun_is_exactly_once(hub: Hub, tmp_path: Path) -> None:
    hub.send(fse_file(tmp_path / "FSE_1.xml"))
    with hub.server.connect(hub.server.hub) as sftp:
        [item] = collect.list_inbound(sftp, "fse", 0)
        file_id = collect.fetch(sftp, hub.dsn, hub.settings, item)
        collect.validate(hub.dsn, hub.settings, file_id)
        collect.load(hub.dsn, hub.settings, file_id)
    # The worker dies here: loaded and committed, neither archived nor acknowledged.
    assert hub.inbox() == ["FSE_1.xml"]
    assert hub.collect() == [file_id]
    assert hub.files() == [("FSE_1.xml", "loaded", None, 5, True, True)]
    assert hub.query("SELECT count(*) FROM edi.fse_care_sheet") == [(5,)]
    assert ack_status(hub.ack("FSE_1.xml")) == ("accepted", "A")


def test_a_file_another_run_took_after_this_one_listed_it_is_left_to_that_run(
    hub: Hub, tmp_path: Path
) -> None:
    """Two runs over one inbox (an overlapping schedule, a manual trigger): the second lists
    the files, the first fetches, loads and archives them all, then the second comes to
    them. A file refused unread (too large) takes the same path."""
    hub.send(fse_file(tmp_path / "FSE_1.xml"))
    hub.send(fse_file(tmp_path / "FSE_2.xml", [sheet(i) for i in range(1, 41)], batch="2"))
    settings = dataclasses.replace(hub.settings, max_file_bytes=4096)
    with hub.server.connect(hub.server.hub) as sftp:
        listed = collect.list_inbound(sftp, "fse", 0)
        first_run = list(collect.collect(sftp, hub.dsn, settings, "fse"))
        assert [collect.process(sftp, hub.dsn, settings, item) for item in listed] == [None, None]
    assert len(first_run) == 2
    assert hub.files() == [
        ("FSE_1.xml", "loaded", None, 5, True, True),
        ("FSE_2.xml", "quarantined", "TOO_LARGE", None, True, True),
    ]
    with hub.server.connect(hub.partner) as sftp:
        assert sorted(n.split(".xml.")[0] for n in sftp.listdir("/outbound/acks")) == [
            "FSE_1",
            "FSE_2",
        ]


def test_rerunning_every_step_changes_nothing(hub: Hub, tmp_path: Path) -> None:
    hub.send(fse_file(tmp_path / "FSE_1.xml"))
    [file_id] = hub.collect()
    with hub.server.connect(hub.server.hub) as sftp:
        collect.validate(hub.dsn, hub.settings, file_id)
        collect.load(hub.dsn, hub.settings, file_id)
        collect.archive(sftp, hub.dsn, file_id)
        collect.acknowledge(sftp, hub.dsn, file_id)
    assert hub.query("SELECT count(*) FROM edi.fse_care_sheet") == [(5,)]
    assert len(hub.files()) == 1


def test_the_ack_names_the_received_file_and_its_batch(hub: Hub, tmp_path: Path) -> None:
    hub.send(fse_file(tmp_path / "FSE_1.xml", batch="000042"))
    hub.collect()
    file_el = hub.ack("FSE_1.xml").find("a:file", ACK_NS)
    assert file_el.get("batchNumber") == "000042"
    [(header,)] = hub.query("SELECT header FROM edi.inbound_file WHERE feed = 'fse'")
    assert header["sender"] == PRACTITIONER and header["batch_number"] == "000042"
    assert header["created_at"].startswith("2026-11-27T09:00:00")
    assert file_el.get("sender") == PRACTITIONER
    assert len(file_el.get("sha256")) == 64
    assert dt.datetime.fromisoformat(file_el.get("receivedAt"))


def test_every_rule_result_is_kept_per_file(hub: Hub, tmp_path: Path) -> None:
    sheets = [sheet(1), sheet(2, registration_number="9999"), sheet(3)]
    hub.send(fse_file(tmp_path / "f.xml", sheets))
    hub.collect()
    results = {
        (table, rule): (checked, failed)
        for table, rule, checked, failed in hub.query(
            "SELECT table_name, rule, checked, failed FROM edi.validation_result"
        )
    }
    assert results[("care_sheet", "FSE-R07")] == (3, 1)
    assert results[("care_sheet", "FSE-R04")] == (3, 0)
    assert results[("act", "FSE-R08")] == (6, 0)
    assert results[("file", "FSE-F02")] == (1, 0)
