"""The topology without Docker (``edihub stack``): the environment it generates for Airflow's
components reaches the test suite's real PostgreSQL and OpenSSH's sshd through the hooks the
DAGs' tasks use, and an ``airflow`` process started by ``edihub stack exec`` runs under it.

Airflow's components themselves are not started here (tens of seconds): the e2e tests run the
DAGs under ``dag.test()`` and ``edihub run`` under the real scheduler with the same
connections (``tests/e2e/``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko
import pytest
import sqlalchemy
from psycopg2.extensions import parse_dsn

from edihub import cli, orchestration
from edihub.config import REPO_ROOT
from edihub.load.db import connect
from edihub.notify.mail import SmtpSettings, smtp_settings_from_connection
from edihub.sftp.client import SftpEndpoint
from edihub.sftp.client import connect as sftp_connect
from edihub.sftp.sshd_config import RegistryKey, ServiceAccount, build_plan, write_plan
from edihub.stack.topology import OPTIONAL, REQUIRED, Topology, TopologyError
from tests.fixtures.sftp import new_key_pair
from tests.fixtures.sshd import free_port, remove_system_users, require_sshd_as_root, secure_base

SECRETS = {"EDIHUB_JWT_SECRET": "jwt-" + "x" * 28, "EDIHUB_API_SECRET_KEY": "api-" + "y" * 28}
SMTP = {
    "EDIHUB_SMTP_HOST": "relay.example",
    "EDIHUB_SMTP_FROM": "releves@example.mc",
    "EDIHUB_SMTP_PORT": "2525",
    "EDIHUB_SMTP_USER": "hub",
    "EDIHUB_SMTP_PASSWORD": "s3cr3t",
}


def inputs(dsn: str, airflow_dsn: str, server: Any, state: Path) -> dict[str, str]:
    hub = server.hub
    return {
        "EDIHUB_DATABASE_URL": dsn,
        "EDIHUB_AIRFLOW_DATABASE_URL": airflow_dsn,
        "EDIHUB_SFTP_HOST": hub.host,
        "EDIHUB_SFTP_PORT": str(hub.port),
        "EDIHUB_SFTP_USER": hub.username,
        "EDIHUB_SFTP_KEY_FILE": str(hub.private_key_path),
        "EDIHUB_SFTP_HOST_KEY": hub.host_key,
        "EDIHUB_STATE_DIR": str(state),
        **SMTP,
        **SECRETS,
    }


def printed_environment(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """What ``edihub stack env`` printed, read back as sh reads it."""
    assert cli.main(["stack", "env"]) == 0
    env = {}
    for line in capsys.readouterr().out.splitlines():
        export, assignment = shlex.split(line)
        assert export == "export"
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


@pytest.mark.parametrize("sftp_server", ["openssh"], indirect=True)
def test_the_generated_environment_reaches_postgres_and_sshd_through_the_dags_hooks(
    dsn: str,
    empty_dsn: str,
    sftp_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    given = inputs(dsn, empty_dsn, sftp_server, tmp_path / "state")
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    env = printed_environment(capsys)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS["EDIHUB_JWT_SECRET"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == (
        "management:viewer,operator:op,admin:admin"
    )
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    # The DAGs' own hooks (Airflow's connection lookup, PostgreSQL, the SFTP provider's hook,
    # which refuses an unpinned host key) on the real servers.
    assert cli.main(["stack", "check"]) == 0
    printed = capsys.readouterr().out
    assert f"edi_sftp: {sftp_server.hub.username}@127.0.0.1:{sftp_server.port}" in printed
    assert "/ holds archive, partners" in printed
    with orchestration.sftp_session() as sftp:
        sftp.putfo(io.BytesIO(b"through edi_sftp"), "/archive/probe.txt")
    assert (sftp_server.root / "archive" / "probe.txt").read_bytes() == b"through edi_sftp"
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.edihub_migration")
        (migrations,) = cur.fetchone()
    database = parse_dsn(dsn)["dbname"]
    assert f"edi_postgres: database {database}, {migrations} migrations applied" in printed

    from airflow.sdk import BaseHook

    smtp = smtp_settings_from_connection(BaseHook.get_connection("edi_smtp"))
    assert smtp == SmtpSettings.from_env(given)

    # A component as `edihub stack exec` starts it: Airflow itself reads the connections and
    # reaches its metadata database (the env file holds the inputs only).
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | given
    edihub = Path(sys.executable).parent / "edihub"
    got = subprocess.run(
        [str(edihub), "stack", "exec", "connections", "get", "edi_sftp", "-o", "json"],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr[-2000:]
    (conn,) = json.loads(got.stdout)
    assert (conn["host"], int(conn["port"]), conn["login"]) == ("127.0.0.1", sftp_server.port,
                                                            sftp_server.hub.username)  # fmt: skip
    assert conn["extra_dejson"]["host_key"] == sftp_server.hub.host_key
    # Airflow's metadata URL, as SQLAlchemy (Airflow's driver) opens it.
    engine = sqlalchemy.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with engine.connect() as metadata:
        name = metadata.execute(sqlalchemy.text("SELECT current_database()")).scalar()
    engine.dispose()
    assert name == parse_dsn(empty_dsn)["dbname"]


def test_the_systemd_example_is_a_complete_topology(tmp_path: Path) -> None:
    """deploy/systemd: its env file example gives a topology, with inputs edihub knows only,
    and its unit starts a component through ``edihub stack exec``."""
    systemd = REPO_ROOT / "deploy" / "systemd"
    lines = (systemd / "edihub.env.example").read_text().splitlines()
    example = dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))
    known = set(REQUIRED) | set(OPTIONAL)
    assert {n for n in example if not n.startswith("EDIHUB_SMTP_")} <= known
    key = tmp_path / "hub_ed25519"
    key.write_text("")
    topology = Topology.from_env(example | {"EDIHUB_SFTP_KEY_FILE": str(key)})
    env = topology.environment()
    assert env["AIRFLOW__API__BASE_URL"] == example["EDIHUB_API_BASE_URL"]
    assert json.loads(env["AIRFLOW_CONN_EDI_SFTP"])["extra"]["host_key"] == "ssh-ed25519 change-me"
    unit = (systemd / "edihub-airflow@.service").read_text()
    assert "ExecStart=/opt/edihub/.venv/bin/edihub stack exec %i" in unit
    assert "EnvironmentFile=/etc/edihub/edihub.env" in unit


def test_missing_inputs_are_all_named_and_the_key_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as missing:
        Topology.from_env({"EDIHUB_DATABASE_URL": "postgresql://db/edihub"})
    assert all(name in str(missing.value) for name in REQUIRED[1:])
    assert "EDIHUB_DATABASE_URL" not in str(missing.value)
    complete = {name: "x" for name in REQUIRED} | SMTP | {"EDIHUB_SFTP_KEY_FILE": "/nonexistent"}
    with pytest.raises(TopologyError, match="EDIHUB_SFTP_KEY_FILE: no file /nonexistent"):
        Topology.from_env(complete)
    key = tmp_path / "hub_ed25519"
    key.write_text("")
    with pytest.raises(TopologyError, match="not a PostgreSQL URL"):
        Topology.from_env(complete | {"EDIHUB_SFTP_KEY_FILE": str(key)})


def test_the_compose_sftp_entrypoint_serves_the_generated_configuration(tmp_path: Path) -> None:
    """deploy/sftp/entrypoint.sh on this machine's sshd (the compose file's sftp service, out of
    its container): the accounts and folders of accounts.tsv created, a partner sends, the hub
    reads and answers, an insurer reads only; a partner added to the configuration logs in
    after the reload, without a restart."""
    require_sshd_as_root()
    suffix = secrets.token_hex(3)
    base = secure_base()
    tree, conf, group = base / "tree", base / "conf", f"edihub-e{suffix}"
    hub, pharmacy, insurer, late = (f"{n}{suffix}" for n in ("hub", "PH", "ins", "PL"))
    keys = {name: new_key_pair(tmp_path / "keys", name) for name in (hub, pharmacy, insurer, late)}
    host_key, host_public = new_key_pair(base, "host_key_source")

    def configure(*accounts: tuple[str, str]) -> None:
        registry = [RegistryKey(a, keys[a][1]) for _, a in accounts]
        plan = build_plan(
            accounts, registry, today=dt.date.today(), root=PurePosixPath(tree),
            keys_dir=PurePosixPath(conf / "authorized_keys"),
            service=ServiceAccount(hub, (keys[hub][1],)),
        )  # fmt: skip
        write_plan(plan, conf)

    configure(("pharmacy", pharmacy), ("insurer", insurer))
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "EDIHUB_SSHD_CONFIG": str(conf),
        "EDIHUB_SFTP_GROUP": group,
        "EDIHUB_SSHD_HOST_KEY": str(base / "host_key"),
        "EDIHUB_SSHD_HOST_KEY_SECRET": str(host_key),
        "EDIHUB_SSHD_PORT": str(port),
        "EDIHUB_SSHD_LISTEN": "127.0.0.1",
        "EDIHUB_SSHD_POLL_SECONDS": "1",
        "EDIHUB_SYSLOG_INPUTS": str(base / "chroots.conf"),
        "EDIHUB_SYSLOGD": "",  # no rsyslog here: its inputs are checked, not served
    }
    log = (base / "entrypoint.log").open("wb")
    entrypoint = subprocess.Popen(
        [str(REPO_ROOT / "deploy/sftp/entrypoint.sh")], env=env, stdout=log, stderr=log
    )
    pinned = " ".join(host_public.split()[:2])

    def endpoint(account: str) -> SftpEndpoint:
        return SftpEndpoint("127.0.0.1", port, account, keys[account][0], pinned, timeout=5)

    sessions = contextlib.ExitStack()

    def syslog_sockets() -> set[str]:
        """The accounts whose chroot has a dev/ for rsyslog's socket, listed for rsyslog."""
        listed = re.findall(r'Socket="([^"]+)/dev/log"', (base / "chroots.conf").read_text())
        for chroot in listed:
            dev = Path(chroot, "dev").stat()
            assert (dev.st_uid, dev.st_mode & 0o777) == (0, 0o755), chroot
        return {Path(chroot).name for chroot in listed}

    def session(account: str, deadline: float = 15) -> Any:
        """A session as ``account``, once sshd is up (or has reloaded)."""
        until = time.monotonic() + deadline
        while True:
            try:
                return sessions.enter_context(sftp_connect(endpoint(account)))
            except (OSError, paramiko.SSHException):
                if time.monotonic() > until or entrypoint.poll() is not None:
                    raise
                time.sleep(0.2)

    try:
        sender = session(pharmacy)
        sender.putfo(io.BytesIO(b"invoice"), "/inbound/pharmacy/F1.txt")
        assert sorted(sender.listdir("/")) == ["dev", "inbound", "outbound"]  # dev/log: syslog
        service = session(hub)
        assert sorted(service.listdir("/")) == ["archive", "partners"]
        assert service.open(f"/partners/{pharmacy}/inbound/pharmacy/F1.txt").read() == b"invoice"
        service.putfo(io.BytesIO(b"ack"), f"/partners/{pharmacy}/outbound/acks/F1.ack")
        service.posix_rename(f"/partners/{pharmacy}/inbound/pharmacy/F1.txt", "/archive/F1.txt")
        service.putfo(io.BytesIO(b"rows"), f"/partners/{insurer}/outbound/statements/S1.csv")
        assert sender.open("/outbound/acks/F1.ack").read() == b"ack"
        reader = session(insurer)
        assert reader.open("/outbound/statements/S1.csv").read() == b"rows"
        with pytest.raises(PermissionError):
            reader.putfo(io.BytesIO(b"x"), "/outbound/statements/mine.csv")
        with pytest.raises(paramiko.AuthenticationException), sftp_connect(endpoint(late)):
            pass

        assert syslog_sockets() == {pharmacy, insurer}

        configure(("pharmacy", pharmacy), ("insurer", insurer), ("practitioner", late))
        newcomer = session(late)
        assert syslog_sockets() == {pharmacy, insurer, late}
        assert sorted(newcomer.listdir("/inbound")) == ["fse", "payroll", "pharmacy", "registry"]
        assert sender.stat("/outbound/acks/F1.ack").st_size == 3  # sessions survive the reload
    finally:
        sessions.close()
        entrypoint.terminate()
        entrypoint.wait(10)
        log.close()
        print((base / "entrypoint.log").read_text(errors="replace")[-3000:])
        created = [name for name in (hub, pharmacy, insurer, late) if _user_exists(name)]
        remove_system_users(created, group)
        shutil.rmtree(base, ignore_errors=True)
    assert entrypoint.returncode == 0  # it stopped sshd on SIGTERM and ended with it


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
