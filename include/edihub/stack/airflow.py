"""Airflow 3 standalone as a child process of the hub, and a small client for its REST API.

``airflow standalone`` runs the scheduler, dag-processor, api-server and triggerer under one
parent. We start it in a process group of its own, so that a Ctrl-C on the terminal reaches
only the hub (which then stops Airflow in order) and so that stopping can signal every
Airflow process at once. Its environment is generated here: nothing is read from, or written
to, an ``airflow.cfg`` outside the state folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil

log = logging.getLogger(__name__)

PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"
PID_FILE = "standalone.pid"  # session id of the last standalone started here
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# Task instance states after which nothing more will happen to the instance in this run.
TERMINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


class AirflowError(RuntimeError):
    """Airflow did not start, did not answer, or a run did not end in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick; tiny race accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def postgres_metadata_url(
    socket_dir: str | Path, database: str = "airflow", user: str = "postgres"
) -> str:
    """SQLAlchemy URL of a database on a PostgreSQL server reached through its unix socket."""
    return f"postgresql+psycopg2://{quote(user)}@/{quote(database)}?host={quote(str(socket_dir))}"


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class AirflowStandalone:
    """One ``airflow standalone`` under ``home`` (AIRFLOW_HOME), with a generated environment.

    ``env`` holds what the caller adds: connections (``AIRFLOW_CONN_*``) and the hub's own
    settings (``EDIHUB_*``). It wins over the inherited environment but not over the settings
    below that make this an isolated, local stack.
    """

    home: Path
    dags_folder: Path
    plugins_folder: Path
    sql_alchemy_conn: str
    env: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port at start
    use_job_schedule: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.home / "standalone.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def password_file(self) -> Path:
        return self.home / PASSWORD_FILE

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # An AIRFLOW_CONFIG from the caller's shell would point Airflow at another airflow.cfg.
        env.pop("AIRFLOW_CONFIG", None)
        env.update(self.env)
        # OpenLineage (edihub.lineage names the hub's datasets): offline, events go to a file
        # under the stack's home, unless the caller names a transport (an HTTP one to the
        # funds' Marquez, docs/operations.md).
        env.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", "edihub")
        env.setdefault("AIRFLOW__OPENLINEAGE__EXTRACTORS", "edihub.lineage.HubExtractor")
        # In a thread of the task, not a fork: the extractor reads the task's connections, and a
        # fork would share the task's channel to the supervisor.
        env.setdefault("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
        if (
            not {"OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "AIRFLOW__OPENLINEAGE__TRANSPORT"}
            & env.keys()
        ):
            events = str(self.home / "openlineage.jsonl")
            transport = {"type": "file", "log_file_path": events, "append": True}
            env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport)
        # standalone starts its components as plain `airflow ...`: make that this venv's airflow.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__API__HOST": self.host,  # local only: the admin password is a demo's
                "AIRFLOW__API__PORT": str(self.port),
                # Task processes reach the Execution API through this URL: it must carry our port.
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                # The log servers' fixed defaults (8793, 8794) would collide with any other
                # Airflow on the machine (another checkout, a test run): pick free ones.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port(self.host)),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port(self.host)),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.use_job_schedule),
                "PYTHONUNBUFFERED": "1",  # the log file follows what happens, as it happens
                "NO_COLOR": "1",
            }
        )
        return env

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start ``airflow standalone`` in its own process group; return at once."""
        self.home.mkdir(parents=True, exist_ok=True)
        killed = kill_stack_processes(self.home)
        if killed:
            log.warning("stopped %d Airflow process(es) left over under %s", killed, self.home)
        if not self.port:
            self.port = free_port(self.host)
        airflow = Path(sys.executable).parent / "airflow"
        with self.log_path.open("ab") as out:
            out.write(f"\n--- edihub: airflow standalone on {self.url} ---\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [str(airflow), "standalone"],
                env=self.environment(),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and process group: see module doc
            )
        self.pid_file.write_text(json.dumps({"sid": self.process.pid}), encoding="utf-8")
        log.info("airflow standalone pid %d, log %s", self.process.pid, self.log_path)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _check_alive(self, waiting_for: str) -> None:
        if not self.is_running():
            code = self.process.returncode if self.process else None
            raise AirflowError(
                f"airflow standalone exited (status {code}) while {waiting_for}; "
                f"see {self.log_path}. Last lines:\n{_tail(self.log_path)}"
            )

    def wait_healthy(self, deadline: float) -> dict[str, Any]:
        """Wait until the API server answers and reports the database and scheduler healthy."""
        last = "no answer yet"
        with httpx.Client(base_url=self.url, timeout=5.0) as http:
            while True:
                self._check_alive("starting")
                try:
                    response = http.get("/api/v2/monitor/health")
                    if response.status_code == 200:
                        health = response.json()
                        states = {k: (v or {}).get("status") for k, v in health.items()}
                        if states.get("metadatabase") == "healthy" and (
                            states.get("scheduler") == "healthy"
                        ):
                            return dict(health)
                        last = f"health {states}"
                    else:
                        last = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                if time.monotonic() > deadline:
                    raise AirflowError(
                        f"Airflow's API server at {self.url} was not healthy in time ({last}); "
                        f"see {self.log_path}. Last lines:\n{_tail(self.log_path)}"
                    )
                time.sleep(1.0)

    def admin_password(self, deadline: float) -> str:
        """The admin password standalone generated (kept in AIRFLOW_HOME across runs)."""
        while True:
            try:
                return str(json.loads(self.password_file.read_text(encoding="utf-8"))["admin"])
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise AirflowError(
                        f"no admin password in {self.password_file}; see {self.log_path}"
                    ) from None
                time.sleep(0.5)

    def client(self, password: str, username: str = "admin") -> AirflowClient:
        return AirflowClient(self.url, username, password)

    def wait_dag(self, client: AirflowClient, dag_id: str, deadline: float) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail fast on its import error."""
        while True:
            self._check_alive(f"waiting for DAG {dag_id} to be parsed")
            dag = client.dag(dag_id)
            if dag is not None:
                return dag
            for error in client.import_errors():
                if Path(str(error.get("filename", ""))).stem == dag_id:
                    raise AirflowError(
                        f"DAG file {error.get('filename')} does not import:\n"
                        f"{error.get('stack_trace', '').strip()}"
                    )
            if time.monotonic() > deadline:
                raise AirflowError(
                    f"DAG {dag_id} was not parsed in time: is it in {self.dags_folder}? "
                    f"See {self.log_path} and {self.home / 'logs'}"
                )
            time.sleep(1.0)

    def stop(self, grace: float = 15.0) -> list[str]:
        """Stop every process of this stack; return descriptions of any that survived.

        SIGTERM to the components first, with standalone itself left alive to drain their
        output: a component whose stdout reader is gone can fail its own shutdown (seen: the
        scheduler then hangs with its LocalExecutor workers). Then SIGTERM to what is left,
        standalone included, and SIGKILL after ``grace`` seconds.
        Not SIGINT to standalone: it stops its components itself, but their forked log
        servers inherit a SIGTERM handler that ignores the signal in child processes and are
        killed only after a 10 s timeout each (measured: 12 to 30 s, against 3 to 5 s).
        """
        leader = self.process.pid if self.process is not None else None
        components = {p for p in self._members() if p.pid != leader}
        _terminate(components, grace, kill=False)
        _terminate(self._members(), grace)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)  # reap the leader: no zombie of ours
        left = sorted(_describe(p) for p in self._members())
        if not left:
            self.pid_file.unlink(missing_ok=True)
        return left

    @property
    def pid_file(self) -> Path:
        return self.home / PID_FILE

    def _members(self) -> set[psutil.Process]:
        procs = stack_process_set(self.home)
        if self.process is not None:
            procs |= _session_members(self.process.pid, require_airflow=False)
        return {p for p in procs if _alive(p)}


# -- finding the stack's processes ---------------------------------------------------------
# Airflow renames its processes (setproctitle), which on Linux overwrites their environment:
# the api-server and the LocalExecutor workers no longer show AIRFLOW_HOME. Their session id
# survives, so the stack is found by the session standalone was started in (its pid is kept
# in AIRFLOW_HOME, for a hub that was killed before it could stop Airflow) and, for the
# processes that still show it, by AIRFLOW_HOME.


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        proc.send_signal(sig)


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:120]}"
    except psutil.Error:
        return str(proc.pid)


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> set[psutil.Process]:
    """Wait until the processes exit (a zombie counts as gone); return those still alive."""
    alive = {p for p in procs if _alive(p)}
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = {p for p in alive if _alive(p)}
    return alive


def _terminate(procs: Iterable[psutil.Process], grace: float, kill: bool = True) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then (``kill``) SIGKILL the stragglers."""
    procs = list(procs)
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    alive = _wait_gone(procs, grace)
    if not kill:
        return
    for proc in alive:
        log.warning("killing Airflow process %s that ignored SIGTERM", _describe(proc))
        _signal(proc, signal.SIGKILL)
    _wait_gone(alive, 5)


def _session_members(sid: int, require_airflow: bool) -> set[psutil.Process]:
    members = set()
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or os.getsid(proc.pid) != sid:
                continue
            # A session id from an old pid file could belong to someone else by now.
            if require_airflow and "airflow" not in " ".join(proc.cmdline()):
                continue
            members.add(proc)
        except (OSError, psutil.Error):
            continue
    return members


def stack_process_set(home: Path) -> set[psutil.Process]:
    """The live processes of the Airflow stack under ``home``."""
    wanted = str(home)
    found = set()
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get("AIRFLOW_HOME") == wanted:
                found.add(proc)
        except (psutil.Error, OSError):
            continue
    try:
        sid = int(json.loads((home / PID_FILE).read_text())["sid"])
    except (OSError, ValueError, KeyError, TypeError):
        sid = None
    if sid is not None:
        found |= _session_members(sid, require_airflow=True)
    return {p for p in found if _alive(p)}


def stack_processes(home: Path) -> list[str]:
    """Descriptions of the Airflow processes running for ``home`` (for checks and tests)."""
    return sorted(_describe(p) for p in stack_process_set(home))


def kill_stack_processes(home: Path) -> int:
    """Stop Airflow processes left over for ``home`` (a hub killed with SIGKILL leaves them)."""
    procs = stack_process_set(home)
    _terminate(procs, grace=10)
    return len(procs)


# -- REST client ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskState:
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    duration: float | None
    label: str  # task id plus the rendered map index, for people

    @classmethod
    def from_api(cls, ti: Mapping[str, Any]) -> TaskState:
        index = int(ti.get("map_index", -1))
        rendered = ti.get("rendered_map_index") or (str(index) if index >= 0 else "")
        label = ti["task_id"] + (f"[{rendered}]" if index >= 0 else "")
        return cls(
            task_id=ti["task_id"],
            map_index=index,
            state=ti.get("state"),
            try_number=int(ti.get("try_number") or 0),
            duration=ti.get("duration"),
            label=label,
        )


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str
    state: str
    tasks: list[TaskState]
    start_date: str | None = None
    end_date: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


GET_TRIES = 3  # a read the API server did not answer in time is asked again, up to this


class AirflowClient:
    """The few calls of Airflow's public REST API (v2) the hub needs, with a JWT login."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 15.0):
        self._http = httpx.Client(base_url=base_url, timeout=timeout)
        self._username = username
        self._password = password
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self) -> str:
        response = self._http.post(
            "/auth/token", json={"username": self._username, "password": self._password}
        )
        if response.status_code not in (200, 201):
            raise AirflowError(f"login as {self._username} refused: HTTP {response.status_code}")
        self._token = str(response.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            self.login()
        relogged = False
        slow = 0
        while True:
            headers = {"Authorization": f"Bearer {self._token}"}
            try:
                response = self._http.request(method, "/api/v2" + path, headers=headers, **kwargs)
            except httpx.TimeoutException as exc:
                # An API server starved of CPU by the tasks it runs (2 cores, 50 tasks) can miss
                # one answer; a read is safe to ask again, a write (trigger, pause) is not.
                slow += 1
                if method != "GET" or slow == GET_TRIES:
                    raise AirflowError(
                        f"{method} {path}: no answer from the API server in "
                        f"{self._http.timeout.read} s ({slow} tries)"
                    ) from exc
                continue
            if response.status_code == 401 and not relogged:
                self.login()  # the token expired: log in again, once
                relogged = True
                continue
            return response

    def plugin_json(self, path: str) -> Any:
        """GET a JSON route of a plugin app (``/edihub-kpi/kpi.json``) as the logged-in user."""
        if self._token is None:
            self.login()
        response = self._http.get(path, headers={"Authorization": f"Bearer {self._token}"})
        if response.status_code != 200:
            raise AirflowError(f"GET {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    def _json(self, method: str, path: str, ok: Iterable[int] = (200,), **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        if response.status_code not in set(ok):
            raise AirflowError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response.json()

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/dags/{quote(dag_id)}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AirflowError(f"GET dag {dag_id}: HTTP {response.status_code}")
        return dict(response.json())

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/importErrors", params={"limit": 100})["import_errors"])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._json("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": paused})

    def trigger(
        self,
        dag_id: str,
        *,
        logical_date: str | None = None,
        data_interval: tuple[str, str] | None = None,
        conf: Mapping[str, Any] | None = None,
        note: str | None = None,
    ) -> dict[str, Any] | None:
        """Create a manual run; None if a run with that logical date already exists."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": dict(conf or {})}
        if data_interval:
            body["data_interval_start"], body["data_interval_end"] = data_interval
        if note:
            body["note"] = note
        response = self.request("POST", f"/dags/{quote(dag_id)}/dagRuns", json=body)
        if response.status_code == 409:
            return None
        if response.status_code not in (200, 201):
            raise AirflowError(f"trigger {dag_id}: HTTP {response.status_code} {response.text}")
        return dict(response.json())

    def dag_runs(self, dag_id: str, **params: Any) -> list[dict[str, Any]]:
        data = self._json("GET", f"/dags/{quote(dag_id)}/dagRuns", params=params)
        return list(data["dag_runs"])

    def set_run_state(self, dag_id: str, run_id: str, state: str, note: str = "") -> None:
        body = {"state": state, **({"note": note} if note else {})}
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}"
        self._json("PATCH", path, json=body)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskState]:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        tasks: list[TaskState] = []
        while True:  # paged: a run maps over many files
            data = self._json("GET", path, params={"limit": 100, "offset": len(tasks)})
            page = [TaskState.from_api(ti) for ti in data["task_instances"]]
            tasks += page
            if not page or len(tasks) >= int(data.get("total_entries", 0)):
                break
        return sorted(tasks, key=lambda t: (t.task_id, t.map_index))

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        deadline: float,
        on_task: Callable[[TaskState], None] | None = None,
        poll: float = 1.0,
    ) -> RunResult:
        """Poll the run until it ends; call ``on_task`` once per task instance that finishes."""
        seen: set[tuple[str, int, int]] = set()
        while True:
            run = self.dag_run(dag_id, run_id)
            tasks = self.task_instances(dag_id, run_id)
            for task in tasks:
                key = (task.task_id, task.map_index, task.try_number)
                if task.state in TERMINAL_TI_STATES and key not in seen:
                    seen.add(key)
                    if on_task is not None:
                        on_task(task)
            if run["state"] in TERMINAL_RUN_STATES:
                return RunResult(
                    dag_id, run_id, run["state"], tasks, run.get("start_date"), run.get("end_date")
                )
            if time.monotonic() > deadline:
                pending = ", ".join(f"{t.label}={t.state}" for t in tasks) or "no task started"
                raise AirflowError(
                    f"run {run_id} of {dag_id} still {run['state']} at the deadline ({pending})"
                )
            time.sleep(poll)
