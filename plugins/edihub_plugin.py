"""The EDI hub's Airflow plugin: its pages inside the Airflow UI (logic in edihub.ui)."""

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from edihub.ui.alerts_app import app as alerts_app
from edihub.ui.exports_app import app as exports_app
from edihub.ui.files_app import app as files_app
from edihub.ui.kpi_app import app as kpi_app
from edihub.ui.trace_app import app as trace_app


class EdiHubPlugin(AirflowPlugin):
    name = "edihub"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": files_app, "url_prefix": "/edihub", "name": "EDI hub"},
        {"app": alerts_app, "url_prefix": "/edihub-alerts", "name": "EDI hub: alerts"},
        {"app": exports_app, "url_prefix": "/edihub-exports", "name": "EDI hub: exports"},
        {"app": kpi_app, "url_prefix": "/edihub-kpi", "name": "EDI hub: KPI dashboard"},
        {"app": trace_app, "url_prefix": "/edihub-trace", "name": "EDI hub: file journey"},
    ]
    # Relative href, no leading slash: works behind a base_url (stack-notes §1).
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Alerts",
            "href": "edihub-alerts/alerts",
            "url_route": "edihub_alerts",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Inbound files",
            "href": "edihub/files",
            "url_route": "edihub_files",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Insurer exports",
            "href": "edihub-exports/exports",
            "url_route": "edihub_exports",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "KPI dashboard",
            "href": "edihub-kpi/kpi",
            "url_route": "edihub_kpi",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "File journey",
            "href": "edihub-trace/trace",
            "url_route": "edihub_trace",
            "destination": "nav",
            "category": "browse",
        },
    ]
