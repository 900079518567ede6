"""Shared fixtures: generated drops, and warehouses on both SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from subsidy_ledger.generate import generate

S3_BUCKET = "subsidy-work"
PG_ADMIN_URL = os.environ.get("SUBSIDY_LEDGER_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        with sa.create_engine(PG_ADMIN_URL).connect():
            return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(autouse=True)
def _no_data_docs(monkeypatch, tmp_path):
    """Data Docs cost seconds per run; the tests that check them turn them back on. Each test's runs keep
    their scratch files in its own folder, so that no two tests share a run's work folder. The CLI's nights run
    their stages in this process, so that GX's verdicts are memoised across tests (below); the tests of
    stage processes (test_stage_process.py, test_cli.py) turn them back on."""
    _suite_env(monkeypatch, tmp_path / "work")


def _suite_env(mp: pytest.MonkeyPatch, work: Path) -> None:
    mp.setenv("SUBSIDY_LEDGER_DATA_DOCS", "0")
    mp.setenv("SUBSIDY_LEDGER_STAGE_PROCESSES", "0")
    mp.setenv("SUBSIDY_LEDGER_WORK", str(work))


@pytest.fixture(scope="session")
def suite_env():
    """suite_env(mp, work): what _no_data_docs sets for each test, for a module's fixture (set up before any
    test's own environment): its nights then run in this process, their GX verdicts memoised, without Data Docs
    (a fixture that wants them sets them again after)."""
    return _suite_env


@pytest.fixture(scope="session", autouse=True)
def _gx_verdicts_once():
    """GX's fixed cost (about 3-7 s a night, whatever the size) paid once per distinct input: a registry whose
    rows and suite a test run already validated, on a night whose date the suite reads the same way
    (_night_seen_by), gets the same (deterministic) result object again.
    Runs that build Data Docs always run GX, and every distinct input still goes through it (nights in
    subprocesses, the CLI's and Airflow's, are not memoised at all)."""
    validate = sys.modules.get("subsidy_ledger.validate")  # collection imported it, or no test needs GX
    if validate is None:
        yield
        return
    real, verdicts = validate._run_suite, {}

    def memo(ctx, frame, reg, suite, as_of, run_name):
        if validate.DOCS_SITE in (ctx.variables.data_docs_sites or {}):
            return real(ctx, frame, reg, suite, as_of, run_name)
        checked = frame[[*reg.columns, validate.ROW_COL]]
        doc = suite.to_json_dict()
        rules = json.dumps(doc, sort_keys=True, default=str)
        day = _night_seen_by(doc, checked, as_of)
        digest = hashlib.sha256(json.dumps([reg.name, day, rules, [str(t) for t in checked.dtypes]]).encode())
        digest.update(pd.util.hash_pandas_object(checked, index=False).to_numpy().tobytes())
        key = digest.hexdigest()
        if key not in verdicts:
            verdicts[key] = real(ctx, frame, reg, suite, as_of, run_name)
        return verdicts[key]

    memo.__wrapped__ = real  # for a test of what GX itself leaves behind
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(validate, "_run_suite", memo)
        yield


@pytest.fixture(scope="session", autouse=True)
def _charts_ready():
    """matplotlib imported and the Chinese font found once, here: each night draws A1's charts in a process
    forked from this one (pipeline.make_assessment, beside the extracts), which then inherits both instead of
    paying about 0.3 s of CPU for them in each of the suite's hundreds of nights. The charts are still drawn
    every night."""
    report = sys.modules.get("subsidy_ledger.assessment_report")  # collection imported it, or no test draws
    if report is not None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot  # noqa: F401

        report._cjk_font()
    yield


# the one expectation that reads the night's date ($PARAMETER as_of): a birth date in an identity number must
# not be after it (gx_expectations.ColumnValuesValidCnResidentId)
_DATED_TYPE = "expect_column_values_to_be_valid_cn_resident_id"
_DATED_KWARGS = {"latest_birth_date": {"$PARAMETER": "as_of"}}


def _night_seen_by(suite: dict, checked: pd.DataFrame, as_of) -> object:
    """What of the night's date a suite's verdict on `checked` depends on: nothing for a suite that never names
    it (or no rows); for one whose only dated expectations are that one, per column, how many of the rows'
    distinct birth-date texts (YYYYMMDD) are on or before it: two nights with no birth date between them get the
    same verdict (a valid date compares as its text does, an invalid one fails either night); else the date.
    tests/test_validate.py checks that nights either side of a birth date differ."""
    dated = [e for e in suite["expectations"] if "$PARAMETER" in json.dumps(e)]
    if not dated or not len(checked):
        return None
    if any(e["type"] != _DATED_TYPE or {k: v for k, v in e["kwargs"].items() if k != "column"} != _DATED_KWARGS
           for e in dated):
        return as_of.isoformat()
    day = as_of.strftime("%Y%m%d")
    births = (checked[e["kwargs"]["column"]].astype("string").str.slice(6, 14).dropna().unique() for e in dated)
    return [int((b <= day).sum()) for b in births]


@pytest.fixture(scope="session")
def small_drop(tmp_path_factory) -> Path:
    """A generated drop of 1,500 persons (seed 5), shared read-only by the tests."""
    path = tmp_path_factory.mktemp("drop") / "small"
    generate(1500, 5, path)
    return path


@contextlib.contextmanager
def _new_warehouse(kind: str, folder: Path):
    """A fresh, empty warehouse: an SQLite file in folder, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'warehouse.sqlite'}"
        return
    if not _pg_available():
        # PostgreSQL is the production warehouse: its absence fails the run unless explicitly waived
        if os.environ.get("SUBSIDY_LEDGER_SKIP_PG") == "1":
            pytest.skip("PostgreSQL not reachable (SUBSIDY_LEDGER_SKIP_PG=1)")
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; run scripts/ensure_postgres.sh")
    name = f"sl_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path) -> str:
    """A fresh, empty warehouse for one test: an SQLite file, or a new PostgreSQL database dropped afterwards."""
    with _new_warehouse(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_warehouse_url(request, tmp_path_factory) -> str:
    """A warehouse shared by a module's tests that only read what its module-scoped nights posted."""
    with _new_warehouse(request.param, tmp_path_factory.mktemp("warehouse")) as url:
        yield url


RELAXED_GATES = {"SUBSIDY_LEDGER_MAX_QUARANTINE_SHARE": "1", "SUBSIDY_LEDGER_MAX_ROW_LOSS_SHARE": "1",
                 "SUBSIDY_LEDGER_MAX_REVERSAL_SHARE": "1", "SUBSIDY_LEDGER_MAX_REVERSAL_AMOUNT": "1000000000000"}


@pytest.fixture
def relaxed_gates(monkeypatch):
    """For tests of ledger semantics over edited drops: the quality, drop and reversal gates let every night through
    (tests/test_gate.py is where the gates themselves are tested)."""
    for name, value in RELAXED_GATES.items():
        monkeypatch.setenv(name, value)


IMMEDIATE = """\
# Tests of ledger semantics that are not about publicity: an amendment of nanxun-2019 from its first day
# with no publicity period (P1 with 0 working days: payable the night approved). tests/test_payments.py
# tests the publicity itself, with the packaged 5 working days.
version: nanxun-2019-immediate
amends: nanxun-2019
effective_from: 2019-01-01
effective_to: 2021-12-31
parameters:
  publicity_working_days: 0
"""


@pytest.fixture(scope="session")
def immediate_policy(tmp_path_factory) -> Path:
    """A policy folder in which approved claims are paid the night they are approved (no publicity period)."""
    folder = tmp_path_factory.mktemp("policy-immediate")
    (folder / "immediate.yaml").write_text(IMMEDIATE, "utf-8")
    return folder


@pytest.fixture
def immediate_payment(immediate_policy, monkeypatch) -> str:
    """Point $SUBSIDY_LEDGER_POLICY_DIR at the immediate-payment policy for the test; returns the version's name.
    (Module-scoped fixtures that run nights set it themselves with pytest.MonkeyPatch.context().)"""
    monkeypatch.setenv("SUBSIDY_LEDGER_POLICY_DIR", str(immediate_policy))
    return "nanxun-2019-immediate"


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on a free local port, with a versioned bucket (deleted objects stay listable as
    versions, so the test can see what was written) and an Airflow connection to it."""
    import boto3
    from moto.server import ThreadedMotoServer
    from subsidy_ledger import pipeline

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=S3_BUCKET)
    client.put_bucket_versioning(Bucket=S3_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("AIRFLOW_CONN_SUBSIDY_WORK", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}))
    monkeypatch.setenv(pipeline.WORK_ENV, f"s3://{S3_BUCKET}/work")
    monkeypatch.setenv(pipeline.WORK_CONN_ENV, "subsidy_work")
    yield client
    server.stop()
