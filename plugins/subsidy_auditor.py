"""Airflow 3 plugin: the auditors' page of the subsidy ledger under /auditor, behind Airflow's login.

Thin: the app is subsidy_ledger.auditor_app; this file only mounts it and wires Airflow's JWT check.
"""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from subsidy_ledger import auditor_app, orchestration

app = auditor_app.create_app(orchestration.warehouse_from_environment, orchestration.extracts_folder,
                             authenticate=get_user)


class SubsidyAuditorPlugin(AirflowPlugin):
    """The auditors' page and its API, plus a link in Airflow's navigation."""

    name = "subsidy_auditor"
    fastapi_apps = [{"app": app, "url_prefix": "/auditor", "name": "Subsidy ledger auditor"}]
    external_views = [{"name": "Subsidy auditor", "href": "/auditor/", "destination": "nav",
                       "url_route": "subsidy-auditor"}]
