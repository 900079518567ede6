"""A full run of nightly_subsidy_sync with dag.test() on a generated drop, then a re-run of the same date."""

import csv

import pytest
import sqlalchemy as sa

from tests.dags.conftest import REPO, run_airflow_script

SCRIPT = """
import json, runpy, sys
import pendulum
sources, out, warehouse = sys.argv[1:4]
day = [int(x) for x in (sys.argv[5] if len(sys.argv) > 5 else "2022-06-30").split("-")]
dag = runpy.run_path(sys.argv[4] + "/nightly_subsidy_sync.py")["nightly_subsidy_sync"]()
run = dag.test(logical_date=pendulum.datetime(*day, 2, tz="Asia/Shanghai"),
               run_conf={"sources": sources, "out": out, "warehouse": warehouse})
print(json.dumps({"state": str(run.state), "run_id": run.run_id}))
"""


@pytest.mark.airflow
def test_dag_runs_publicise_then_a_night_with_no_change_posts_once_and_instructs(airflow_home, small_drop,
                                                                                 tmp_path):
    out, wh = tmp_path / "out", f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    args = (str(small_drop), str(out), wh, str(REPO / "dags"))
    first = run_airflow_script(airflow_home, SCRIPT, *args)
    assert first["state"] == "success", first["state"]
    # every task logs one line of what it did
    for line in ("extract (as of 2022-06-30): ", "validate (as of 2022-06-30): rows in ",
                 "eligibility (as of 2022-06-30): ",
                 "decide (as of 2022-06-30): approved ", "post (as of 2022-06-30): 0 ledger lines",
                 "pay (as of 2022-06-30): ", "export (as of 2022-06-30): 0 ledger lines"):
        assert line in first["_log"], line
    root = out / "2022-06-30"  # 02:00 in Nanxun on the logical date
    assert _rows(root / "HRSS" / "publicity.csv") and not _rows(root / "HRSS" / "ledger.csv")  # P1 first
    # the same drop a week later: no registry changed, the publicity ended, so the claims are posted
    second = run_airflow_script(airflow_home, SCRIPT, *args, "2022-07-08")
    assert second["state"] == "success", second["state"]
    root = out / "2022-07-08"
    lines = _rows(root / "HRSS" / "ledger.csv")
    assert lines and all(r["run_id"] == second["run_id"] and r["publicity_end"] == "2022-07-07" for r in lines)
    assert (root / "summary.csv").exists() and (root / "payments_reconciliation.csv").exists()
    bank = out / "payments" / "2022-07-08" / "HRSS.csv"
    assert bank.exists() and oct(bank.stat().st_mode & 0o777) == "0o600"
    engine = sa.create_engine(wh)
    with engine.connect() as c:
        posted = c.execute(sa.text("select count(*) from ledger_lines")).scalar()
        instructed = c.execute(sa.text("select count(*) from payment_instructions")).scalar()
        run = c.execute(sa.text("select dag_id, status, as_of from runs where run_id = :r"),
                        {"r": second["run_id"]}).one()
    assert tuple(run) == ("nightly_subsidy_sync", "succeeded", "2022-07-08") and instructed > 0
    # the export announced each department's extracts as an asset event that names the night's folder
    meta = sa.create_engine(f"sqlite:///{airflow_home / 'airflow.db'}")
    with meta.connect() as c:
        events = c.execute(sa.text("select a.name, e.extra from asset_event e join asset a on a.id = e.asset_id "
                                   "where a.name = 'subsidy_ledger_extracts_HRSS' order by e.id")).all()
    meta.dispose()
    import json

    extras = [json.loads(e[1]) for e in events]
    assert {"as_of": "2022-07-08", "run_id": second["run_id"], "folder": str(root / "HRSS")} in extras
    third = run_airflow_script(airflow_home, SCRIPT, *args, "2022-07-08")  # the same night again
    assert third["state"] == "success" and third["run_id"] != second["run_id"]
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from ledger_lines")).scalar() == posted
        assert c.execute(sa.text("select count(*) from payment_instructions")).scalar() == instructed
        assert c.execute(sa.text("select count(distinct run_id) from ledger_lines")).scalar() == 1
    engine.dispose()


def _rows(path) -> list[dict]:
    with open(path, encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.airflow
def test_a_drop_missing_a_required_file_fails_at_once_and_notifies(airflow_home, small_drop, tmp_path, monkeypatch):
    import shutil

    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    (drop / "certificates.csv").unlink()
    probe = tmp_path / "notified.txt"
    monkeypatch.setenv("SUBSIDY_LEDGER_NOTIFIERS", "tests.dags.probe_notifier:Probe")
    monkeypatch.setenv("SUBSIDY_LEDGER_PROBE_FILE", str(probe))
    out, wh = tmp_path / "out", f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    result = run_airflow_script(airflow_home, SCRIPT, str(drop), str(out), wh, str(REPO / "dags"))
    assert result["state"] == "failed"
    assert probe.read_text("utf-8").split("\n")[:-1] == ["extract 1"]  # no retry: notified on the first try
    engine = sa.create_engine(wh)
    with engine.connect() as c:
        alerts = c.execute(sa.text("select task_id, message from alerts where kind = 'task_failed'")).all()
    engine.dispose()
    assert [(a[0], "(try 1)" in a[1], "certificates.csv" in a[1]) for a in alerts] == [("extract", True, True)]
    assert "AirflowFailException" in alerts[0][1]


@pytest.mark.airflow
def test_quality_gate_fails_before_posting_and_the_failure_is_alerted(airflow_home, small_drop, tmp_path):
    out, wh = tmp_path / "out", f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    script = SCRIPT.replace('"warehouse": warehouse}', '"warehouse": warehouse, "max_quarantine_share": 0.001}')
    assert script != SCRIPT
    result = run_airflow_script(airflow_home, script, str(small_drop), str(out), wh, str(REPO / "dags"))
    assert result["state"] == "failed"
    engine = sa.create_engine(wh)
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from ledger_lines")).scalar() == 0
        alerts = c.execute(sa.text("select kind, task_id, message from alerts order by alert_id")).all()
        status = tuple(c.execute(sa.text("select status, stage from runs where run_id = :r"),
                                 {"r": result["run_id"]}).one())
    engine.dispose()
    kinds = [(a[0], a[1]) for a in alerts]
    assert ("quality_gate", "validate") in kinds and ("task_failed", "validate") in kinds
    assert status == ("stopped", "validate")  # the task failed because the gate stopped it: still "stopped"
    assert any("data-quality gate" in a[2] and "nothing was posted" in a[2] for a in alerts)
    assert not (out / "2022-06-30").exists()


@pytest.mark.airflow
def test_a_damaged_night_fails_without_retry_until_accept_drop_change(airflow_home, small_drop, tmp_path):
    import shutil

    from subsidy_ledger.cli import main

    out, wh = tmp_path / "out", f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    assert main(["run", "--sources", str(small_drop), "--as-of", "2022-06-29", "--warehouse", wh,
                 "--out", str(out)]) == 0
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    (drop / "city_payouts.csv").unlink()
    (drop / "city_payouts.csv").mkdir()  # an export that left a folder where the file should be
    args = (str(drop), str(out), wh, str(REPO / "dags"))
    stopped = run_airflow_script(airflow_home, SCRIPT, *args)
    assert stopped["state"] == "failed"
    accepting = SCRIPT.replace('"warehouse": warehouse}', '"warehouse": warehouse, '
                                                          '"accept_drop_change": ["city_payouts"]}')
    passed = run_airflow_script(airflow_home, accepting, *args)
    assert passed["state"] == "success", passed
    engine = sa.create_engine(wh)
    with engine.connect() as c:
        failed = c.execute(sa.text("select task_id, message from alerts where run_id = :r and kind = 'task_failed'"),
                           {"r": stopped["run_id"]}).all()
        who = c.execute(sa.text("select subject, accepted_by from gate_acceptances where run_id = :r"),
                        {"r": passed["run_id"]}).all()
    engine.dispose()
    # failed at its first try: a drop gate finding does not go away on retry
    assert [(f[0], "(try 1)" in f[1]) for f in failed] == [("validate", True)], failed
    assert [tuple(w) for w in who] == [("city_payouts", "dag_test")]


@pytest.mark.airflow
def test_no_password_reaches_xcom_or_a_task_log(airflow_home, small_drop, tmp_path, warehouse_url):
    """The warehouse connection carries a password (PostgreSQL's trust auth ignores it): tasks resolve the
    connection themselves, so neither XCom nor any task log may hold it."""
    import json as _json
    import os

    import sqlalchemy as _sa

    if not warehouse_url.startswith("postgresql"):
        pytest.skip("the password travels with the PostgreSQL warehouse")
    secret = "s3cret-Wh-pw-7f1c"
    with_password = _sa.engine.make_url(warehouse_url).set(password=secret).render_as_string(hide_password=False)
    out = tmp_path / "out"
    script = SCRIPT.replace(', "warehouse": warehouse}', "}")
    assert script != SCRIPT
    conn = _json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": with_password}})
    os.environ["AIRFLOW_CONN_SUBSIDY_WAREHOUSE"] = conn
    try:
        result = run_airflow_script(airflow_home, script, str(small_drop), str(out), "", str(REPO / "dags"))
    finally:
        del os.environ["AIRFLOW_CONN_SUBSIDY_WAREHOUSE"]
    assert result["state"] == "success", result
    meta = sa.create_engine(f"sqlite:///{airflow_home / 'airflow.db'}")
    with meta.connect() as c:
        values = [str(v[0]) for v in c.execute(sa.text("select value from xcom where run_id = :r"),
                                               {"r": result["run_id"]})]
    meta.dispose()
    assert values and not [v for v in values if secret in v]
    logs = [p for p in airflow_home.rglob("*") if p.is_file() and p.suffix in (".log", ".json", "")]
    assert not [p for p in logs if secret.encode() in p.read_bytes()]
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as c:  # the run did reach the warehouse through the connection (and publicised)
        assert c.execute(sa.text("select count(*) from publicity")).scalar() > 0
    engine.dispose()
