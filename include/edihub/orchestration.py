"""What the DAGs' tasks call: each step of the hub bound to Airflow's connections.

Connections (Airflow UI, ``airflow connections``, or AIRFLOW_CONN_* variables):
  edi_postgres  the hub database (conn_type postgres; host may be a unix-socket folder)
  edi_sftp      the hub's service account on the SFTP server (conn_type sftp, key auth,
                ``host_key`` extra pinned: the hook refuses an unknown or changed host key)
  edi_smtp      the relay statements are mailed through (conn_type smtp; extra ``from_email``)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

import paramiko

from edihub import clock, collect
from edihub.config import Settings

POSTGRES_CONN_ID = "edi_postgres"
SFTP_CONN_ID = "edi_sftp"
log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def database_dsn(conn_id: str = POSTGRES_CONN_ID) -> str:
    from airflow.sdk import BaseHook

    from edihub.load.db import dsn_from_connection

    return dsn_from_connection(BaseHook.get_connection(conn_id))


@contextmanager
def sftp_session(conn_id: str = SFTP_CONN_ID) -> Iterator[paramiko.SFTPClient]:
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    with SFTPHook(ssh_conn_id=conn_id).get_managed_conn() as sftp:
        yield sftp


def migrate() -> list[str]:
    from edihub.load.db import migrate as apply

    return apply(database_dsn())


def finish_interrupted(feed: str) -> list[int]:
    with sftp_session() as sftp:
        return collect.finish_interrupted(sftp, database_dsn(), feed)


def list_files(feed: str) -> list[list[dict[str, Any]]]:
    """The ready files of ``feed``, in batches of a mapped task each."""
    settings = Settings.from_env()
    with sftp_session() as sftp:
        items = collect.list_inbound(sftp, feed, settings.settle_seconds)
    batches = collect.batches(items, settings.files_per_task, settings.bytes_per_task)
    return [[asdict(item) for item in batch] for batch in batches]


def _each(what: str, files: list[T], step: Callable[[T], R]) -> list[R]:
    """``step`` on every file of a batch; a file that fails does not stop the others. The
    task fails afterwards if one did, and its retry redoes only what is not done (each step
    is a no-op on a file whose row says it is done)."""
    done: list[R] = []
    failures: list[tuple[T, Exception]] = []
    for file in files:
        try:
            done.append(step(file))
        except Exception as exc:  # transient (database, SFTP): content errors never raise
            log.exception("%s failed for %s", what, file)
            failures.append((file, exc))
    if failures:
        first = failures[0][1]
        raise RuntimeError(
            f"{what} failed for {len(failures)} of {len(files)} file(s): "
            + "; ".join(f"{file}: {exc}" for file, exc in failures[:5])
        ) from first
    return done


def fetch(batch: list[dict[str, Any]]) -> list[int]:
    dsn, settings = database_dsn(), Settings.from_env()
    items = [collect.InboundFile(**item) for item in batch]
    with sftp_session() as sftp:
        fetched = _each("fetch", items, lambda item: collect.fetch(sftp, dsn, settings, item))
    return [file_id for file_id in fetched if file_id is not None]  # None: it left the inbox


def validate(file_ids: list[int]) -> list[int]:
    dsn, settings = database_dsn(), Settings.from_env()
    return _each("validate", file_ids, lambda file_id: collect.validate(dsn, settings, file_id))


def load(file_ids: list[int]) -> list[int]:
    dsn, settings = database_dsn(), Settings.from_env()
    return _each("load", file_ids, lambda file_id: collect.load(dsn, settings, file_id))


def archive(file_ids: list[int]) -> list[int]:
    dsn = database_dsn()
    with sftp_session() as sftp:
        return _each("archive", file_ids, lambda file_id: collect.archive(sftp, dsn, file_id))


def acknowledge(file_ids: list[int]) -> list[dict[str, Any]]:
    dsn = database_dsn()

    def ack(file_id: int) -> dict[str, Any]:
        collect.acknowledge(sftp, dsn, file_id)
        return collect.file_summary(dsn, file_id)

    with sftp_session() as sftp:
        return _each("acknowledge", file_ids, ack)


def batch_outcomes(listed: list[Any], outcomes: Any) -> list[list[dict[str, Any]] | None]:
    """Each listed batch's outcomes (None: the batch did not finish), from what Airflow hands
    the report. Airflow 3.3.2 hands a mapped task group's only expansion over as its bare value
    (apache/airflow#69036, fixed upstream by #69075): one batch's list of outcomes, or None,
    instead of a list of one; so the count of listed batches says which it is."""
    if len(listed) == 1 and (outcomes is None or all(isinstance(o, dict) for o in outcomes)):
        return [list(outcomes) if outcomes else None]
    return [list(batch) if batch else None for batch in outcomes or []]


def report(feed: str, batches: list[list[dict[str, Any]] | None]) -> dict[str, Any]:
    """The run's outcome (the asset event's extra); fails if a batch did not finish."""
    done = [o for batch in batches if batch for o in batch]
    states: dict[str, int] = {}
    for o in done:
        states[o["state"]] = states.get(o["state"], 0) + 1
    extra = {
        "feed": feed,
        "files": len(done),
        "states": states,
        "records_loaded": sum(o["records_loaded"] or 0 for o in done),
        "records_rejected": sum(o["records_rejected"] or 0 for o in done),
    }
    log.info("collect %s: %s", feed, extra)
    unfinished = sum(1 for batch in batches if not batch)
    if unfinished:
        raise RuntimeError(f"{unfinished} batch(es) of files did not finish; see the failed tasks")
    return extra


# ---------------------------------------------------------------- statements and their fan-out
SMTP_CONN_ID = "edi_smtp"  # conn_type smtp: the funds' relay (the embedded catcher locally)


def build_statements(close_today: bool = False) -> dict[str, Any]:
    from edihub.statements import build_statements as build

    summary = build(database_dsn(), close_today=close_today).summary()
    log.info("statements: %s", summary)
    if summary["unpriced"]:
        # Priced once the rate reference covers them; an engineer must look now.
        raise RuntimeError(f"{len(summary['unpriced'])} line(s) without a rate; see the log")
    return summary


def smtp_settings() -> Any:
    """The relay of the ``edi_smtp`` connection, as edihub.notify's SmtpSettings."""
    from airflow.sdk import BaseHook

    from edihub.notify import smtp_settings_from_connection

    return smtp_settings_from_connection(BaseHook.get_connection(SMTP_CONN_ID))


def send_statement_emails() -> dict[str, Any]:
    from edihub.notify import send_due

    return send_due(database_dsn(), smtp_settings(), clock.now()).as_dict()


def print_batch() -> dict[str, Any] | None:
    """The mail room's batch for the last issued day (a no-op once it exists)."""
    from edihub.load.db import connect
    from edihub.notify import build_print_batch

    dsn = database_dsn()
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT max(issued_on) FROM edi.statement_day")
        (day,) = cur.fetchone()
    if day is None:
        return None
    with sftp_session() as sftp:
        batch = build_print_batch(dsn, sftp, day, Settings.from_env().mailroom_account)
    if batch is None:
        return None
    return {
        "print_day": batch.print_day.isoformat(),
        "pdf_path": batch.pdf_path,
        "statements": batch.statement_count,
        "new": batch.new,
        "uploaded": batch.uploaded,
        "unaddressed": list(batch.unaddressed),
        "not_printed": [list(n) for n in batch.not_printed],
    }


def due_exports(conf: dict[str, Any]) -> list[dict[str, Any]]:
    """What the export run does: with the run's conf ``{"insurer_id", "day"}``, that insurer
    and day (a rerun from the UI: the same bytes); with ``{"day"}`` alone, every insurer's file
    of that day now (a day-end by hand, the demo); else every insurer's due days."""
    from edihub.exports import due_exports as due
    from edihub.exports import exportable_insurers

    day = conf.get("day") or None
    if conf.get("insurer_id"):
        from edihub.statements import monaco_today

        day = day or (monaco_today() - dt.timedelta(days=1)).isoformat()  # yesterday's file
        return [{"insurer_id": conf["insurer_id"], "days": [day]}]
    if day:
        insurers = exportable_insurers(database_dsn(), dt.date.fromisoformat(day))
        return [{"insurer_id": insurer, "days": [day]} for insurer in insurers]
    return due(database_dsn(), clock.now())


def export_insurer(insurer_id: str, days: list[str]) -> list[dict[str, Any]]:
    """Publish the insurer's files of ``days``, oldest first (numbers follow the days)."""
    from edihub.exports import publish

    dsn, published = database_dsn(), []
    with sftp_session() as sftp:
        for day in days:
            done = publish(dsn, sftp, insurer_id, dt.date.fromisoformat(day))
            published.append({**asdict(done), "export_day": day})
    return published


def ingest_sftp_log() -> dict[str, Any] | None:
    """OpenSSH's sftp log since the last run, into the download audit (None: no log set)."""
    from edihub.sftp import downloads

    path = downloads.configured_log()
    return None if path is None else asdict(downloads.ingest_log(database_dsn(), path))


def retention_run(dry_run: bool = False) -> dict[str, Any]:
    """Purge what is past its retention period (``edihub.retention``)."""
    from edihub import retention

    policy = retention.RetentionPolicy.from_env()
    with sftp_session() as sftp:
        report = retention.run(database_dsn(), sftp, Settings.from_env(), policy, dry_run=dry_run)
    return report.as_dict()
