"""The registry feed (CSV snapshots) through the same collection, on the real servers: a
snapshot replaces its document whole or not at all, and every row's history is kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edihub import collect
from edihub.formats.contract import load_formats
from edihub.registry_writer import write_snapshot
from tests.fixtures.hub import ACK_NS, Hub, ack_status, make_hub
from tests.fixtures.registry import CORE, SNAPSHOT_DAY, registry_snapshots

NEXT_DAY = SNAPSHOT_DAY + dt.timedelta(days=28)
REGISTRY_FORMAT = Path(__file__).parents[2] / "formats" / "registry" / "v1"


@pytest.fixture
def hub(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    return make_hub(sftp_server, CORE, dsn, tmp_path / "state", "registry")


def practitioner(pid: str, kind: str = "general_practitioner", **more: Any) -> dict[str, Any]:
    return {"practitioner_id": pid, "kind": kind, "name": f"Dr {pid}"} | more


def test_every_document_is_loaded_and_acknowledged(hub: Hub, tmp_path: Path) -> None:
    for path in registry_snapshots(tmp_path / "out"):
        hub.send(path)
    hub.collect()
    files = hub.files()
    assert {(name, state) for name, state, *_ in files} == {
        (f"{doc}_20260131.csv", "loaded")
        for doc in ("insured", "card", "practitioner", "employer", "insurer", "pharmacy")
    }
    assert all(archived and acked for *_, archived, acked in files)
    assert hub.query("SELECT count(*) FROM edi.registry_insured") == [(3,)]
    assert hub.query("SELECT count(*) FROM edi.registry_card") == [(6,)]
    assert hub.query(
        "SELECT kind, specialty, fse_start_date FROM edi.registry_practitioner"
        " WHERE practitioner_id = 'S30001'"
    ) == [("specialist", "cardiology", dt.date(2016, 1, 1))]
    assert hub.query(
        "SELECT email_validated, dematerialisation, insurer_id FROM edi.registry_insured"
        " WHERE beneficiary_key = '123456/0'"
    ) == [(True, True, "INS01")]
    assert hub.query(
        "SELECT document, snapshot_date, row_count FROM edi.registry_snapshot"
        " WHERE document = 'practitioner'"
    ) == [("practitioner", SNAPSHOT_DAY, 3)]
    assert hub.query("SELECT count(*) FROM edi.registry_history WHERE valid_to IS NULL") == [
        (3 + 6 + 3 + 3 + 1 + 1,)  # insured, cards, practitioners, employers, ...
    ]
    assert ack_status(hub.ack("insured_20260131.csv")) == ("accepted", "A")


def test_a_newer_snapshot_replaces_the_table_and_keeps_history(hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = [practitioner("P1"), practitioner("P2"), practitioner("P3")]
    hub.send(write_snapshot(out, "practitioner", SNAPSHOT_DAY, first))
    hub.collect()
    # P1 unchanged, P2 starts FSE, P3 leaves, P4 arrives
    second = [
        practitioner("P1"),
        practitioner("P2", fse_start_date=dt.date(2026, 2, 15)),
        practitioner("P4", "dentist"),
    ]
    hub.send(write_snapshot(out, "practitioner", NEXT_DAY, second))
    hub.collect()
    assert [s for _, s, *_ in hub.files()] == ["loaded", "loaded"]
    assert hub.query(
        "SELECT practitioner_id, fse_start_date FROM edi.registry_practitioner ORDER BY 1"
    ) == [("P1", None), ("P2", dt.date(2026, 2, 15)), ("P4", None)]
    history = hub.query(
        "SELECT key, valid_from, valid_to, row->>'fse_start_date' FROM edi.registry_history"
        " WHERE document = 'practitioner' ORDER BY key, valid_from"
    )
    assert history == [
        ("P1", SNAPSHOT_DAY, None, None),
        ("P2", SNAPSHOT_DAY, NEXT_DAY, None),
        ("P2", NEXT_DAY, None, "2026-02-15"),
        ("P3", SNAPSHOT_DAY, NEXT_DAY, None),
        ("P4", NEXT_DAY, None, None),
    ]
    # A row the second snapshot left as it was is not rewritten: it is still the first file's.
    first_file, second_file = (
        i for i, *_ in hub.query("SELECT id FROM edi.inbound_file ORDER BY id")
    )
    assert hub.query(
        "SELECT practitioner_id, file_id, record_no, unchanged_since"
        " FROM edi.registry_practitioner ORDER BY 1"
    ) == [
        ("P1", first_file, 1, SNAPSHOT_DAY),
        ("P2", second_file, 2, NEXT_DAY),
        ("P4", second_file, 3, NEXT_DAY),
    ]
    assert hub.query(
        "SELECT document, snapshot_date, row_count FROM edi.registry_snapshot ORDER BY 2"
    ) == [("practitioner", SNAPSHOT_DAY, 3), ("practitioner", NEXT_DAY, 3)]


def test_every_documents_history_is_keyed_by_its_format(hub: Hub, tmp_path: Path) -> None:
    """edi.registry_history (a view written in SQL) keys each document's current rows by the
    snapshot key its format contract declares, and keeps them in step across snapshots."""
    documents = [f for f in load_formats(REGISTRY_FORMAT) if f.record.snapshot_key]
    public = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    key = {"sftp_account": "ins01", "public_key": f"{public} ins01", "added_on": SNAPSHOT_DAY}
    out = tmp_path / "out"
    for path in registry_snapshots(out):
        hub.send(path)
    hub.send(write_snapshot(out, "sftp_key", SNAPSHOT_DAY, [key]))
    hub.collect()
    assert {s for _, s, *_ in hub.files()} == {"loaded"}
    assert {f.document for f in documents} == {
        d for (d,) in hub.query("SELECT DISTINCT document FROM edi.registry_snapshot")
    }
    for fmt in documents:
        table = f"edi.{fmt.feed}_{fmt.record.table}"
        keys = ", ".join(fmt.record.snapshot_key)
        in_table = hub.query(f"SELECT concat_ws('/', {keys}) FROM {table} ORDER BY 1")
        in_history = hub.query(
            "SELECT key FROM edi.registry_history WHERE document = %s AND valid_to IS NULL"
            " ORDER BY 1",
            fmt.record.table,
        )
        assert in_table and in_history == in_table, fmt.document


def test_a_document_back_to_earlier_bytes_is_a_new_snapshot(hub: Hub, tmp_path: Path) -> None:
    """The snapshot's date is in its name, not its bytes: A, B, then A again leaves A in force,
    and the same file sent again is still a duplicate."""
    out = tmp_path / "out"
    a, b = [practitioner("P1")], [practitioner("P1", "dentist")]
    days = [SNAPSHOT_DAY, NEXT_DAY, NEXT_DAY + dt.timedelta(days=1)]
    for day, rows in zip(days, (a, b, a), strict=True):
        hub.send(write_snapshot(out / day.isoformat(), "practitioner", day, rows))
        hub.collect()
    hub.send(write_snapshot(out / "again", "practitioner", days[2], a))
    hub.collect()
    assert [(s, r) for _, s, r, *_ in hub.files()] == [
        ("loaded", None),
        ("loaded", None),
        ("loaded", None),
        ("duplicate", "DUPLICATE_FILE"),
    ]
    assert hub.query("SELECT kind, unchanged_since FROM edi.registry_practitioner") == [
        ("general_practitioner", days[2])
    ]


def test_an_older_snapshot_never_replaces_a_newer_one(hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "out"
    hub.send(write_snapshot(out, "practitioner", NEXT_DAY, [practitioner("NEW")]))
    hub.collect()
    hub.send(write_snapshot(out, "practitioner", SNAPSHOT_DAY, [practitioner("OLD")]))
    hub.collect()
    assert [(s, r) for _, s, r, *_ in hub.files()] == [("loaded", None), ("rejected", "REG-F02")]
    assert hub.query("SELECT practitioner_id FROM edi.registry_practitioner") == [("NEW",)]


def test_two_snapshots_loading_in_the_wrong_order_keep_the_newer(
    hub: Hub, tmp_path: Path, sftp_server: Any
) -> None:
    """Both validated before either is loaded (one collect run); the older loads last."""
    out = tmp_path / "out"
    hub.send(write_snapshot(out, "practitioner", SNAPSHOT_DAY, [practitioner("OLD")]))
    hub.send(write_snapshot(out, "practitioner", NEXT_DAY, [practitioner("NEW")]))
    with sftp_server.connect(sftp_server.hub) as sftp:
        items = collect.list_inbound(sftp, "registry", 0)
        ids = {i.name: collect.fetch(sftp, hub.dsn, hub.settings, i) for i in items}
        for file_id in ids.values():
            collect.validate(hub.dsn, hub.settings, file_id)
        collect.load(hub.dsn, hub.settings, ids["practitioner_20260228.csv"])
        collect.load(hub.dsn, hub.settings, ids["practitioner_20260131.csv"])
    outcome = collect.file_summary(hub.dsn, ids["practitioner_20260131.csv"])
    assert (outcome["state"], outcome["reason_code"]) == ("rejected", "STALE_SNAPSHOT")
    assert hub.query("SELECT practitioner_id FROM edi.registry_practitioner") == [("NEW",)]


def test_only_the_core_systems_may_send_a_snapshot(
    sftp_server: Any, dsn: str, tmp_path: Path
) -> None:
    doctor = make_hub(sftp_server, "P10001", dsn, tmp_path / "state", "registry")
    doctor.send(write_snapshot(tmp_path / "out", "practitioner", SNAPSHOT_DAY, [practitioner("X")]))
    doctor.collect()
    assert [(s, r) for _, s, r, *_ in doctor.files()] == [("rejected", "REG-F01")]
    assert doctor.query("SELECT count(*) FROM edi.registry_practitioner") == [(0,)]


def test_one_bad_row_rejects_the_whole_snapshot(hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "out"
    hub.send(write_snapshot(out, "practitioner", SNAPSHOT_DAY, [practitioner("KEEP")]))
    hub.collect()
    rows = [practitioner("A"), practitioner("B", "specialist"), practitioner("C", "nurse")]
    hub.send(write_snapshot(out, "practitioner", NEXT_DAY, rows))
    hub.collect()
    assert [(s, r) for _, s, r, *_ in hub.files()][1] == ("rejected", "INCOMPLETE_SNAPSHOT")
    assert hub.query("SELECT practitioner_id FROM edi.registry_practitioner") == [("KEEP",)]
    errors = hub.ack("practitioner_20260228.csv").findall("a:errors/a:error", ACK_NS)
    assert sorted((e.get("record"), e.get("recordId"), e.get("rule")) for e in errors) == [
        ("2", "B", "REG-PRA-03"),
        ("3", "C", "REG-PRA-02"),
    ]


HEADER = "practitioner_id,kind,specialty,name,fse_start_date\n"
BAD_INPUTS = {
    # name: (file name, bytes, state, reason)
    "wrong-delimiter": (
        "practitioner_20260131.csv",
        HEADER.replace(",", ";") + "P1;general_practitioner;;Dr;\n",
        "rejected",
        "HEADER_ROW",
    ),
    "missing-column": (
        "practitioner_20260131.csv",
        "practitioner_id,kind,name\nP1,general_practitioner,Dr\n",
        "rejected",
        "HEADER_ROW",
    ),
    "latin-1": (
        "practitioner_20260131.csv",
        (HEADER + "P1,general_practitioner,,Dr Hélène,\n").encode("latin-1"),
        "rejected",
        "ENCODING",
    ),
    "short-row": (
        "practitioner_20260131.csv",
        HEADER + "P1,general_practitioner,,Dr,\nP2,dentist\n",
        "rejected",
        "ROW_COLUMNS",
    ),
    "not-a-date": (
        "practitioner_20260131.csv",
        HEADER + "P1,general_practitioner,,Dr,31/01/2016\n",
        "rejected",
        "FIELD_TYPE",
    ),
    "impossible-date": (
        "practitioner_20260131.csv",
        HEADER + "P1,general_practitioner,,Dr,2016-02-30\n",
        "rejected",
        "FIELD_TYPE",
    ),
    "empty-required": (
        "practitioner_20260131.csv",
        HEADER + "P1,general_practitioner,,,\n",
        "rejected",
        "MISSING_VALUE",
    ),
    "unknown-name": (
        "doctors.csv",
        HEADER + "P1,general_practitioner,,Dr,\n",
        "rejected",
        "FILE_NAME",
    ),
    "header-only": ("practitioner_20260131.csv", HEADER, "rejected", "REG-F03"),
    "utf16": (
        "practitioner_20260131.csv",
        (HEADER + "P1,general_practitioner,,Dr,\n").encode("utf-16"),
        "rejected",
        "ENCODING",
    ),
    # what spreadsheets write: accepted
    "utf8-bom": (
        "practitioner_20260131.csv",
        b"\xef\xbb\xbf" + (HEADER + 'P1,general_practitioner,,"Dr Hélène, MD",\n').encode(),
        "loaded",
        None,
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_ends_in_a_known_state_with_its_ack(hub: Hub, tmp_path: Path, case: str) -> None:
    name, content, state, reason = BAD_INPUTS[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    hub.send(path, name)
    hub.send(
        write_snapshot(
            tmp_path / "out", "pharmacy", SNAPSHOT_DAY, [{"pharmacy_id": "PH1", "name": "P"}]
        )
    )
    hub.collect()
    outcomes = {n: (s, r) for n, s, r, *_ in hub.files()}
    assert outcomes[name] == (state, reason)
    assert outcomes["pharmacy_20260131.csv"] == ("loaded", None)  # the hub went on
    assert hub.inbox() == []
    loaded = hub.query("SELECT count(*) FROM edi.registry_practitioner")[0][0]
    assert loaded == (1 if state == "loaded" else 0)
    error = hub.ack(name).find("a:errors/a:error", ACK_NS)
    if reason:
        assert error.get("rule") == reason and error.text
    if case == "wrong-delimiter":
        assert "separated by semicolons" in error.text
    if case == "utf8-bom":
        assert hub.query("SELECT name FROM edi.registry_practitioner") == [("Dr Hélène, MD",)]
