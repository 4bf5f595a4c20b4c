"""The partners' OpenSSH configuration, generated from the registry (``edihub sftp sshd-config``)
on a real PostgreSQL, then run by a real sshd on 127.0.0.1 with the system accounts it lists:
each insurer reads its own statements and nothing else, read-only; senders write into their
own inboxes and see no insurer; only the registry's valid keys open an account.

The accounts are real system users, so their names carry a suffix of this session's: tests
running side by side never share one.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import grp
import io
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko
import pytest

from edihub import cli, collect
from edihub.config import Settings
from edihub.feeds import FEEDS
from edihub.load.db import connect
from edihub.registry_writer import write_snapshot
from edihub.sftp import layout
from edihub.sftp.client import SftpEndpoint, put_atomic
from edihub.sftp.client import connect as sftp_connect
from edihub.sftp.sshd_config import SFTP_READER, generate, parse_public_key, plan_from_registry
from tests.fixtures.postgres import fresh_database
from tests.fixtures.sftp import new_key_pair
from tests.fixtures.sshd import (
    SSHD,
    SshdProcess,
    add_system_user,
    admin,
    check_arguments,
    make_chroot,
    remove_system_users,
    require_sshd_as_root,
    secure_base,
)

SUFFIX = secrets.token_hex(3)
GROUP = f"edihub-c{SUFFIX}"
INSURER_A, INSURER_B, INSURER_PAUSED = f"insa{SUFFIX}", f"insb{SUFFIX}", f"insp{SUFFIX}"
INSURERS = (INSURER_A, INSURER_B, INSURER_PAUSED)
EXPIRED_ONLY = f"insx{SUFFIX}"  # an insurer whose one key has expired
BAD_ACCOUNT = f"ins {SUFFIX}"  # the insurer registry does not check account names
PHARMACY, PRACTITIONER = f"PH{SUFFIX}", f"P{SUFFIX}"
EMPLOYER = f"EMP{SUFFIX}"  # in the registry, no key
CORE, PAPER = f"core{SUFFIX}", f"PAPER{SUFFIX.upper()}"  # the funds' own (PAPER: no key)
HUB = f"hub{SUFFIX}"
SNAPSHOT_DAY = dt.date(2026, 1, 31)
TODAY = dt.date.today()
KEY_NAMES = ("a", "a-old", "b", "paused", "expired", "pharmacy", "practitioner", "core", "hub")


def _insurer(insurer_id: str, account: str, status: str = "active") -> dict[str, Any]:
    return {"insurer_id": insurer_id, "name": f"Mutuelle {insurer_id}", "status": status,
            "sftp_account": account, "export_format": "csv", "export_time": "06:00"}  # fmt: skip


def _key(account: str, public: str, expires_on: dt.date | None = None) -> dict[str, Any]:
    added = TODAY - dt.timedelta(days=400)
    return {"sftp_account": account, "public_key": public, "added_on": added,
            "expires_on": expires_on}  # fmt: skip


def registry_documents(public: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Three insurers (one paused), one whose key expired, one with an unusable account name;
    a pharmacy, a practitioner, an employer without a key; ``public``: key name -> line."""
    return {
        "insurer": [
            _insurer("INSA", INSURER_A),
            _insurer("INSB", INSURER_B),
            _insurer("INSP", INSURER_PAUSED, "paused"),
            _insurer("INSX", EXPIRED_ONLY),
            _insurer("INSBAD", BAD_ACCOUNT),
        ],
        "pharmacy": [{"pharmacy_id": PHARMACY, "name": "Pharmacie du Port"}],
        "practitioner": [
            {"practitioner_id": PRACTITIONER, "kind": "general_practitioner", "name": "Dr G"}
        ],
        "employer": [
            {
                "employer_id": EMPLOYER,
                "name": "SAM Sans Clef",
                "kind": "company",
                "size": 3,
                "declaration_channel": "electronic",
            },
        ],
        "sftp_key": [
            _key(INSURER_A, public["a"]),
            _key(INSURER_A, public["a-old"], expires_on=TODAY),  # refused from today
            _key(INSURER_B, public["b"], expires_on=TODAY + dt.timedelta(days=365)),
            _key(INSURER_PAUSED, public["paused"]),
            _key(EXPIRED_ONLY, public["expired"], expires_on=TODAY - dt.timedelta(days=1)),
            _key(PHARMACY, public["pharmacy"]),
            _key(PRACTITIONER, public["practitioner"]),
            _key(CORE, public["core"]),
        ],
    }


def hub_settings(state_dir: Path) -> Settings:
    return dataclasses.replace(
        Settings.from_env(), state_dir=state_dir, registry_senders=(CORE,), paper_senders=(PAPER,)
    )


def load_registry(
    dsn: str, folder: Path, documents: dict[str, list[dict[str, Any]]], day: dt.date
) -> None:
    """Through the registry's contracts, as the core systems' account sends it."""
    settings = hub_settings(folder / "state")
    for document, rows in documents.items():
        path = write_snapshot(folder / f"registry-{day}", document, day, rows)
        outcome = collect.file_summary(
            dsn, collect.ingest_local(dsn, settings, "registry", path, CORE)
        )
        assert outcome["state"] == "loaded", outcome


def key_pairs(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    pairs = {name: new_key_pair(folder, name) for name in KEY_NAMES}
    return {n: p for n, (p, _) in pairs.items()}, {n: line for n, (_, line) in pairs.items()}


# ---------------------------------------------------------------- the generator


def test_the_same_registry_gives_the_same_bytes(dsn: str, tmp_path: Path) -> None:
    _, public = key_pairs(tmp_path / "keys")
    documents = registry_documents(public)
    load_registry(dsn, tmp_path, documents, SNAPSHOT_DAY)
    settings = hub_settings(tmp_path / "state")
    root, keys_dir = PurePosixPath("/srv/sftp"), PurePosixPath("/etc/edihub-sftp/authorized_keys")
    first = plan_from_registry(dsn, settings, today=TODAY, root=root, keys_dir=keys_dir).files()
    # The next day's snapshots of insurers and keys: the same rows in another order.
    reordered = {doc: documents[doc][::-1] for doc in ("insurer", "sftp_key")}
    load_registry(dsn, tmp_path, reordered, SNAPSHOT_DAY + dt.timedelta(days=1))
    again = plan_from_registry(dsn, settings, today=TODAY, root=root, keys_dir=keys_dir).files()
    assert again == first
    assert set(first) == {"sshd_config", "accounts.tsv"} | {
        f"authorized_keys/{a}" for a in (*INSURERS, PHARMACY, PRACTITIONER, CORE)
    }


def test_paused_insurers_keep_their_account_and_expired_keys_are_left_out(
    dsn: str, tmp_path: Path
) -> None:
    _, public = key_pairs(tmp_path / "keys")
    load_registry(dsn, tmp_path, registry_documents(public), SNAPSHOT_DAY)
    plan, _ = generate(dsn, hub_settings(tmp_path / "state"), tmp_path / "out", today=TODAY)
    accounts = {a.name: a for a in plan.accounts}
    assert accounts[INSURER_PAUSED].read_only
    assert accounts[INSURER_PAUSED].folders == ("outbound/statements",)
    assert f"Match User {INSURER_PAUSED}\n" in plan.sshd_config()

    # INSURER_A: its key of no end is in; the one that ends today is not.
    a_keys = (tmp_path / "out" / "authorized_keys" / INSURER_A).read_text()
    assert a_keys == f"restrict {public['a']}\n"
    assert public["a-old"].split()[1] not in plan.sshd_config() + "".join(plan.files().values())
    # A key with an end date in the future: sshd refuses it from that day by itself.
    expiry = (TODAY + dt.timedelta(days=365)).strftime("%Y%m%d")
    b_keys = (tmp_path / "out" / "authorized_keys" / INSURER_B).read_text()
    assert b_keys == f'restrict,expiry-time="{expiry}" {public["b"]}\n'
    # No valid key, no account: the expired one, the employer and paper account without any.
    assert not {EXPIRED_ONLY, EMPLOYER, PAPER, BAD_ACCOUNT} & set(accounts)
    left = {(item.account, item.reason) for item in plan.left_out}
    for account, key in ((INSURER_A, "a-old"), (EXPIRED_ONLY, "expired")):
        fingerprint = parse_public_key(public[key]).fingerprint
        expired = TODAY if key == "a-old" else TODAY - dt.timedelta(days=1)
        assert (account, f"key {fingerprint} expired on {expired}") in left
    for account in (EXPIRED_ONLY, EMPLOYER, PAPER):
        assert (account, "no valid key: the account is left out") in left
    assert any(a == BAD_ACCOUNT and r.startswith("not an account name") for a, r in left)


def test_names_and_keys_that_would_add_a_directive_are_never_written(
    dsn: str, tmp_path: Path
) -> None:
    """The registry's contract already refuses such rows; a registry written by other means
    (here: straight in the table) must not get them into sshd's configuration either."""
    _, public = key_pairs(tmp_path / "keys")
    load_registry(dsn, tmp_path, registry_documents(public), SNAPSHOT_DAY)
    evil_names = {
        "INSA": f"{INSURER_A}\n    ChrootDirectory none",
        "INSB": f"{INSURER_B} root",
        "INSP": "*",
    }
    with connect(dsn) as conn, conn.cursor() as cur:
        for insurer_id, name in evil_names.items():
            cur.execute(
                "UPDATE edi.registry_insurer SET sftp_account = %s WHERE insurer_id = %s",
                (name, insurer_id),
            )
        cur.execute(
            "UPDATE edi.registry_sftp_key SET sftp_account = %s WHERE sftp_account = %s",
            (evil_names["INSA"], INSURER_A),
        )
        # A key whose comment carries a second line: "PermitRootLogin yes".
        cur.execute(
            "UPDATE edi.registry_sftp_key SET public_key = public_key || %s"
            " WHERE sftp_account = %s",
            (" pharmacy\nPermitRootLogin yes", PHARMACY),
        )
        conn.commit()
    plan, _ = generate(dsn, hub_settings(tmp_path / "state"), tmp_path / "out", today=TODAY)
    config = plan.sshd_config()
    written = "".join(plan.files().values())
    assert "ChrootDirectory none" not in written
    assert "PermitRootLogin yes" not in written
    assert "Match User *" not in config and f"{INSURER_B} root" not in written
    assert {a.name for a in plan.accounts} == {PRACTITIONER, CORE}
    left = {(item.account, item.reason) for item in plan.left_out}
    for name in evil_names.values():
        assert any(a == name and r.startswith("not an account name") for a, r in left), name
    assert (PHARMACY, "no valid key: the account is left out") in left
    assert (PHARMACY, "a key refused: the comment holds a control character (U+000A)") in left
    # Reported with the name quoted, so that the report cannot be forged either.
    assert repr(evil_names["INSA"]) in plan.summary()
    # What is written is only directives sshd knows, one per line.
    host_key, _ = new_key_pair(tmp_path, "host")
    check = subprocess.run(
        [str(SSHD), "-t", "-f", str(tmp_path / "out" / "sshd_config"), "-h", str(host_key)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


# ---------------------------------------------------------------- on a real sshd


@dataclasses.dataclass
class Deployment:
    root: Path  # the tree: partners/ and archive/
    out: Path  # what edihub sftp sshd-config wrote
    summary: str
    host: str
    port: int
    host_key_line: str
    private_keys: dict[str, Path]

    def endpoint(self, account: str, key: str) -> SftpEndpoint:
        return SftpEndpoint(
            self.host, self.port, account, self.private_keys[key], self.host_key_line, timeout=10
        )

    def session(self, account: str, key: str) -> contextlib.AbstractContextManager[Any]:
        return sftp_connect(self.endpoint(account, key))


def _create_accounts(accounts_tsv: Path, gid: int, created: list[str]) -> None:
    """What the operator does with accounts.tsv: a user per row, its chroot and folders."""
    with accounts_tsv.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for row in rows:
        add_system_user(row["account"], GROUP, Path(row["chroot"]))
        created.append(row["account"])
        if row["access"] != "service":
            uid = pwd.getpwnam(row["account"]).pw_uid
            make_chroot(Path(row["chroot"]), row["folders"].split(","), uid, gid)


@pytest.fixture(scope="module")
def deployment(
    pg_admin_url: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    require_sshd_as_root()
    work = tmp_path_factory.mktemp("sshd-config")
    private, public = key_pairs(work / "client-keys")
    private["stranger"], _ = new_key_pair(work / "client-keys", "stranger")
    private["employer"], employer_public = new_key_pair(work / "client-keys", "employer")
    base = secure_base()
    root, out = base / "tree", base / "config"
    users: list[str] = []
    sshd = SshdProcess(base / "sshd.log")
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        with fresh_database(pg_admin_url, pg_template) as dsn:
            load_registry(dsn, work, registry_documents(public), SNAPSHOT_DAY)
            (work / "hub.pub").write_text(public["hub"] + "\n")
            printed = io.StringIO()
            with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(printed):
                env.setenv("EDIHUB_DATABASE_URL", dsn)
                env.setenv("EDIHUB_REGISTRY_SENDERS", CORE)
                env.setenv("EDIHUB_PAPER_SENDERS", PAPER)
                status = cli.main(
                    ["sftp", "sshd-config", "--out", str(out), "--root", str(root),
                     "--service-account", HUB, "--service-key", str(work / "hub.pub")]
                )  # fmt: skip
            assert status == 0, printed.getvalue()

        admin("groupadd", GROUP)
        cleanup.callback(remove_system_users, users, GROUP)
        gid = grp.getgrnam(GROUP).gr_gid
        root.mkdir(mode=0o755)
        (root / layout.PARTNERS).mkdir(mode=0o755)
        _create_accounts(out / "accounts.tsv", gid, users)
        archive = root / layout.ARCHIVE
        archive.mkdir(mode=0o2770)
        shutil.chown(archive, HUB, GROUP)
        # Accounts left out of the configuration, as if left over from an earlier one: their
        # users exist, with key files the generator did not write.
        for account, key_line, folders in (
            (EXPIRED_ONLY, public["expired"], layout.insurer_folders()),
            (EMPLOYER, employer_public, layout.partner_folders()),
        ):
            chroot = root / layout.PARTNERS / account
            add_system_user(account, GROUP, chroot)
            users.append(account)
            make_chroot(chroot, folders, pwd.getpwnam(account).pw_uid, gid)
            (out / "authorized_keys" / account).write_text(key_line + "\n")

        host_key, host_public = new_key_pair(base, "ssh_host_ed25519_key")

        def arguments(port: int) -> list[str]:
            # The generated file as it is; only where to listen and the host key are the site's.
            listen = ["-o", f"ListenAddress={sshd.host}:{port}", "-o", f"PidFile={base}/sshd.pid"]
            return check_arguments(["-f", str(out / "sshd_config"), "-h", str(host_key), *listen])

        sshd.start(arguments)
        cleanup.callback(sshd.stop)
        deployed = Deployment(
            root, out, printed.getvalue(), sshd.host, sshd.port,
            " ".join(host_public.split()[:2]), private,
        )  # fmt: skip
        with deployed.session(HUB, "hub") as sftp:  # the exports, as the hub will put them
            for insurer in INSURERS:
                put_atomic(sftp, f"statements of {insurer}\n".encode(), _statement(insurer))
        yield deployed


def _statement(insurer: str) -> str:
    return f"{layout.statements_dir(insurer)}/statements_{insurer}.csv"


def _own_statement(insurer: str) -> str:
    return f"{layout.PARTNER_VIEW_STATEMENTS}/statements_{insurer}.csv"


def test_the_generated_files_list_every_account_with_a_valid_key(deployment: Deployment) -> None:
    with (deployment.out / "accounts.tsv").open(encoding="utf-8") as fh:
        rows = {r["account"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert set(rows) == {HUB, *INSURERS, PHARMACY, PRACTITIONER, CORE}
    assert rows[HUB]["chroot"] == str(deployment.root)
    for insurer in INSURERS:
        assert (rows[insurer]["access"], rows[insurer]["folders"]) == (
            "read-only",
            "outbound/statements",
        )
        assert rows[insurer]["chroot"] == str(deployment.root / "partners" / insurer)
    assert rows[PHARMACY]["access"] == "read-write"
    assert "inbound/pharmacy" in rows[PHARMACY]["folders"].split(",")
    config = (deployment.out / "sshd_config").read_text()
    block = config.split(f"Match User {INSURER_PAUSED}\n")[1].split("\n\n")[0]
    assert f"ForceCommand {SFTP_READER}" in block
    assert "6 partner accounts (insurers, read-only: 3; senders: 3)" in deployment.summary
    for account in (EXPIRED_ONLY, EMPLOYER, PAPER, BAD_ACCOUNT):
        assert f"left out: {account!r}:" in deployment.summary


@pytest.mark.parametrize("insurer", INSURERS)
def test_each_insurer_reads_its_own_statements(deployment: Deployment, insurer: str) -> None:
    key = {INSURER_A: "a", INSURER_B: "b", INSURER_PAUSED: "paused"}[insurer]
    with deployment.session(insurer, key) as sftp:
        assert sftp.listdir("/") == ["outbound"]
        assert sftp.listdir("/outbound") == ["statements"]
        assert sftp.listdir(layout.PARTNER_VIEW_STATEMENTS) == [f"statements_{insurer}.csv"]
        with sftp.open(_own_statement(insurer)) as fh:
            assert fh.read() == f"statements of {insurer}\n".encode()


def _unreachable(deployment: Deployment, account: str) -> list[str]:
    """Every way of naming another partner's folder from inside a chroot: the hub's path, a
    path up from the chroot, the path on the server's disk."""
    on_disk = deployment.root / layout.PARTNERS / account
    return [
        layout.partner_root(account),
        f"../{account}",
        f"/../../{layout.PARTNERS}/{account}",
        str(on_disk),
        f"{on_disk}/outbound/statements/statements_{account}.csv",
        _statement(account),
    ]


@pytest.mark.parametrize(
    ("insurer", "key"), [(INSURER_A, "a"), (INSURER_B, "b"), (INSURER_PAUSED, "paused")]
)
def test_an_insurer_cannot_reach_another_insurers_folder(
    deployment: Deployment, insurer: str, key: str
) -> None:
    others = [i for i in INSURERS if i != insurer]
    with deployment.session(insurer, key) as sftp:
        for other in others:
            for path in _unreachable(deployment, other):
                for look in (sftp.stat, sftp.listdir, sftp.open):
                    with pytest.raises(FileNotFoundError):
                        look(path)
        with pytest.raises(FileNotFoundError):
            sftp.listdir(f"/{layout.PARTNERS}")
        assert sftp.normalize("/..") == "/"


def test_an_insurer_reaches_no_inbound_folder(deployment: Deployment) -> None:
    with deployment.session(INSURER_A, "a") as sftp:
        for feed in FEEDS:
            for path in (
                f"/inbound/{feed}",
                layout.inbound_dir(PHARMACY, feed),
                str(deployment.root / layout.inbound_dir(PHARMACY, feed).lstrip("/")),
                layout.inbound_dir(INSURER_A, feed),
            ):
                with pytest.raises(FileNotFoundError):
                    sftp.listdir(path)


def test_an_insurer_cannot_write_even_in_its_own_folder(deployment: Deployment) -> None:
    own = _own_statement(INSURER_A)
    with deployment.session(INSURER_A, "a") as sftp:
        with pytest.raises(PermissionError):
            sftp.open(f"{layout.PARTNER_VIEW_STATEMENTS}/new.csv", "w")
        with pytest.raises(PermissionError):
            sftp.open(own, "a")
        for attempt in (
            lambda: sftp.remove(own),
            lambda: sftp.rename(own, f"{own}.taken"),
            lambda: sftp.mkdir(f"{layout.PARTNER_VIEW_STATEMENTS}/sub"),
            lambda: sftp.chmod(own, 0o666),
            lambda: sftp.symlink(own, f"{layout.PARTNER_VIEW_STATEMENTS}/link"),
        ):
            with pytest.raises(PermissionError):
                attempt()
        assert sftp.listdir(layout.PARTNER_VIEW_STATEMENTS) == [f"statements_{INSURER_A}.csv"]
    # The folder itself is writable by the account: the refusal is sshd's (-R), nothing else.
    statements = deployment.root / layout.statements_dir(INSURER_A).lstrip("/")
    assert statements.stat().st_uid == pwd.getpwnam(INSURER_A).pw_uid


@pytest.mark.parametrize(
    ("sender", "key", "feed"),
    [(PHARMACY, "pharmacy", "pharmacy"), (PRACTITIONER, "practitioner", "fse"),
     (CORE, "core", "registry")],
)  # fmt: skip
def test_a_sender_puts_into_its_own_inbox_and_sees_no_insurer(
    deployment: Deployment, sender: str, key: str, feed: str
) -> None:
    name = f"FILE_{sender}.txt"
    with deployment.session(sender, key) as sftp:
        assert sorted(sftp.listdir("/")) == ["inbound", "outbound"]
        put_atomic(sftp, b"payload\n", f"{layout.PARTNER_VIEW_INBOUND.format(feed=feed)}/{name}")
        for insurer in INSURERS:
            for path in _unreachable(deployment, insurer):
                with pytest.raises(FileNotFoundError):
                    sftp.stat(path)
        with pytest.raises(FileNotFoundError):
            sftp.listdir(layout.PARTNER_VIEW_STATEMENTS)
    landed = deployment.root / layout.inbound_dir(sender, feed).lstrip("/") / name
    assert landed.read_bytes() == b"payload\n"
    assert landed.stat().st_uid == pwd.getpwnam(sender).pw_uid


@pytest.mark.parametrize(
    ("account", "key"),
    [
        (INSURER_A, "a-old"),  # its key that ends today
        (EXPIRED_ONLY, "expired"),  # its only key expired; a stale key file is on disk
        (EMPLOYER, "employer"),  # no key in the registry; a stale key file is on disk
        (PAPER, "core"),  # a configured account without a key
        (INSURER_A, "stranger"),  # a key nobody registered
        (INSURER_A, "b"),  # another insurer's key
        ("root", "hub"),
    ],
)
def test_a_key_the_registry_does_not_give_that_account_opens_nothing(
    deployment: Deployment, account: str, key: str
) -> None:
    with pytest.raises(paramiko.AuthenticationException), deployment.session(account, key):
        pass


@pytest.mark.parametrize("method", ["none", "password", "keyboard-interactive"])
def test_public_keys_are_the_only_way_in(deployment: Deployment, method: str) -> None:
    with contextlib.closing(paramiko.Transport((deployment.host, deployment.port))) as transport:
        transport.start_client(timeout=10)
        attempts = {
            "none": lambda: transport.auth_none(INSURER_A),
            "password": lambda: transport.auth_password(INSURER_A, "password"),
            "keyboard-interactive": lambda: transport.auth_interactive_dumb(INSURER_A),
        }
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            attempts[method]()
        assert refused.value.allowed_types == ["publickey"]


def test_no_forwarding_and_no_shell(deployment: Deployment) -> None:
    with deployment.session(PHARMACY, "pharmacy") as sftp:
        transport = sftp.get_channel().get_transport()
        with pytest.raises(paramiko.ChannelException):
            transport.open_channel(
                "direct-tcpip", (deployment.host, deployment.port), ("127.0.0.1", 0), timeout=10
            )
        channel = transport.open_session(timeout=10)
        channel.settimeout(10)
        channel.exec_command("id")  # ForceCommand: an SFTP server answers, no shell
        channel.shutdown_write()
        assert b"uid=" not in channel.makefile("rb").read()
        channel.close()


def test_the_hub_sees_the_whole_tree(deployment: Deployment) -> None:
    with deployment.session(HUB, "hub") as sftp:
        assert sorted(sftp.listdir("/")) == [layout.ARCHIVE, layout.PARTNERS]
        assert set(sftp.listdir(f"/{layout.PARTNERS}")) >= {*INSURERS, PHARMACY}
        # It reads what partners put (their files are group-usable) and can tidy them away.
        with sftp.open(_statement(INSURER_B)) as fh:
            assert fh.read() == f"statements of {INSURER_B}\n".encode()
        sftp.mkdir(f"/{layout.ARCHIVE}/{PHARMACY}")
