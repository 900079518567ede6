"""docker-compose.yaml checked as far as possible without a Docker engine."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_compose_services_commands_healthchecks_and_volumes():
    doc = yaml.safe_load((REPO / "docker-compose.yaml").read_text("utf-8"))
    services = doc["services"]
    assert {"airflow-db", "warehouse-db", "api-server", "scheduler", "dag-processor", "triggerer"} <= set(services)
    for name, svc in services.items():
        assert svc.get("command"), name
        assert svc.get("healthcheck", {}).get("test"), name
    mounts = {v.split(":")[1] for v in services["scheduler"]["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/subsidy-ledger/include",
            "/opt/airflow/expectations"} <= mounts
    env = services["scheduler"]["environment"]
    assert "${WAREHOUSE_PASSWORD}" in env["AIRFLOW_CONN_SUBSIDY_WAREHOUSE"]  # secrets from .env, not the file
    example = (REPO / ".env.example").read_text("utf-8")
    assert "WAREHOUSE_PASSWORD=" in example and "AIRFLOW_META_PASSWORD=" in example
