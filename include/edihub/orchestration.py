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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import paramiko

from edihub import collect
from edihub.config import Settings

POSTGRES_CONN_ID = "edi_postgres"
SFTP_CONN_ID = "edi_sftp"
log = logging.getLogger(__name__)


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


def list_files(feed: str) -> list[dict[str, Any]]:
    with sftp_session() as sftp:
        items = collect.list_inbound(sftp, feed, Settings.from_env().settle_seconds)
    return [asdict(item) for item in items]


def fetch(item: dict[str, Any]) -> int:
    with sftp_session() as sftp:
        return collect.fetch(sftp, database_dsn(), Settings.from_env(), collect.InboundFile(**item))


def validate(file_id: int) -> int:
    return collect.validate(database_dsn(), Settings.from_env(), file_id)


def load(file_id: int) -> int:
    return collect.load(database_dsn(), Settings.from_env(), file_id)


def archive(file_id: int) -> int:
    with sftp_session() as sftp:
        return collect.archive(sftp, database_dsn(), file_id)


def acknowledge(file_id: int) -> dict[str, Any]:
    dsn = database_dsn()
    with sftp_session() as sftp:
        collect.acknowledge(sftp, dsn, file_id)
    return collect.file_summary(dsn, file_id)


def report(feed: str, outcomes: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The batch's outcome (the asset event's extra); fails if a file did not finish."""
    done = [o for o in outcomes if o]
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
    unfinished = len(outcomes) - len(done)
    if unfinished:
        raise RuntimeError(f"{unfinished} file(s) did not finish; see the failed tasks")
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


def send_statement_emails() -> dict[str, Any]:
    from airflow.sdk import BaseHook

    from edihub.notify import send_due, smtp_settings_from_connection

    smtp = smtp_settings_from_connection(BaseHook.get_connection(SMTP_CONN_ID))
    return send_due(database_dsn(), smtp, dt.datetime.now(dt.UTC)).as_dict()


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
    return due(database_dsn(), dt.datetime.now(dt.UTC))


def export_insurer(insurer_id: str, days: list[str]) -> list[dict[str, Any]]:
    """Publish the insurer's files of ``days``, oldest first (numbers follow the days)."""
    from edihub.exports import publish

    dsn, published = database_dsn(), []
    with sftp_session() as sftp:
        for day in days:
            done = publish(dsn, sftp, insurer_id, dt.date.fromisoformat(day))
            published.append({**asdict(done), "export_day": day})
    return published
