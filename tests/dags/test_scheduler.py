"""A real Airflow: api-server, scheduler and dag-processor (LocalExecutor) on PostgreSQL; the DAG is
triggered through the REST API for a logical date, twice."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL
from tests.dags.conftest import airflow_env

DAG = "nightly_subsidy_sync"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str):
        self.base, self.token = base, None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


@pytest.fixture
def airflow_stack(tmp_path):
    """Fresh metadata database on the local PostgreSQL, then the three Airflow services."""
    db = f"sl_airflow_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{db}"'))
    home, port = tmp_path / "home", _port()
    home.mkdir()
    (home / "passwords.json").write_text(json.dumps({"operator": "operator-pw"}))
    env = airflow_env(home) | {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "operator:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "scheduler-test-secret-0123456789abcdef",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "SUBSIDY_LEDGER_SCHEDULE": "none",
    }
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    procs, logs = [], []
    try:
        for name, args in (("api-server", ["api-server", "--port", str(port), "--host", "127.0.0.1"]),
                           ("scheduler", ["scheduler"]), ("dag-processor", ["dag-processor"])):
            log = (tmp_path / f"{name}.log").open("w")  # noqa: SIM115  (closed below)
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, "-m", "airflow", *args], env=env, stdout=log,
                                          stderr=subprocess.STDOUT))
        api = Api(f"http://127.0.0.1:{port}")
        for _ in range(120):
            try:
                if api.call("GET", "/api/v2/monitor/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        status, body = api.call("POST", "/auth/token", {"username": "operator", "password": "operator-pw"})
        assert status in (200, 201), body
        api.token = body["access_token"]
        yield api, tmp_path
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def _wait(api: Api, run_id: str, tmp_path) -> str:
    for _ in range(360):
        status, run = api.call("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
        if status == 200 and run["state"] in ("success", "failed"):
            return run["state"]
        time.sleep(1)
    logs = "\n".join((tmp_path / f"{n}.log").read_text()[-2000:] for n in ("scheduler", "dag-processor"))
    raise AssertionError(f"run {run_id} did not finish:\n{logs}")


@pytest.mark.airflow
def test_triggered_through_the_rest_api_runs_publicises_then_a_later_trigger_posts(airflow_stack, small_drop):
    api, tmp_path = airflow_stack
    for _ in range(120):  # the dag-processor parses the DAG file
        if api.call("GET", f"/api/v2/dags/{DAG}")[0] == 200:
            break
        time.sleep(1)
    assert api.call("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})[0] == 200
    out, wh = tmp_path / "out", f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    conf = {"sources": str(small_drop), "out": str(out), "warehouse": wh}
    logical = "2022-06-29T18:00:00Z"  # 02:00 on 2022-06-30 in Nanxun
    status, run = api.call("POST", f"/api/v2/dags/{DAG}/dagRuns",
                           {"dag_run_id": "api_first", "logical_date": logical, "conf": conf})
    assert status in (200, 201), run
    assert _wait(api, "api_first", tmp_path) == "success"
    with open(out / "2022-06-30" / "HRSS" / "publicity.csv", encoding="utf-8-sig") as fh:
        assert list(csv.DictReader(fh))  # approved tonight: on the publicity list, not yet in the ledger
    engine = sa.create_engine(wh)
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from ledger_lines")).scalar() == 0
    # a run without a logical date and as_of set: the first night after the publicity posts the claims
    status, run = api.call("POST", f"/api/v2/dags/{DAG}/dagRuns",
                           {"dag_run_id": "api_second", "logical_date": None, "conf": conf | {"as_of": "2022-07-08"}})
    assert status in (200, 201), run
    assert _wait(api, "api_second", tmp_path) == "success"
    with open(out / "2022-07-08" / "HRSS" / "ledger.csv", encoding="utf-8-sig") as fh:
        lines = list(csv.DictReader(fh))
    assert lines and {r["run_id"] for r in lines} == {"api_second"}
    with engine.connect() as c:
        second = c.execute(sa.text("select status, as_of from runs where run_id = 'api_second'")).one()
        assert second[0] == "succeeded" and str(second[1])[:10] == "2022-07-08"
    engine.dispose()
