"""``edihub partners`` on a real PostgreSQL and a real SFTP server: each change is a new
registry snapshot through the contracts (a bad one refused whole, with the contract's rule),
audited with its before and after (a key only by fingerprint), and followed by the SFTP side:
the OpenSSH configuration written again and the embedded server's logins."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from edihub import cli, clock, partners
from edihub.registry_writer import write_snapshot
from edihub.sftp import client
from edihub.sftp.client import SftpEndpoint
from edihub.sftp.server import EmbeddedSftpServer, SftpAccount
from edihub.sftp.sshd_config import parse_public_key
from tests.fixtures.fse import PRACTITIONER
from tests.fixtures.funds import Funds
from tests.fixtures.registry import CORE, SNAPSHOT_DAY
from tests.fixtures.sftp import new_key_pair

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def edihub(
    funds: Funds, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    """``edihub ARGS...`` as the engineer j.dupont types it: (exit status, stdout, stderr)."""
    monkeypatch.setenv("EDIHUB_DATABASE_URL", funds.dsn)
    monkeypatch.setenv("EDIHUB_STATE_DIR", str(funds.settings.state_dir))
    monkeypatch.setenv("EDIHUB_ACTOR", "j.dupont")

    def run(*args: str) -> tuple[int, str, str]:
        status = cli.main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


@contextlib.contextmanager
def following_server(
    tree: Path, host_key: Path, config_dir: Path, hub: SftpAccount
) -> Iterator[EmbeddedSftpServer]:
    """An embedded SFTP server whose partner accounts are those of ``config_dir``."""
    tree.mkdir(parents=True, exist_ok=True)
    with EmbeddedSftpServer(tree, host_key, [hub]) as server:
        stop = partners.follow_sshd_config(server, config_dir, tree, [hub], interval=0.1)
        try:
            yield server
        finally:
            stop()


def can_log_in(server: EmbeddedSftpServer, account: str, key: Path, wait: float = 3.0) -> bool:
    """Whether ``account`` logs in with ``key`` once the server has followed the last change
    (asked again for up to ``wait`` seconds: the follower polls)."""
    endpoint = SftpEndpoint(server.host, server.port, account, key, server.host_key_line)
    deadline = time.monotonic() + wait
    while True:
        try:
            with client.connect(endpoint) as sftp:
                sftp.listdir("/")
            return True
        except paramiko.AuthenticationException:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


def test_a_change_is_a_new_snapshot_refused_whole_by_the_contract_and_audited(
    edihub: Run, funds: Funds
) -> None:
    today = clock.monaco_today()  # snapshots are dated by the hub's clock
    add = ("partners", "add", "insurer", "INS53", "name=Mutuelle 53", "sftp_account=ins53",
           "status=active", "export_format=csv", "export_time=06:00")  # fmt: skip
    status, out, _ = edihub(*add)
    assert status == 0 and "partner.add INS53: insurer_" in out
    # A bad value is refused by the contract's rule, and nothing of the change is applied.
    status, _, err = edihub("partners", "change", "INS53", "export_format=pdf", "export_time=7h")
    assert status == 2 and "REG-INR-03" in err and "REG-INR-04" in err
    assert funds.query(
        "SELECT export_format, export_time FROM edi.registry_insurer WHERE insurer_id = 'INS53'"
    ) == [("csv", "06:00")]
    # Refused before a snapshot is written: an unknown field, a partner already there.
    assert edihub("partners", "change", "INS53", "colour=red")[0] == 2
    assert "already in the registry" in edihub(*add)[2]

    status, out, _ = edihub("partners", "change", "INS53", "export_format=xml", "export_time=07:30")
    assert status == 0 and "REG-F02" in out  # a snapshot of today was loaded: dated tomorrow
    # Suspend, then resume: the resumed document is the changed one again (its rows are
    # rotated so that its bytes are not a file already loaded).
    assert edihub("partners", "suspend", "INS53")[0] == 0
    assert edihub("partners", "suspend", "INS53")[0] == 2  # already paused
    assert edihub("partners", "resume", "INS53")[0] == 0
    assert funds.query(
        "SELECT status, export_format, export_time, unchanged_since FROM edi.registry_insurer"
        " WHERE insurer_id = 'INS53'"
    ) == [("active", "xml", "07:30", today + dt.timedelta(days=3))]
    assert funds.query(
        "SELECT snapshot_date FROM edi.registry_snapshot WHERE document = 'insurer'"
        " ORDER BY snapshot_date"
    ) == [(SNAPSHOT_DAY,), *((today + dt.timedelta(days=n),) for n in range(4))]
    # The history keeps every version the changes replaced; INS01 was never rewritten.
    assert funds.query(
        "SELECT count(*) FROM edi.registry_past_version WHERE document = 'insurer'"
    ) == [(3,)]
    assert funds.query(
        "SELECT unchanged_since FROM edi.registry_insurer WHERE insurer_id = 'INS01'"
    ) == [(SNAPSHOT_DAY,)]

    status, out, _ = edihub("partners", "audit", "INS53")
    trail = [line.split("\t") for line in out.splitlines()]
    assert [(actor, action) for _, actor, action, *_ in trail] == [
        ("j.dupont", "partner.add"),
        ("j.dupont", "partner.change"),
        ("j.dupont", "partner.suspend"),
        ("j.dupont", "partner.resume"),
    ]
    assert '"after": {"export_format": "xml", "export_time": "07:30"}' in trail[1][4]
    assert '"before": {"export_format": "csv", "export_time": "06:00"}' in trail[1][4]
    assert '"before": {"status": "active"}' in trail[2][4]
    status, out, _ = edihub("partners", "list", "--kind", "insurer")
    assert "insurer\tINS53\tins53\t0\tactive\txml\t07:30\tMutuelle 53" in out.splitlines()


def test_keys_rotate_and_a_sender_is_suspended_and_the_sftp_server_follows(
    edihub: Run, funds: Funds, tmp_path: Path, embedded_host_key_path: Path
) -> None:
    keys = tmp_path / "client-keys"
    old_key, old_public = new_key_pair(keys, "old")
    new_key, new_public = new_key_pair(keys, "new")
    (keys / "new.pub").write_text(new_public + "\n")
    # The core systems' keys snapshot: the practitioner's key of January.
    funds.ingest("registry", write_snapshot(tmp_path / "k", "sftp_key", SNAPSHOT_DAY, [
        {"sftp_account": PRACTITIONER, "public_key": old_public, "added_on": dt.date(2026, 1, 2)},
    ]), CORE)  # fmt: skip
    config, tree = tmp_path / "sshd", tmp_path / "tree"
    sftp = ("--sshd-config-dir", str(config), "--sftp-tree", str(tree))
    hub_key, hub_public = new_key_pair(keys, "hub")
    hub = SftpAccount("edihub", tree, [hub_public])

    assert edihub("partners", "resume", PRACTITIONER, *sftp)[0] == 2  # never suspended
    assert edihub("partners", "suspend", PRACTITIONER, *sftp)[0] == 0
    with following_server(tree, embedded_host_key_path, config, hub) as server:
        assert not can_log_in(server, PRACTITIONER, old_key, wait=0)
        assert edihub("partners", "resume", PRACTITIONER, *sftp)[:3:2] == (0, "")
        assert can_log_in(server, PRACTITIONER, old_key)
        assert (tree / "partners" / PRACTITIONER / "inbound" / "fse").is_dir()

        status, _, err = edihub("partners", "rotate-key", PRACTITIONER, "--key", str(old_key))
        assert status == 2 and "private key" in err and "PRIVATE" not in err
        status, out, _ = edihub("partners", "rotate-key", PRACTITIONER, "--key",
                                str(keys / "new.pub"), "--keep-old-days", "0", *sftp)  # fmt: skip
        assert status == 0 and "partner.rotate_key P10001" in out
        assert can_log_in(server, PRACTITIONER, new_key)
        assert not can_log_in(server, PRACTITIONER, old_key, wait=0)
        assert can_log_in(server, "edihub", hub_key, wait=0)  # the server's own account stays
    # The same key for a second account is refused before any snapshot.
    status, _, err = edihub("partners", "rotate-key", "S30001", "--key", str(keys / "new.pub"))
    assert status == 2 and f"already listed for {PRACTITIONER}" in err
    assert (config / "authorized_keys" / PRACTITIONER).read_text().count("ssh-ed25519") == 1

    old, new = (parse_public_key(k).fingerprint for k in (old_public, new_public))
    status, out, _ = edihub("partners", "audit", PRACTITIONER)
    trail = [line.split("\t") for line in out.splitlines()]
    today = dt.date.today().isoformat()
    assert [action for _, _, action, *_ in trail] == [
        "partner.suspend", "partner.resume", "partner.rotate_key"
    ]  # fmt: skip
    assert f'"after": {{"{old}": {{"expires_on": "{today}"}}}}' in trail[0][4]
    assert f'"{new}": {{"added_on": "{today}", "expires_on": null}}' in trail[2][4]
    # Keys appear by fingerprint only, never as the key itself.
    assert old_public.split()[1] not in out and new_public.split()[1] not in out
