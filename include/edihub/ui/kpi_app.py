"""The KPI dashboard inside the Airflow UI: the brochure's figures as the hub computes them,
the same HTML as ``edihub kpi report`` wrapped in a page, and ``kpi.json`` beside it.

Every route needs an Airflow login (``common.plugin_access``): Airflow mounts plugin apps
without one. Page and JSON come from one read of the ``kpi`` views, so they agree.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from edihub.kpi import report
from edihub.kpi.figures import Dashboard, read_dashboard
from edihub.ui.common import plugin_access, read_cursor, template

_TEMPLATE = template("kpi.html")

app = FastAPI(title="EDI hub: KPI dashboard", dependencies=[plugin_access()])


def _dashboard() -> Dashboard:
    with read_cursor() as cur:
        return read_dashboard(cur.connection)


# Plain ``def`` routes: FastAPI runs them in a thread pool, so the blocking DB calls are fine.
@app.get("/kpi", response_class=HTMLResponse)
def kpi_page() -> str:
    # The fragment is built with escaping by edihub.kpi.report: safe to insert as it is.
    return _TEMPLATE.render(title=report.TITLE, dashboard=Markup(report.fragment(_dashboard())))


@app.get("/kpi.json")
def kpi_json() -> dict[str, Any]:
    return report.as_dict(_dashboard())
