"""A full run of nightly_subsidy_sync with dag.test() on a generated drop, then a re-run of the same date."""

import csv

import pytest
import sqlalchemy as sa

from tests.dags.conftest import REPO, run_airflow_script

SCRIPT = """
import json, runpy, sys
import pendulum
sources, out, warehouse = sys.argv[1:4]
dag = runpy.run_path(sys.argv[4] + "/nightly_subsidy_sync.py")["nightly_subsidy_sync"]()
run = dag.test(logical_date=pendulum.datetime(2022, 6, 30, 2, tz="Asia/Shanghai"),
               run_conf={"sources": sources, "out": out, "warehouse": warehouse})
print(json.dumps({"state": str(run.state), "run_id": run.run_id}))
"""


@pytest.mark.airflow
def test_dag_run_posts_once_and_writes_extracts(airflow_home, small_drop, tmp_path):
    out, wh = tmp_path / "out", f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    args = (str(small_drop), str(out), wh, str(REPO / "dags"))
    first = run_airflow_script(airflow_home, SCRIPT, *args)
    assert first["state"] == "success", first
    root = out / "2022-06-30"  # 02:00 in Nanxun on the logical date
    with open(root / "HRSS" / "ledger.csv", encoding="utf-8-sig") as fh:
        lines = list(csv.DictReader(fh))
    assert lines and all(r["run_id"] == first["run_id"] for r in lines)
    assert (root / "summary.csv").exists() and (root / "reconciliation.csv").exists()
    engine = sa.create_engine(wh)
    with engine.connect() as c:
        posted = c.execute(sa.text("select count(*) from ledger_lines")).scalar()
        run = c.execute(sa.text("select dag_id, status, as_of from runs where run_id = :r"),
                        {"r": first["run_id"]}).one()
    assert tuple(run) == ("nightly_subsidy_sync", "succeeded", "2022-06-30")
    second = run_airflow_script(airflow_home, SCRIPT, *args)
    assert second["state"] == "success" and second["run_id"] != first["run_id"]
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from ledger_lines")).scalar() == posted
        assert c.execute(sa.text("select count(distinct run_id) from ledger_lines")).scalar() == 1
    engine.dispose()
