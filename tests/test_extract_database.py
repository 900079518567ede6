"""Registries read from a registry database (tables with the drop's columns), chunk by chunk."""

from __future__ import annotations

import io
import uuid

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from subsidy_ledger import workstore
from subsidy_ledger.cli import main
from subsidy_ledger.extract import DropError, database_to_parquet, read_registry
from subsidy_ledger.registries import REGISTRIES

from tests.conftest import PG_ADMIN_URL

# ledger semantics, not publicity (tests/test_payments.py): claims are paid the night approved
pytestmark = pytest.mark.usefixtures("immediate_payment")
SEAL = workstore.Seal(bytes(range(32)))


def fill(url: str, drop) -> None:
    """Load a generated drop into a registry database: one text table per registry, values as in the files."""
    engine = sa.create_engine(url)
    for name, reg in REGISTRIES.items():
        path = drop / reg.filename
        if path.is_file():
            frame = read_registry(path, reg).frame[list(reg.columns)]
            frame.to_sql(name, engine, index=False, dtype={c: sa.Text() for c in reg.columns})
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_db(request, small_drop, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registries.sqlite'}"
        fill(url, small_drop)
        yield url
        return
    name = f"sl_reg_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        fill(url, small_drop)
        yield url
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _rows(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        out = [tuple(r) for r in c.execute(sa.text(sql)).all()]
    engine.dispose()
    return out


def test_a_run_from_the_database_posts_the_same_ledger_as_from_the_files(registry_db, small_drop, tmp_path):
    results = {}
    for kind, sources in (("db", registry_db), ("files", str(small_drop))):
        wh = f"sqlite:///{tmp_path / f'{kind}.sqlite'}"
        assert main(["run", "--sources", sources, "--as-of", "2022-06-30", "--warehouse", wh,
                     "--out", str(tmp_path / kind)]) == 0
        results[kind] = wh
    ledger = ("select payout_id, entry_type, subsidy_type, reference, person_id, department_code, amount_fen, "
              "rule_id, policy_version from ledger_lines order by seq")
    assert _rows(results["db"], ledger) == _rows(results["files"], ledger) != []
    rec = "select registry, rows_in, accepted, quarantined from reconciliation order by registry"
    assert _rows(results["db"], rec) == _rows(results["files"], rec)
    assert "password" not in str(_rows(results["db"], "select sources from runs"))


def test_tables_are_read_in_chunks_into_parquet(registry_db, tmp_path):
    manifest = database_to_parquet(registry_db, tmp_path, SEAL, chunk_rows=200)
    counts = dict(_rows(registry_db, "select 'certificates', count(*) from certificates"))
    assert manifest["certificates"]["rows"] == counts["certificates"] > 400
    with open(manifest["certificates"]["path"], "rb") as f:
        assert f.read(4) == workstore.MAGIC  # sealed: the rows are readable with the run's key only
        f.seek(0)
        assert pq.ParquetFile(io.BytesIO(SEAL.unseal(f, "certificates"))).num_row_groups >= 3  # one per chunk
    assert manifest["certificates"]["encoding"] == "database" and len(manifest["certificates"]["sha256"]) == 64


def test_missing_tables_and_columns_are_clear_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("create table social_insurance (record_id text)"))
    engine.dispose()
    with pytest.raises(DropError, match="table social_insurance: missing required column"):
        database_to_parquet(url, tmp_path, SEAL)
    with pytest.raises(DropError, match="required registry table or view is missing"):
        database_to_parquet(f"sqlite:///{tmp_path / 'empty.sqlite'}", tmp_path, SEAL)
