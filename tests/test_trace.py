"""Tracing payouts back to source rows from the warehouse alone (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from subsidy_ledger.cli import main
from subsidy_ledger.generate import change, generate

from tests.conftest import RELAXED_GATES

# the second night edits 5 % of rows (gates are tested elsewhere); publicity is tested in test_payments
pytestmark = pytest.mark.usefixtures("relaxed_gates", "immediate_payment")


@pytest.fixture(scope="module")
def traced(tmp_path_factory, module_warehouse_url, immediate_policy, suite_env):
    """Two nights (the second on a drop with 5 % of rows changed), with Data Docs; then the drops are deleted.
    The module's tests only read them, so the nights run once per warehouse."""
    root = tmp_path_factory.mktemp("trace")
    generate(1500, 5, root / "n1")
    change(root / "n1", root / "n2", 0.05, 3)
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        for name, value in RELAXED_GATES.items():
            mp.setenv(name, value)
        suite_env(mp, root / "work")
        mp.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
        mp.setenv("SUBSIDY_LEDGER_POLICY_DIR", str(immediate_policy))
        for drop, day in (("n1", "2022-06-30"), ("n2", "2022-07-31")):
            assert main(["run", "--sources", str(root / drop), "--as-of", day, "--warehouse",
                         module_warehouse_url, "--out", str(root / "out")]) == 0
    shutil.rmtree(root / "n1")
    shutil.rmtree(root / "n2")
    for run in ("cli__2022-06-30", "cli__2022-07-31"):  # GX Data Docs of every run, in the output folder
        index = root / "out" / "data_docs" / run / "index.html"
        assert index.is_file() and "certificates" in index.read_text("utf-8")
    return module_warehouse_url


def _lines(url, where):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(sa.text(f"select payout_id, subsidy_type, reference, person_id, uplift_units "
                                 f"from ledger_lines where {where} order by seq")).all()
    engine.dispose()
    return rows


def _trace(capsys, *args) -> tuple[int, str, str]:
    code = main(["trace", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("subsidy_type,roles", [
    ("skill_upgrade", {"certificate", "insurance_episode"}),
    ("apprentice_employee", {"agreement"}),
    ("apprentice_student", {"agreement"}),
    ("living_allowance", {"roster_entry", "training_class", "low_income_record"}),
])
def test_each_subsidy_type_traces_to_its_source_rows(traced, capsys, subsidy_type, roles):
    extra = " and uplift_units > 0" if subsidy_type == "skill_upgrade" else ""
    payout_id, _, reference, _, _ = _lines(traced, f"subsidy_type = '{subsidy_type}' and entry_type = 'payout'"
                                                   f"{extra}")[0]
    code, out, err = _trace(capsys, payout_id, "--json", "--warehouse", traced)
    assert code == 0, err
    t = json.loads(out)
    assert t["payout"]["payout_id"] == payout_id and t["payout"]["reference"] == reference
    assert t["posted_by_run"]["run_id"].startswith("cli__") and t["posted_by_run"]["as_of"]
    d = t["decision"]
    assert d["decision"] == "approved" and d["rule_id"] == t["payout"]["rule_id"]
    assert d["policy_version"] == "nanxun-2019-immediate" and d["parameters"]["base_amount"]  # conftest
    if subsidy_type == "skill_upgrade":
        assert d["parameters"]["uplift_rate"] != "0" and d["parameters"]["cap_place"] in (1, 2, 3)
        assert "affected_enterprise" in {s["role"] for s in t["sources"]}
    assert roles <= {s["role"] for s in t["sources"]}
    for s in t["sources"]:
        assert s["file_name"] == f"{s['registry']}.csv" and len(s["file_sha256"]) == 64
        assert s["row_number"] >= 2 and len(s["row_sha256_prefix"]) == 32 and s["record_key"]
        gx = s["accepted_by_gx"]
        assert gx["success"] in (True, False) and gx["suite"] == s["registry"]
        assert gx["data_docs"].endswith(".html") and Path(gx["data_docs"]).is_file()
    code, text, _ = _trace(capsys, payout_id, "--warehouse", traced)
    assert code == 0 and payout_id in text and f"rests on {len(t['sources'])} source row(s)" in text


def test_a_reversed_claim_shows_its_history_with_reasons(traced, capsys):
    rev = _lines(traced, "entry_type = 'reversal'")
    assert rev, "the second night should reverse something"
    payout_id = rev[0][0]
    code, out, err = _trace(capsys, payout_id, "--json", "--warehouse", traced)
    assert code == 0, err
    t = json.loads(out)
    history = t["history"]
    assert [h["entry_type"] for h in history][:2] == ["payout", "reversal"]
    assert history[1]["reverses_payout_id"] == history[0]["payout_id"] and history[1]["payout_id"] == payout_id
    assert history[1]["why"] and history[1]["posted_on"] == "2022-07-31"
    assert t["payout"]["amount"].startswith("-")


def test_person_lists_every_claim_and_ids_stay_masked(traced, capsys):
    _, _, _, person, _ = _lines(traced, "entry_type = 'payout'")[0]
    code, out, err = _trace(capsys, "--person", person, "--json", "--warehouse", traced)
    assert code == 0, err
    claims = json.loads(out)
    assert claims and all(c["person_id_masked"] == person[:6] + "********" + person[-4:] for c in claims)
    assert person not in out
    code, text, _ = _trace(capsys, "--person", person, "--warehouse", traced)
    assert code == 0 and len(text.strip().splitlines()) == len(claims)


def test_unknown_ids_are_a_clear_error(traced, capsys):
    code, _, err = _trace(capsys, "PO0000", "--warehouse", traced)
    assert code == 2 and err.strip() == "error: no ledger line has payout id PO0000"


def _plan(warehouse_url: str, stmt) -> str:
    """The warehouse's plan for stmt, in one line (PostgreSQL told not to scan, so that it names the index it
    would use on a table of millions of rows instead of the few rows a test holds)."""
    from subsidy_ledger import warehouse

    engine = warehouse.connect(warehouse_url)
    with engine.begin() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    engine.dispose()
    return plan


@pytest.mark.parametrize("registry", ["certificates", "social_insurance", "payee_accounts"])
def test_a_run_s_staged_rows_are_found_by_the_index_not_by_a_scan(warehouse_url, registry):
    """Trace reads the staged facts of a claim's source rows by run and row number: the warehouse's plan for
    that read is a search of the staging table's index, not a scan of the run's rows (millions at a province's
    size)."""
    from subsidy_ledger import warehouse
    from subsidy_ledger.trace import staged_rows

    table = warehouse.STAGING[registry]
    plan = _plan(warehouse_url, sa.select(table).where(staged_rows(table, "cli__2022-06-30", [7, 3, 11])))
    if warehouse_url.startswith("sqlite"):
        assert f"USING INDEX ix_{table.name}_row (run_id=? AND source_row=?)" in plan, plan
    else:
        assert f"ix_{table.name}_row" in plan and "source_row" in plan, plan


def test_a_night_s_lineage_is_found_by_run_not_among_every_night_kept(warehouse_url):
    """The warehouse keeps every night's claim_sources. Trace's read of a claim's rows in one run, and decide's
    delete of its own run's rows before it stores them again, are searches that start with the run: with the
    run last in the index, the delete read the whole table and each night's rows went in among all others."""
    from subsidy_ledger import warehouse
    from subsidy_ledger.trace import sources_of

    t = warehouse.claim_sources
    claim = {"subsidy_type": "skill_upgrade", "reference": "C1", "person_id": "330503199001011234"}
    read = _plan(warehouse_url, sa.select(t).where(sources_of("cli__2022-06-30", claim)))
    delete = _plan(warehouse_url, t.delete().where(t.c.run_id == "cli__2022-06-30"))
    if warehouse_url.startswith("sqlite"):
        assert ("USING INDEX ix_claim_sources_run_claim (run_id=? AND subsidy_type=? AND reference=? AND "
                "person_id=?)") in read, read
        assert delete.startswith("SEARCH") and "INDEX ix_claim_sources_run_claim (run_id=?)" in delete, delete
    else:
        for plan in (read, delete):
            assert "ix_claim_sources_run_claim" in plan and "run_id" in plan, plan
