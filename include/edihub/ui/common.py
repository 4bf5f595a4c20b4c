"""What every EDI hub page inside the Airflow UI shares: the login check, the hub database,
the templates.

Airflow mounts plugin apps without any login check (stack-notes §1): each app takes
``dependencies=[plugin_access()]``, so every route needs an Airflow user allowed to view
plugins. Pages are rendered on the server with escaping; no script, no CDN.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import psycopg2
import psycopg2.extras
from fastapi import Depends
from jinja2 import Environment, Template, select_autoescape

POSTGRES_CONN_ID = "edi_postgres"

_ENV = Environment(autoescape=select_autoescape(default=True))


def template(name: str) -> Template:
    """A page template of ``edihub.ui``'s ``templates/`` folder, HTML-escaped."""
    return _ENV.from_string((resources.files("edihub.ui") / "templates" / name).read_text("utf-8"))


def database_dsn() -> str:
    """EDIHUB_DATABASE_URL, or the ``edi_postgres`` Airflow connection."""
    url = os.environ.get("EDIHUB_DATABASE_URL")
    if url:
        return url
    # The API server has no task context: read the connection from the secrets backends.
    from airflow.models.connection import Connection

    from edihub.load.db import dsn_from_connection

    return dsn_from_connection(Connection.get_connection_from_secrets(POSTGRES_CONN_ID))


@contextmanager
def read_cursor() -> Iterator[Any]:
    """A read-only cursor on the hub database whose rows are dicts."""
    conn = psycopg2.connect(database_dsn(), application_name="edihub-ui")
    try:
        conn.set_session(readonly=True)
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            yield cur
    finally:
        conn.close()


def plugin_access() -> Any:
    """The dependency every app of the plugin takes: an Airflow user who may view plugins."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return Depends(requires_access_view(AccessView.PLUGINS))
