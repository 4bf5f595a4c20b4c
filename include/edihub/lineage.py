"""OpenLineage for the hub's DAGs: which inbox file fed which table, and which tables fed
which insurer's export, for the funds' catalogue (Marquez or any OpenLineage consumer).

The hub's tasks are ``@task`` functions that call edihub code, which the OpenLineage provider
cannot see into (it records them as an unknown source). ``HubExtractor`` is registered for
their operator class (``[openlineage] extractors``) and names each task's datasets when it
completes, from the files the task was handed and what the database says became of them:

  collect_<feed>   fetch        inbox file (sftp)           -> edi.inbound_file
                   load         inbox file                  -> the edi.<feed>_* tables it filled
                   archive      inbox file                  -> its archive copy (sftp)
                   acknowledge  edi.inbound_file, file_error -> the ack in the sender's outbox
  build_statements price_and_issue  the claims' tables     -> claim_line, statement, statement_line
  export_insurers  export_insurer   statements             -> the insurer's file and manifest

Datasets follow OpenLineage's naming: ``postgres://host:port`` / ``database.schema.table``
(the ``edi_postgres`` connection; a unix socket counts as localhost) and
``sftp://host:port`` / the path as the hub's account sees it (``edi_sftp``). Other tasks get
no datasets (their events still say that they ran). A lineage failure never fails a task: the
provider logs it and emits the event without datasets. Imports only the provider at module
level: the provider loads this module wherever it builds its extractors.
"""

from __future__ import annotations

import inspect
import posixpath
from functools import cache
from typing import Any

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import Dataset

# The tables a run of build_statements reads (the priced claims and what prices them) and
# writes (statements and their lines), as edihub.statements uses them.
STATEMENT_INPUTS = (
    "edi.fse_care_sheet",
    "edi.fse_act",
    "edi.fse_exemption_request",
    "edi.pharmacy_invoice",
    "edi.pharmacy_invoice_line",
    "edi.registry_insured",
    "edi.registry_insurer",
    "edi.reimbursement_rate",
)
STATEMENT_OUTPUTS = ("edi.claim_line", "edi.statement", "edi.statement_line")
EXPORT_INPUTS = ("edi.statement", "edi.statement_line", "edi.claim_line", "edi.export_line")


def postgres_dataset(table: str) -> Dataset:
    """``table``: schema.table of the hub database."""
    namespace, database = _postgres_place()
    return Dataset(namespace=namespace, name=f"{database}.{table}")


def sftp_dataset(path: str) -> Dataset:
    return Dataset(namespace=_sftp_namespace(), name=path)


# One connection lookup each per task process (each is a call to Airflow's API), not one per
# dataset: a collect batch names dozens.
@cache
def _postgres_place() -> tuple[str, str]:
    from airflow.sdk import BaseHook

    from edihub.orchestration import POSTGRES_CONN_ID

    conn = BaseHook.get_connection(POSTGRES_CONN_ID)
    host = "localhost" if not conn.host or conn.host.startswith("/") else conn.host
    return f"postgres://{host}:{conn.port or 5432}", conn.schema


@cache
def _sftp_namespace() -> str:
    from airflow.sdk import BaseHook

    from edihub.orchestration import SFTP_CONN_ID

    conn = BaseHook.get_connection(SFTP_CONN_ID)
    return f"sftp://{conn.host}:{conn.port or 22}"


def _files(file_ids: list[int]) -> list[dict[str, Any]]:
    import psycopg2.extras

    from edihub.load.db import connect
    from edihub.orchestration import database_dsn
    from edihub.trace import rows_per_table

    with connect(database_dsn()) as conn:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(
                "SELECT id, feed, remote_path, archive_path, ack_path FROM edi.inbound_file"
                " WHERE id = ANY(%s) ORDER BY id",
                (list(file_ids),),
            )
            files = [dict(r) for r in cur.fetchall()]
        with conn.cursor() as cur:
            for f in files:
                f["tables"] = rows_per_table(cur, f["feed"], f["id"])
    return files


def _inbox(f: dict[str, Any]) -> list[Dataset]:
    """The file where its sender put it (none for a file handed over locally)."""
    return [] if f["remote_path"].startswith("local:") else [sftp_dataset(f["remote_path"])]


def _exports(insurer_id: str, days: list[str]) -> list[Dataset]:
    from edihub.load.db import connect
    from edihub.orchestration import database_dsn
    from edihub.sftp.layout import statements_dir

    with connect(database_dsn()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT sftp_account, file_name FROM edi.export_file WHERE insurer_id = %s"
            " AND export_day = ANY(%s::date[]) AND state = 'published' ORDER BY export_day",
            (insurer_id, list(days)),
        )
        paths = [posixpath.join(statements_dir(account), name) for account, name in cur]
    return [sftp_dataset(p + suffix) for p in paths for suffix in ("", ".manifest.json")]


def datasets(dag_id: str, task_id: str, kwargs: dict[str, Any]) -> OperatorLineage:
    """The inputs and outputs of one completed task of the hub, from its arguments."""
    step = task_id.rsplit(".", 1)[-1]
    if dag_id.startswith("collect_") and step == "fetch":
        return OperatorLineage(
            inputs=[sftp_dataset(item["path"]) for item in kwargs["batch"]],
            outputs=[postgres_dataset("edi.inbound_file")],
        )
    if dag_id.startswith("collect_") and step in ("load", "archive", "acknowledge"):
        files = _files(kwargs["file_ids"])
        if step == "load":
            inputs = [d for f in files for d in _inbox(f)]
            tables = sorted({t for f in files for t in f["tables"]} | {"edi.inbound_file"})
            outputs = [postgres_dataset(t) for t in tables]
        elif step == "archive":
            inputs = [d for f in files for d in _inbox(f)]
            outputs = [sftp_dataset(f["archive_path"]) for f in files if f["archive_path"]]
        else:
            inputs = [postgres_dataset(t) for t in ("edi.inbound_file", "edi.file_error")]
            outputs = [sftp_dataset(f["ack_path"]) for f in files if f["ack_path"]]
        return OperatorLineage(inputs=inputs, outputs=outputs)
    if dag_id == "build_statements" and step == "price_and_issue":
        return OperatorLineage(
            inputs=[postgres_dataset(t) for t in STATEMENT_INPUTS],
            outputs=[postgres_dataset(t) for t in STATEMENT_OUTPUTS],
        )
    if dag_id == "export_insurers" and step == "export_insurer":
        return OperatorLineage(
            inputs=[postgres_dataset(t) for t in EXPORT_INPUTS],
            outputs=_exports(kwargs["insurer_id"], kwargs["days"]),
        )
    return OperatorLineage()


class HubExtractor(BaseExtractor):
    """The datasets of the hub's ``@task`` functions, for the OpenLineage provider."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        # At start the files a task was handed may not be in the database yet: on complete.
        return OperatorLineage()

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        # The arguments are rendered by then: the batch, file ids or insurer the task ran on
        # (positional in the DAGs' calls, keywords from expand_kwargs).
        op = self.operator
        arguments = inspect.signature(op.python_callable).bind_partial(*op.op_args, **op.op_kwargs)
        return datasets(op.dag_id, op.task_id, arguments.arguments)
