"""OpenLineage events of a DAG run, through the official provider's file transport, checked by schema."""

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from tests.dags.conftest import REPO, airflow_env, run_airflow_script
from tests.dags.test_dag_run import SCRIPT

SCHEMAS = Path(__file__).parent / "schemas"
STAGES = ["extract", "validate", "build_eligibility", "decide", "post_ledger", "pay", "export"]


@pytest.mark.airflow
def test_every_task_emits_schema_valid_events_with_datasets_and_quality(airflow_home, small_drop, tmp_path,
                                                                      monkeypatch):
    events_file = tmp_path / "openlineage.jsonl"
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "subsidy-ledger")
    out, wh = tmp_path / "out", f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    result = run_airflow_script(airflow_home, SCRIPT, str(small_drop), str(out), wh, str(REPO / "dags"))
    assert result["state"] == "success"
    assert airflow_env(airflow_home)  # the events came from that run's subprocess
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]

    core = json.loads((SCHEMAS / "OpenLineage-2-0-2.json").read_text())
    registry = Registry().with_resource(core["$id"], Resource.from_contents(core))
    validator = Draft202012Validator(core, registry=registry, format_checker=FormatChecker())
    defs = {k: {"$ref": f"{core['$id']}#/$defs/{k}"} for k in core["$defs"]}
    for e in events:
        errors = [f"{'/'.join(map(str, err.path))}: {err.message}" for err in validator.iter_errors(e)]
        assert not errors, (e["job"]["name"], errors[:5])
        for ds in e.get("inputs", []):
            if "dataQualityAssertions" in ds.get("facets", {}):
                Draft202012Validator(defs["DataQualityAssertionsDatasetFacet"], registry=registry).validate(
                    ds["facets"]["dataQualityAssertions"])
            if "dataQualityMetrics" in ds.get("inputFacets", {}):
                Draft202012Validator(defs["DataQualityMetricsInputDatasetFacet"], registry=registry).validate(
                    ds["inputFacets"]["dataQualityMetrics"])

    complete = {e["job"]["name"].split(".", 1)[1]: e for e in events
                if e["eventType"] == "COMPLETE" and "." in e["job"]["name"]}
    assert set(STAGES) <= set(complete), sorted(complete)
    for stage in STAGES:
        assert complete[stage]["inputs"] and complete[stage]["outputs"], stage
    validated = {Path(d["name"]).name: d for d in complete["validate"]["inputs"]}
    certs = validated["certificates.csv"]
    assertions = certs["facets"]["dataQualityAssertions"]["assertions"]
    assert any(not a["success"] for a in assertions) and any(a["success"] for a in assertions)
    assert certs["inputFacets"]["dataQualityMetrics"]["rowCount"] > 0
    ledger = [d["name"] for d in complete["post_ledger"]["outputs"]]
    assert any(name.endswith(".ledger_lines") for name in ledger)
    assert {e["eventType"] for e in events} >= {"START", "COMPLETE"}
    # PIPL: lineage events name files, tables and verdicts, never a person
    ids = set()
    for path in small_drop.glob("*.csv"):
        ids |= set(re.findall(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])", path.read_bytes().decode("utf-8", "ignore")))
    text = events_file.read_text()
    assert ids and not [m for m in re.findall(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])", text) if m in ids]
