"""The hostile-input corpus (tests/corpus/hostile/, issue 6) through the real hub, on both SFTP
servers and a real PostgreSQL: every file of the manifest is sent into its sender's inbox
(under the name the manifest gives), with the symlinks, FIFOs and oversized files the test
makes and one valid file per feed; one collect per feed; then every case must have ended in
its expected state, with the expected rule in its error record and in the acknowledgment the
partner reads, and the valid files must have been loaded: the hub went on with the next file.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import posixpath
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from edihub import clock, collect
from edihub.feeds import FEEDS
from edihub.pharmacy_writer import write_pharmacy_file
from edihub.registry_writer import write_snapshot
from edihub.sftp import layout
from edihub.sftp.client import put_atomic
from tests.fixtures.fse import fse_file, sheet
from tests.fixtures.hub import ACK_NS, ACK_SCHEMA, Hub, make_hub
from tests.fixtures.payroll import payroll_file
from tests.fixtures.pharmacy import PHARMACY, invoice
from tests.fixtures.registry import seed_registry
from tests.integration.test_inbox_tricks import SENDERS

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "hostile"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "manifest.yaml").read_text("utf-8"))["cases"]
# The day the corpus's dates are judged on (the hub's clock is pinned to it), and a size
# limit above every corpus file.
CORPUS_DAY = dt.date(2026, 11, 27)
MAX_FILE_BYTES = 32768
THIS_TEST = f"tests/integration/{Path(__file__).name}::test_the_corpus_ends_in_known_states"
MAKES = ("symlink", "fifo", "over_limit", "grows_after_listing")
ACK_STATUS = {"loaded": "accepted", "loaded_with_errors": "accepted_with_errors"}
# Where each feed's records go, and how the hub names acks (its own name, never the sender's).
RECORD_TABLES = {"fse": "fse_care_sheet", "pharmacy": "pharmacy_invoice",
                 "payroll": "payroll_salary_line"}  # fmt: skip
ACK_NAME = re.compile(r"[A-Za-z0-9._-]+\.[0-9]+\.ack\.xml")
# The cases sent to the hub here: the corpus files and what this test makes.
SENT = [c for c in CASES if "file" in c or "make" in c]


def sent_name(case: dict[str, Any]) -> str:
    """The name as the server holds it (bytes that are not UTF-8 as surrogate escapes)."""
    name = case.get("send_as") or posixpath.basename(case["file"])
    return os.fsdecode(name.encode(case.get("name_encoding", "utf-8")))


def inbox(feed: str) -> str:
    return layout.inbound_dir(SENDERS[feed], feed)


def valid_files(folder: Path) -> dict[str, Path]:
    """One valid file per feed, dated for CORPUS_DAY, of ids and batches no corpus file uses."""
    care = CORPUS_DAY - dt.timedelta(days=2)
    pharmacy = [invoice(i, dispensing_date=care) for i in (5, 6)]
    rows = [{"pharmacy_id": PHARMACY, "name": "Pharmacie Test",
             "teletransmission_start_date": dt.date(2016, 3, 1)},
            {"pharmacy_id": "PH000003", "name": "Pharmacie Trois",
             "teletransmission_start_date": dt.date(2026, 3, 1)}]  # fmt: skip
    folder.mkdir()
    return {
        "fse": fse_file(
            folder / "FSE_P10001_900099.xml",
            [sheet(i, care_date=care) for i in (7, 8)],
            batch="900099",
        ),
        "payroll": payroll_file(folder / "DSM_EMP001_900199.xml", batch="900199", period="2026-07"),
        "pharmacy": write_pharmacy_file(
            folder / "PH000001_90000298.txt", PHARMACY, "90000298", pharmacy, CORPUS_DAY
        ),
        "registry": write_snapshot(folder, "pharmacy", dt.date(2026, 3, 1), rows),
    }


def made(make: str, folder: Path) -> bytes:
    """The content of a file this test makes: a valid pharmacy file just over the size limit,
    or a small valid declaration (which grows past it once listed)."""
    if make == "over_limit":
        invoices = [invoice(i, dispensing_date=CORPUS_DAY) for i in range(100, 240)]
        path = write_pharmacy_file(folder / "big.txt", PHARMACY, "90000299", invoices, CORPUS_DAY)
        assert path.stat().st_size > MAX_FILE_BYTES
    else:
        path = payroll_file(folder / "growing.xml", batch="900198", period="2026-06")
    return path.read_bytes()


def drop(hub: Hub, feed: str, secret: Path, valid: Path, folder: Path) -> None:
    """Everything of ``feed``'s sender, as the partner sends it (links and FIFOs cannot be
    sent over SFTP: they are planted on the server's disk)."""
    local = hub.server.local(inbox(feed))
    with hub.server.connect(hub.partner) as sftp:
        for case in (c for c in SENT if c["feed"] == feed):
            name, make = sent_name(case), case.get("make")
            if make == "symlink":
                os.symlink(secret, local / name)
            elif make == "fifo":
                os.mkfifo(local / name)
            else:
                data = made(make, folder) if make else (CORPUS / case["file"]).read_bytes()
                put_atomic(sftp, data, f"/inbound/{feed}/{name}")
        put_atomic(sftp, valid.read_bytes(), f"/inbound/{feed}/{valid.name}")


def run_collect(hub: Hub, feed: str) -> None:
    """collect.collect's steps, with the growing files appended to between the listing and
    the downloads (as a partner still writing would)."""
    with hub.server.connect(hub.server.hub) as sftp:
        ready = collect.list_inbound(sftp, feed, hub.settings.settle_seconds)
        for case in SENT:
            if case["feed"] == feed and case.get("make") == "grows_after_listing":
                with hub.server.local(inbox(feed)).joinpath(sent_name(case)).open("ab") as fh:
                    fh.write(b" " * MAX_FILE_BYTES)
        for item in ready:
            collect.process(sftp, hub.dsn, hub.settings, item)


COLUMNS = ("id", "feed", "path", "remote_name", "state", "reason_code", "sha256",
           "records_loaded", "archived", "ack_path", "first_rule")  # fmt: skip


def received(hub: Hub) -> dict[bytes, dict[str, Any]]:
    """Every file that came over SFTP, by its exact remote path, with its first error's rule."""
    rows = hub.query(
        "SELECT f.id, f.feed, f.remote_path_raw, f.remote_name, f.state, f.reason_code,"
        " f.sha256, f.records_loaded, f.archived_at IS NOT NULL, f.ack_path, e.rule"
        " FROM edi.inbound_file f LEFT JOIN edi.file_error e ON e.file_id = f.id AND e.seq = 1"
        " WHERE f.remote_path NOT LIKE 'local:%%'"
    )
    return {bytes(r[2]): dict(zip(COLUMNS, r, strict=True)) for r in rows}


def read_acks(hubs: dict[str, Hub], rows: list[dict[str, Any]]) -> dict[int, etree._Element]:
    """Each file's acknowledgment as its partner reads it, through its own account."""
    acks = {}
    for feed, hub in hubs.items():
        with hub.server.connect(hub.partner) as sftp:
            for row in rows:
                if row["feed"] == feed and row["ack_path"]:
                    with sftp.open(f"/outbound/acks/{posixpath.basename(row['ack_path'])}") as fh:
                        acks[row["id"]] = etree.fromstring(fh.read())
                    ACK_SCHEMA.assertValid(acks[row["id"]])
    return acks


def outcome(row: dict[str, Any], ack: etree._Element | None) -> dict[str, Any]:
    """What became of one file, in the manifest's terms, from its row, its first error and
    its acknowledgment; ``problems`` lists what is wrong with the ack."""
    if ack is None:
        return {"state": row["state"], "problems": ["not acknowledged"], "text": ""}
    result = ack.find("a:result", ACK_NS)
    errors = ack.findall("a:errors/a:error", ACK_NS)
    state, rule = row["state"], row["reason_code"]
    problems = []
    if not ACK_NAME.fullmatch(posixpath.basename(row["ack_path"])):
        problems.append(f"ack file named {row['ack_path']!r}")
    if ack.find("a:file", ACK_NS).get("name") != row["remote_name"]:
        problems.append("ack names another file")
    if result.get("status") != ACK_STATUS.get(state, state):
        problems.append(f"ack status {result.get('status')}")
    if rule and (result.get("reasonCode"), row["first_rule"]) != (rule, rule):
        problems.append(f"ack reason {result.get('reasonCode')}, first error {row['first_rule']}")
    if rule and not any(e.get("rule") == rule and e.text for e in errors):
        problems.append("no ack error names the rule")
    return {
        "state": state,
        "rule": rule,
        "unread": row["sha256"] is None,
        "records_loaded": bool(row["records_loaded"]),
        "archived": row["archived"],
        "problems": problems,
        # shown without control or bidi characters, in the hub and in the ack
        "printable": row["remote_name"].isprintable(),
        "text": " ".join(e.text or "" for e in errors),
    }


def test_the_corpus_ends_in_known_states(
    sftp_server: Any, dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(clock.SHIFT_VARIABLE, str(clock.shift_to(CORPUS_DAY)))
    monkeypatch.setenv("EDIHUB_MAX_FILE_BYTES", str(MAX_FILE_BYTES))
    seed_registry(dsn, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for partners")
    valid = valid_files(tmp_path / "valid")
    hubs = {feed: make_hub(sftp_server, SENDERS[feed], dsn, tmp_path / "state", feed)
            for feed in ("registry", "fse", "pharmacy", "payroll")}  # fmt: skip
    for feed, hub in hubs.items():
        drop(hub, feed, secret, valid[feed], tmp_path)
    for feed, hub in hubs.items():  # the registry first, as the hub's schedule does
        run_collect(hub, feed)

    rows = received(hubs["fse"])
    acks = read_acks(hubs, list(rows.values()))
    expected, found = {}, {}
    for case in SENT:
        want = case["expect"]
        expected[case["id"]] = {
            "state": want["state"],
            "rule": want.get("rule"),
            "unread": want.get("unread", False),
            "records_loaded": want["state"] == "loaded",
            "archived": True,
            "problems": [],
            "printable": True,
            "message": True,
        }
        path = posixpath.join(inbox(case["feed"]), sent_name(case))
        row = rows.pop(path.encode("utf-8", "surrogateescape"), None)
        if row is None:
            found[case["id"]] = "never registered"
            continue
        got = outcome(row, acks.get(row["id"]))
        got["message"] = want.get("message", "") in got.pop("text")
        found[case["id"]] = got
    assert found == expected
    # The valid file of each feed was loaded after the hostile ones, and nothing else came in.
    assert sorted((r["feed"], r["remote_name"], r["state"], r["records_loaded"] > 0)
                  for r in rows.values()) == sorted(
        (feed, path.name, "loaded", True) for feed, path in valid.items()
    )  # fmt: skip
    for feed, table in RECORD_TABLES.items():  # no record of a refused file was loaded
        [(stored,)] = hubs[feed].query(f"SELECT count(*) FROM edi.{table}")
        [(loaded,)] = hubs[feed].query(
            "SELECT sum(records_loaded) FROM edi.inbound_file WHERE feed = %s", feed
        )
        assert stored == loaded, feed
    for feed, hub in hubs.items():
        assert hub.inbox() == [], feed  # every entry left the inbox, links and FIFOs too
    assert secret.read_text() == "not for partners"


def test_the_manifest_lists_every_corpus_file_and_case() -> None:
    on_disk = {
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "manifest.yaml"
    }
    listed = [c["file"] for c in CASES if "file" in c]
    assert sorted(listed) == sorted(on_disk)
    assert len({c["id"] for c in CASES}) == len(CASES)
    for case in CASES:
        assert case["feed"] in FEEDS and case["id"].startswith(case["feed"] + "-"), case
        assert case["attack"] and case.get("file", case["feed"] + "/").startswith(
            case["feed"] + "/"
        )
        want = case["expect"]
        if "outcome" in want:  # never reaches the hub, or not in one collect: another test's
            assert case.get("made_by") == "test" and "make" not in case, case
        else:
            assert want["state"] in collect.FINAL_STATES, case
            assert ("rule" in want) == (want["state"] != "loaded"), case
            assert isinstance(want.get("message", ""), str), case
        if case.get("made_by") == "test":
            module, function = case["test"].split("::")
            found = importlib.import_module(module.removesuffix(".py").replace("/", "."))
            assert callable(getattr(found, function, None)), case["test"]
            assert ("make" in case) == (case["test"] == THIS_TEST), case
            assert case.get("make", MAKES[0]) in MAKES and "file" not in case, case
        else:
            assert "file" in case and "test" not in case, case
