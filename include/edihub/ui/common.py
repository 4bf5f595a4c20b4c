"""What every EDI hub page inside the Airflow UI shares: the login check, the hub database,
the templates.

Airflow mounts plugin apps without any login check (stack-notes §1): each app takes
``dependencies=[plugin_access()]``, so every route needs an Airflow user allowed to view
plugins. Pages are rendered on the server with escaping; no script, no CDN. A form that changes
something (a rerun, a reprocess) is checked by ``check_form``: a token bound to the user and
a same-origin request, against cross-site forgery.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extras
from fastapi import Depends, HTTPException, Request
from jinja2 import Environment, Template, select_autoescape

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

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


def current_user() -> Any:
    """The logged-in Airflow user as a route's parameter (``plugin_access`` requires one)."""
    from airflow.api_fastapi.core_api.security import get_user

    return Depends(get_user)


def form_token(user: BaseUser, purpose: str) -> str:
    """A form's anti-CSRF token: a cross-site page cannot read it off ours, and it is bound to
    the user and the form's purpose (the API server's secret key, shared by its workers)."""
    from airflow.configuration import conf

    key = conf.get("api", "secret_key").encode()
    return hmac.new(key, f"{purpose}\0{user.get_id()}".encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """A browser names the page a POST comes from (Origin, else Referer); it must be ours,
    as the browser or the proxy in front of us sees us. Neither header: the token decides."""
    from airflow.configuration import conf

    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    forwarded = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
    base = urlsplit(conf.get("api", "base_url", fallback="") or "").netloc
    ours = {request.headers.get("host"), forwarded, base} - {None, ""}
    return urlsplit(source).netloc in ours


def check_form(request: Request, user: BaseUser, token: str, purpose: str, page: str) -> None:
    """403 unless the form carries ``user``'s token for ``purpose`` and comes from our site."""
    if not hmac.compare_digest(token, form_token(user, purpose)) or not same_origin(request):
        raise HTTPException(403, f"this form must be sent from the {page} page")
