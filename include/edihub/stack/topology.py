"""The production topology without Docker: Airflow's components as separate processes (one
systemd unit each, say) against an external PostgreSQL and the partners' OpenSSH server.

The operator writes the hub's inputs once (``EDIHUB_*`` variables, ``INPUTS`` below: the
databases, the SFTP server and its pinned host key, the SMTP relay, the secrets every
component must share) and starts each component with ``edihub stack exec <component>``,
which replaces itself with ``airflow <component>`` under the environment generated here:
the ``AIRFLOW__*`` settings and the ``AIRFLOW_CONN_*`` connections the DAGs use.
``edihub stack env`` prints that environment (shell syntax), ``edihub stack check`` reaches
the hub database and the SFTP server through the connections, with the DAGs' own hooks.

The docker-compose file builds the same topology; its roles (``AIRFLOW_USERS``) are these.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from edihub.config import REPO_ROOT
from edihub.notify.mail import SmtpSettings
from edihub.sftp.client import SftpEndpoint, hub_endpoint_from_env
from edihub.stack.run import connection_from_dsn as postgres_connection

# Airflow's SimpleAuthManager roles (viewer < user < op < admin; each has the rights of the
# ones before it): management reads the KPI pages, operators reprocess (trigger and clear
# runs, the exports' Rerun) and manage pools and variables, admin everything.
AIRFLOW_USERS = "management:viewer,operator:op,admin:admin"

REQUIRED = (
    "EDIHUB_DATABASE_URL",  # the hub's database, postgresql://user:password@host:port/edihub
    "EDIHUB_AIRFLOW_DATABASE_URL",  # Airflow's metadata database, on the same server or not
    "EDIHUB_SFTP_HOST",
    "EDIHUB_SFTP_KEY_FILE",  # the hub's private key (its account on the partners' sshd)
    "EDIHUB_SFTP_HOST_KEY",  # the server's pinned host key, "ssh-ed25519 AAAA..."
    "EDIHUB_SMTP_HOST",
    "EDIHUB_SMTP_FROM",
    "EDIHUB_JWT_SECRET",  # identical in every component: task processes call the API with it
    "EDIHUB_API_SECRET_KEY",  # identical in every api-server: signs the UI's form tokens
)
OPTIONAL = (
    "EDIHUB_SFTP_PORT",  # 22
    "EDIHUB_SFTP_USER",  # hub
    "EDIHUB_API_HOST",  # 127.0.0.1: the funds' reverse proxy faces the users
    "EDIHUB_API_PORT",  # 8080
    "EDIHUB_API_BASE_URL",  # the URL the UI is reached at (behind the proxy), else host:port
    "EDIHUB_EXECUTOR",  # LocalExecutor (one machine); CeleryExecutor needs a broker too
    "EDIHUB_AIRFLOW_HOME",  # <EDIHUB_STATE_DIR>/airflow
    "EDIHUB_AIRFLOW_USERS",  # AIRFLOW_USERS
    "EDIHUB_FERNET_KEY",  # encrypts connections and variables stored in the metadata DB
    "EDIHUB_STATE_DIR",  # landing copies: shared by every process that runs tasks
)  # and the EDIHUB_SMTP_* of edihub.notify.mail.SmtpSettings.from_env


class TopologyError(ValueError):
    """The inputs cannot describe a working topology (what is missing or wrong is named)."""


def sqlalchemy_url(url: str) -> str:
    """A libpq URL (postgresql://, postgres://) as SQLAlchemy's psycopg2 URL, for Airflow."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg2"):
        raise TopologyError(f"EDIHUB_AIRFLOW_DATABASE_URL: not a PostgreSQL URL ({parts.scheme})")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def sftp_connection(endpoint: SftpEndpoint) -> dict[str, Any]:
    """The ``edi_sftp`` connection: key auth, the server's host key pinned."""
    return {
        "conn_type": "sftp",
        "host": endpoint.host,
        "port": endpoint.port,
        "login": endpoint.username,
        "extra": {"key_file": str(endpoint.private_key_path), "host_key": endpoint.host_key},
    }


def smtp_connection(smtp: SmtpSettings) -> dict[str, Any]:
    """The ``edi_smtp`` connection, as ``notify.smtp_settings_from_connection`` reads it."""
    conn: dict[str, Any] = {
        "conn_type": "smtp",
        "host": smtp.host,
        "port": smtp.port,
        "login": smtp.username,
        "password": smtp.password,
        "extra": {
            "from_email": smtp.sender,
            "disable_ssl": not smtp.ssl,
            "disable_tls": not smtp.starttls,
            "timeout": smtp.timeout_seconds,
            "max_attempts": smtp.max_attempts,
            "retry_seconds": smtp.retry_seconds,
            "retry_cap_seconds": smtp.retry_cap_seconds,
        },
    }
    return {k: v for k, v in conn.items() if v is not None}


@dataclass(frozen=True)
class Topology:
    """The hub's inputs, checked: what every component's environment is generated from."""

    hub_database_url: str
    airflow_database_url: str
    sftp: SftpEndpoint
    smtp: SmtpSettings
    jwt_secret: str
    api_secret_key: str
    api_host: str
    api_port: int
    base_url: str
    executor: str
    airflow_home: Path
    state_dir: Path
    users: str
    fernet_key: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topology:
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            raise TopologyError(f"set {', '.join(missing)} (see edihub.stack.topology)")
        key_file = Path(env["EDIHUB_SFTP_KEY_FILE"])
        if not key_file.is_file():
            raise TopologyError(f"EDIHUB_SFTP_KEY_FILE: no file {key_file}")
        try:
            smtp = SmtpSettings.from_env(env)
            sftp = hub_endpoint_from_env(env)
            api_port = int(env.get("EDIHUB_API_PORT") or 8080)
        except ValueError as exc:
            raise TopologyError(str(exc)) from exc
        assert sftp is not None  # EDIHUB_SFTP_HOST is REQUIRED
        api_host = env.get("EDIHUB_API_HOST") or "127.0.0.1"
        state_dir = Path(env.get("EDIHUB_STATE_DIR") or REPO_ROOT / "state")
        return cls(
            hub_database_url=env["EDIHUB_DATABASE_URL"],
            airflow_database_url=sqlalchemy_url(env["EDIHUB_AIRFLOW_DATABASE_URL"]),
            sftp=sftp,
            smtp=smtp,
            jwt_secret=env["EDIHUB_JWT_SECRET"],
            api_secret_key=env["EDIHUB_API_SECRET_KEY"],
            api_host=api_host,
            api_port=api_port,
            base_url=env.get("EDIHUB_API_BASE_URL") or f"http://{api_host}:{api_port}",
            executor=env.get("EDIHUB_EXECUTOR") or "LocalExecutor",
            airflow_home=Path(env.get("EDIHUB_AIRFLOW_HOME") or state_dir / "airflow"),
            state_dir=state_dir,
            users=env.get("EDIHUB_AIRFLOW_USERS") or AIRFLOW_USERS,
            fernet_key=env.get("EDIHUB_FERNET_KEY", ""),
        )

    def environment(self) -> dict[str, str]:
        """What each component runs under: Airflow's settings and the DAGs' connections."""
        # Task processes call the Execution API at the api-server itself, not at the proxy.
        internal = f"http://{'127.0.0.1' if self.api_host == '0.0.0.0' else self.api_host}"
        env = {
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": self.users,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{internal}:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_database_url,
            "AIRFLOW__API__HOST": self.api_host,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__SECRET_KEY": self.api_secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW_CONN_EDI_POSTGRES": json.dumps(postgres_connection(self.hub_database_url)),
            "AIRFLOW_CONN_EDI_SFTP": json.dumps(sftp_connection(self.sftp)),
            "AIRFLOW_CONN_EDI_SMTP": json.dumps(smtp_connection(self.smtp)),
            "EDIHUB_STATE_DIR": str(self.state_dir),
        }
        return {k: v for k, v in env.items() if v}


def shell_lines(env: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines, for ``. <(edihub stack env)`` or a review."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))


def exec_component(topology: Topology, arguments: list[str]) -> None:
    """Replace this process with ``airflow <arguments>`` under the topology's environment."""
    airflow = str(Path(sys.executable).parent / "airflow")
    os.execve(airflow, [airflow, *arguments], {**os.environ, **topology.environment()})


def check(topology: Topology) -> list[str]:
    """Reach the hub database and the SFTP server through the connections, with the hooks
    the DAGs' tasks use (``edihub.orchestration``); one line per server. Raises on failure."""
    from edihub import orchestration
    from edihub.load.db import connect

    os.environ.update(topology.environment())
    with connect(orchestration.database_dsn()) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_database(), count(*) FROM public.edihub_migration")
        database, migrations = cur.fetchone()
    with orchestration.sftp_session() as sftp:
        top = sorted(sftp.listdir("/"))
    return [
        f"edi_postgres: database {database}, {migrations} migrations applied",
        f"edi_sftp: {topology.sftp.username}@{topology.sftp.host}:{topology.sftp.port}, "
        f"host key pinned, / holds {', '.join(top) or 'nothing'}",
    ]


def command(action: str, arguments: list[str]) -> int:
    """``edihub stack env|check|exec``, from this process's environment."""
    try:
        topology = Topology.from_env(os.environ)
    except TopologyError as exc:
        sys.exit(f"edihub stack: {exc}")
    if action == "env":
        sys.stdout.write(shell_lines(topology.environment()))
    elif action == "check":
        print("\n".join(check(topology)))
    else:
        exec_component(topology, arguments)  # does not return
    return 0
