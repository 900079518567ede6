"""DAG integrity: the DAG imports cleanly, has its tasks, owner, schedule and guard rails."""

import pytest

from tests.dags.conftest import REPO, run_airflow_script

SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "tasks": sorted(t.task_id for t in dag.tasks),
        "edges": sorted([t.task_id, d] for t in dag.tasks for d in t.downstream_task_ids),
        "owners": sorted({t.owner for t in dag.tasks}),
        "schedule": str(dag.timetable.expression),
        "timezone": str(getattr(dag.timetable.timezone, "name", dag.timetable.timezone)),
        "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
        "retries": sorted({t.retries for t in dag.tasks}), "doc": bool(dag.doc_md),
        "params": sorted(dag.params.keys()), "description": dag.description,
        "mapped": [t.task_id for t in dag.tasks if type(t).__name__ == "MappedOperator"],
        "outlets": {t.task_id: sorted(a.name for a in t.outlets) for t in dag.tasks if t.outlets},
        "callbacks": sorted(type(c).__name__ if not callable(c) or hasattr(c, "notify") else c.__name__
                            for c in (dag.tasks[0].on_failure_callback or [])),
        "as_of": {}}
    for value in ("2022-06-30", None, "2022-13-45", "yesterday", "30/06/2022"):
        p = dag.params.get_param("as_of")
        try:
            p.resolve(value)
            dags[dag_id]["as_of"][str(value)] = "ok"
        except Exception as exc:
            dags[dag_id]["as_of"][str(value)] = type(exc).__name__
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags}))
"""


@pytest.fixture(scope="module")
def bag(airflow_home):
    return run_airflow_script(airflow_home, SCRIPT, str(REPO / "dags"))


def test_dags_import_without_errors(bag):
    assert bag["errors"] == {}
    assert list(bag["dags"]) == ["nightly_subsidy_sync"]


def test_nightly_sync_shape(bag):
    d = bag["dags"]["nightly_subsidy_sync"]
    assert d["tasks"] == ["build_eligibility", "configure", "decide", "decisions_partition", "eligibility_partition",
                          "export", "extract", "pay", "post_ledger", "split_decide", "split_eligibility",
                          "training_budget", "training_partition", "validate"]
    chain = ["configure", "extract", "validate", "split_eligibility", "eligibility_partition", "build_eligibility",
             "split_decide", "training_partition", "training_budget", "decisions_partition", "decide", "post_ledger",
             "pay", "export"]
    # the per-partition steps are mapped over their split's partitions, so any worker can take any partition
    assert sorted(d["mapped"]) == ["decisions_partition", "eligibility_partition", "training_partition"]
    for a, b in zip(chain, chain[1:], strict=False):
        assert [a, b] in d["edges"]
    assert d["owners"] == ["subsidy-ledger"]
    assert d["schedule"] == "0 2 * * *" and d["timezone"] == "Asia/Shanghai"
    assert d["catchup"] is False and d["max_active_runs"] == 1
    assert min(d["retries"]) >= 2 and d["doc"]
    assert {"sources", "out", "as_of", "warehouse"} <= set(d["params"])
    assert d["description"] and "南浔区" in d["description"]


def test_as_of_is_a_validated_date(bag):
    checked = bag["dags"]["nightly_subsidy_sync"]["as_of"]
    assert checked["2022-06-30"] == checked["None"] == "ok"
    assert {checked[v] for v in ("2022-13-45", "yesterday", "30/06/2022")} == {"ParamValidationError"}


def test_extracts_are_assets_and_failures_go_through_notifiers(bag):
    d = bag["dags"]["nightly_subsidy_sync"]
    assert d["outlets"] == {"export": sorted([f"subsidy_ledger_extracts_{x}" for x in (
        "AGRI", "COMMERCE", "DPF", "ECON", "EDU", "EMERG", "HRSS", "VETS")] + ["subsidy_ledger_extracts_summary"])}
    assert "task_failed" in d["callbacks"]
