"""What partners put in their inboxes besides files, for every feed, on both SFTP servers:
hostile names, a file of another feed (symlinks and FIFOs are cases of the hostile corpus,
test_hostile_corpus.py). Each ends in a known state with an acknowledgment the sender can act
on; nothing is read that should not be, nothing loaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from edihub.config import Settings
from edihub.feeds import FEEDS
from edihub.formats.contract import feed_formats
from edihub.partner_docs import EXAMPLES
from tests.fixtures.hub import ACK_NS, Hub, ack_status, make_hub
from tests.fixtures.registry import CORE, seed_registry

# The account each feed's files come from in the tests' registry.
SENDERS = {"fse": "P10001", "pharmacy": "PH000001", "payroll": "EMP001", "registry": CORE}
# Each feed's example file, as the partner documentation shows it.
EXAMPLE_OF = {feed: EXAMPLES[feed_formats(Settings.from_env().formats_dir, feed)[-1].label]
              for feed in FEEDS}  # fmt: skip


def hub_for(sftp_server: Any, dsn: str, tmp_path: Path, feed: str) -> Hub:
    seed_registry(dsn, tmp_path)
    return make_hub(sftp_server, SENDERS[feed], dsn, tmp_path / "state", feed)


def inbox(hub: Hub) -> Path:
    return hub.server.local(f"/partners/{SENDERS[hub.feed]}/inbound/{hub.feed}")


def received(hub: Hub) -> list[tuple[Any, ...]]:
    """(name, state, reason code, records loaded, archived, acknowledged) of the files that
    came over SFTP (not the registry the tests seed from local files)."""
    return hub.query(
        "SELECT remote_name, state, reason_code, records_loaded, archived_at IS NOT NULL,"
        " acked_at IS NOT NULL FROM edi.inbound_file"
        " WHERE feed = %s AND remote_path NOT LIKE 'local:%%' ORDER BY id",
        hub.feed,
    )


def the_ack(hub: Hub) -> Any:
    with hub.server.connect(hub.partner) as sftp:
        [name] = sftp.listdir("/outbound/acks")
    return hub.ack(name)


# (A name with a leading dot is an upload in progress, left alone like `.part` names.)
@pytest.mark.parametrize("feed", sorted(FEEDS))
@pytest.mark.parametrize(
    "name",
    [b"x\\..\\..\\partners\\other.xml", b"C:\\evil.xml", b"tab\there.xml", b"\xe2\x80\xaeevil"],
    ids=["dot-dot-backslash", "drive-path", "control-char", "bidi-override"],
)
def test_hostile_names_are_quarantined_unread(
    sftp_server: Any, dsn: str, tmp_path: Path, feed: str, name: bytes
) -> None:
    hub = hub_for(sftp_server, dsn, tmp_path, feed)
    example_name, write = EXAMPLE_OF[feed]
    source = write(tmp_path / example_name)
    target = os.path.join(os.fsencode(inbox(hub)), name)
    with open(target, "wb") as fh:
        fh.write(source.read_bytes())
    hub.collect()
    assert [row[1:3] for row in received(hub)] == [("quarantined", "UNSAFE_NAME")]
    assert os.listdir(inbox(hub)) == []
    assert ack_status(the_ack(hub)) == ("quarantined", "R")


# Each feed's example dropped into the next feed's folder.
MISPLACED = [(feed, sorted(FEEDS)[(i + 1) % len(FEEDS)]) for i, feed in enumerate(sorted(FEEDS))]


@pytest.mark.parametrize(("feed", "folder"), MISPLACED)
def test_a_file_in_another_feeds_folder_is_told_where_it_belongs(
    sftp_server: Any, dsn: str, tmp_path: Path, feed: str, folder: str
) -> None:
    hub = hub_for(sftp_server, dsn, tmp_path, folder)
    example_name, write = EXAMPLE_OF[feed]
    hub.send(write(tmp_path / example_name))
    hub.collect()
    assert [row[1:4] for row in received(hub)] == [("rejected", "WRONG_FOLDER", 0)]
    ack = the_ack(hub)
    assert ack_status(ack) == ("rejected", "R")
    [error] = ack.iterfind(".//a:error", ACK_NS)
    assert error.get("rule") == "WRONG_FOLDER"
    assert f"send it to /inbound/{feed}/" in error.text
