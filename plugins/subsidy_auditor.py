"""Airflow 3 plugin: the auditors' page of the subsidy ledger under /auditor and the leading group's page
(职业技能提升行动考核, A1) under /assessment, both behind Airflow's login.

Thin: the apps are subsidy_ledger.auditor_app and assessment_app; this file mounts them and wires Airflow's JWT
check.
"""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from subsidy_ledger import assessment_app, auditor_app, orchestration

app = auditor_app.create_app(orchestration.warehouse_from_environment, orchestration.extracts_folder,
                             authenticate=get_user)
assessment = assessment_app.create_app(orchestration.warehouse_from_environment, authenticate=get_user)


class SubsidyAuditorPlugin(AirflowPlugin):
    """The auditors' page and its API and the leading group's page, each with a link in Airflow's navigation."""

    name = "subsidy_auditor"
    fastapi_apps = [{"app": app, "url_prefix": "/auditor", "name": "Subsidy ledger auditor"},
                    {"app": assessment, "url_prefix": "/assessment", "name": "职业技能提升行动考核"}]
    external_views = [{"name": "Subsidy auditor", "href": "/auditor/", "destination": "nav",
                       "url_route": "subsidy-auditor"},
                      {"name": "职业技能提升行动考核", "href": "/assessment/", "destination": "nav",
                       "url_route": "skills-assessment"}]
