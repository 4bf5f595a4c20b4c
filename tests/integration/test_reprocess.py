"""Reprocessing and quarantine release (edihub.reprocess) on the real PostgreSQL and both SFTP
servers: a rejected file tried again after a registry fix, a loaded one refused, a sender's
day, a file quarantined unread released, an insurer's lost export put back with its bytes."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from edihub import audit, cli, collect, faults, reprocess
from edihub.clock import monaco_today
from edihub.load.db import connect
from tests.fixtures.exports import Exports, day_of_care
from tests.fixtures.fse import fse_file, sheet
from tests.fixtures.hub import ACK_SCHEMA, Hub, ack_status, make_hub
from tests.fixtures.registry import NEWCOMER, learn_newcomer, seed_registry


@pytest.fixture
def hub(sftp_server: Any, dsn: str, tmp_path: Path) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, NEWCOMER, dsn, tmp_path / "state", "fse")


def _file(hub: Hub, name: str, first: int, batch: str) -> Path:
    sheets = [sheet(i, practitioner_id=NEWCOMER) for i in range(first, first + 3)]
    return fse_file(hub.settings.state_dir.parent / name, sheets, NEWCOMER, batch)


def _ids(hub: Hub) -> dict[str, int]:
    rows = hub.query(
        "SELECT remote_name, id FROM edi.inbound_file WHERE sender = %s"
        " AND original_file_id IS NULL",
        NEWCOMER,
    )
    return dict(rows)


def _acks(hub: Hub, name: str) -> dict[int, tuple[str, str]]:
    """The sender's acknowledgments of ``name``, by file id, read through its own account."""
    found = {}
    with hub.server.connect(hub.partner) as sftp:
        for ack in sorted(n for n in sftp.listdir("/outbound/acks") if n.startswith(name)):
            with sftp.open(f"/outbound/acks/{ack}") as fh:
                doc = etree.fromstring(fh.read())
            ACK_SCHEMA.assertValid(doc)
            found[int(ack.split(".")[-3])] = ack_status(doc)
    return found


def _events(dsn: str, action: str) -> list[dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor() as cur:
        return audit.events(cur, action=action)


def _cli_env(hub: Hub) -> dict[str, str]:
    """What the command line reads: the database, the state folder, the hub's SFTP account."""
    endpoint = hub.server.hub
    return {
        "EDIHUB_DATABASE_URL": hub.dsn,
        "EDIHUB_STATE_DIR": str(hub.settings.state_dir),
        "EDIHUB_SFTP_HOST": endpoint.host,
        "EDIHUB_SFTP_PORT": str(endpoint.port),
        "EDIHUB_SFTP_USER": endpoint.username,
        "EDIHUB_SFTP_KEY_FILE": str(endpoint.private_key_path),
        "EDIHUB_SFTP_HOST_KEY": endpoint.host_key,
    }


def test_reprocess_after_a_registry_fix_and_a_senders_day(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDIHUB_ACTOR", "ops.jdoe")
    hub.send(_file(hub, "F1.xml", 1, "000001"))
    hub.send(_file(hub, "F2.xml", 4, "000002"))
    hub.send(_file(hub, "F0.xml", 10, "000004"))
    hub.collect()
    ids = _ids(hub)
    assert [r[1:3] for r in hub.files()] == [("rejected", "ALL_RECORDS_REJECTED")] * 3
    (errors_before,) = hub.query("SELECT count(*) FROM edi.file_error WHERE file_id = %s",
                                 ids["F1.xml"])  # fmt: skip
    assert errors_before[0] == 3
    with hub.server.connect(hub.server.hub) as sftp:
        with pytest.raises(reprocess.Refused, match="not quarantined: reprocess it"):
            reprocess.release(sftp, hub.dsn, hub.settings, ids["F1.xml"])
        learn_newcomer(hub.dsn, hub.settings)
        (gone,) = hub.query("SELECT archive_path FROM edi.inbound_file WHERE id = %s",
                            ids["F0.xml"])  # fmt: skip
        sftp.remove(gone[0])  # past its retention period
        with pytest.raises(reprocess.Refused, match="is gone"):
            reprocess.reprocess_file(sftp, hub.dsn, hub.settings, ids["F0.xml"])
        first = reprocess.reprocess_file(sftp, hub.dsn, hub.settings, ids["F1.xml"], "P10002 added")
        assert (first.original_id, first.state) == (ids["F1.xml"], "loaded")
        # Once an attempt is loaded, the file is done, whichever of the two is named.
        for named in (ids["F1.xml"], first.file_id):
            with pytest.raises(reprocess.Refused, match=f"fse-{first.file_id}, which is loaded"):
                reprocess.reprocess_file(sftp, hub.dsn, hub.settings, named)
    # The original as it was: rejected, its errors and its ack; the attempt linked, loaded.
    rows = hub.query(
        "SELECT id, original_file_id, state, archive_path FROM edi.inbound_file"
        " WHERE remote_name = 'F1.xml' ORDER BY id"
    )
    assert [r[:3] for r in rows] == [
        (ids["F1.xml"], None, "rejected"),
        (first.file_id, ids["F1.xml"], "loaded"),
    ]
    assert rows[0][3] == rows[1][3]  # read from the original's archive, left there
    assert hub.query("SELECT count(*) FROM edi.file_error WHERE file_id = %s",
                     ids["F1.xml"]) == [errors_before]  # fmt: skip
    assert _acks(hub, "F1.xml") == {
        ids["F1.xml"]: ("rejected", "R"),
        first.file_id: ("accepted", "A"),
    }
    (event,) = _events(hub.dsn, "file.reprocess")
    assert (event["actor"], event["subject"], event["detail"]) == (
        "ops.jdoe",
        str(ids["F1.xml"]),
        {"new_file_id": first.file_id, "reason": "P10002 added"},
    )
    # The sender's day, through the command line: F2 tried again; F1 (done), F0 (its archive
    # gone) and F3 (loaded when it came) left, and said why.
    hub.send(_file(hub, "F3.xml", 7, "000003"))
    hub.collect()
    f3 = _ids(hub)["F3.xml"]
    for name, value in _cli_env(hub).items():
        monkeypatch.setenv(name, value)
    day = monaco_today().isoformat()
    assert cli.main(["reprocess", "sender", NEWCOMER, "--day", day]) == 0
    assert hub.query(
        "SELECT original_file_id, state FROM edi.inbound_file WHERE original_file_id IS NOT NULL"
        " ORDER BY id"
    ) == [(ids["F1.xml"], "loaded"), (ids["F2.xml"], "loaded")]
    assert [e["subject"] for e in _events(hub.dsn, "file.reprocess")] == [
        str(ids["F2.xml"]),
        str(ids["F1.xml"]),
    ]
    with hub.server.connect(hub.server.hub) as sftp:
        with pytest.raises(reprocess.Refused, match="is loaded: its records are loaded"):
            reprocess.reprocess_file(sftp, hub.dsn, hub.settings, f3)
        attempts, left = reprocess.reprocess_sender_day(
            sftp, hub.dsn, hub.settings, NEWCOMER, monaco_today()
        )
    assert attempts == [] and sorted(left) == [*sorted(ids.values()), f3]
    # Each sheet once: exactly once held through every attempt.
    assert hub.query("SELECT count(*), count(DISTINCT sheet_id) FROM edi.fse_care_sheet"
                     " WHERE sender = %s", NEWCOMER) == [(9, 9)]  # fmt: skip


def test_a_file_quarantined_for_its_size_is_released_once_the_limit_is_raised(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    learn_newcomer(hub.dsn, hub.settings)
    strict = dataclasses.replace(hub.settings, max_file_bytes=512)
    hub.send(_file(hub, "BIG.xml", 1, "000001"))
    with hub.server.connect(hub.server.hub) as sftp:
        (file_id,) = collect.collect(sftp, hub.dsn, strict, "fse")
        assert hub.files() == [("BIG.xml", "quarantined", "TOO_LARGE", None, True, True)]
        assert reprocess.quarantined(hub.dsn)[0]["attempt_id"] is None
        with pytest.raises(reprocess.Refused, match="over the limit of 512"):
            reprocess.release(sftp, hub.dsn, strict, file_id)
        with pytest.raises(reprocess.Refused, match="release it"):
            reprocess.reprocess_file(sftp, hub.dsn, hub.settings, file_id)
        # The release's worker killed in the middle of the load, then the release run again:
        # it finishes the attempt the first one left, rather than making another.
        env = os.environ | _cli_env(hub) | {faults.VARIABLE: "collect.mid_copy"}
        command = [sys.executable, "-m", "edihub.cli", "quarantine", "release", str(file_id)]
        killed = subprocess.run([*command, "--reason", "limit raised"], env=env, check=False)
        assert killed.returncode == -signal.SIGKILL
        assert hub.query("SELECT state FROM edi.inbound_file WHERE original_file_id = %s",
                         file_id) == [("received",)]  # fmt: skip
        released = reprocess.release(sftp, hub.dsn, hub.settings, file_id)
    assert released.state == "loaded"
    (listed,) = reprocess.quarantined(hub.dsn)
    assert (listed["id"], listed["attempt_id"], listed["attempt_state"]) == (
        file_id,
        released.file_id,
        "loaded",
    )
    monkeypatch.setenv("EDIHUB_DATABASE_URL", hub.dsn)
    assert cli.main(["quarantine", "list"]) == 0
    (line,) = [n for n in capsys.readouterr().out.splitlines() if n.startswith(f"{file_id} ")]
    assert line.startswith(f"{file_id} fse {NEWCOMER} BIG.xml TOO_LARGE ")
    assert line.endswith(f" released as {released.file_id}: loaded")
    (sha256,) = hub.query("SELECT sha256 FROM edi.inbound_file WHERE id = %s", released.file_id)
    assert sha256[0] is not None  # read at last: the quarantine had not
    assert _acks(hub, "BIG.xml") == {
        file_id: ("quarantined", "R"),
        released.file_id: ("accepted", "A"),
    }
    (event,) = _events(hub.dsn, "file.release")
    assert event["detail"] == {"new_file_id": released.file_id, "reason": "limit raised"}


def test_an_insurers_day_is_republished_with_the_same_bytes(exports: Exports) -> None:
    today = monaco_today()
    day_of_care(exports, today)
    with exports.server.connect(exports.server.hub) as sftp:
        with pytest.raises(reprocess.Refused, match="was published"):
            reprocess.republish(sftp, exports.dsn, "INS01", today)
        first = exports.publish("INS01", today)
        before = exports.pulled("INS01")
        sftp.remove(first.path)  # the insurer lost it (or it left the server)
        sftp.remove(first.path + ".manifest.json")
        again = reprocess.republish(sftp, exports.dsn, "INS01", today, "INS01 lost it")
        assert reprocess.republish(sftp, exports.dsn, "INS01", today).uploaded is False
    assert (again.uploaded, again.sha256, again.sequence) == (True, first.sha256, 1)
    assert exports.pulled("INS01") == before
    later, event = _events(exports.dsn, "export.republish")
    assert (event["subject"], event["detail"]["sha256"], event["detail"]["uploaded"]) == (
        first.path,
        first.sha256,
        True,
    )
    assert event["detail"]["reason"] == "INS01 lost it" and later["detail"]["uploaded"] is False
