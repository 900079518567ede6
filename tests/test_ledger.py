"""Ledger postings on SQLite and PostgreSQL: differences only, reversals, append-only (POLICY.md Ledger)."""

import datetime as dt
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from subsidy_ledger import ledger, warehouse
from subsidy_ledger.decide import DECISION_COLUMNS

TYPES = ["skill_upgrade", "special_ability"]
D1, D2, D3 = dt.date(2022, 1, 31), dt.date(2022, 2, 28), dt.date(2022, 3, 31)


def decisions(*claims):
    """claims: (reference, person, amount_fen, department) approved; amount 0 means rejected."""
    rows = []
    for ref, person, fen, dept in claims:
        rows.append({"subsidy_type": "skill_upgrade", "reference": ref, "person_id": person, "name": "某",
                     "decision": "approved" if fen else "rejected", "reason_code": None if fen else "x",
                     "amount_fen": fen, "base_amount_fen": fen, "uplift_units": 0, "cap_place": 1,
                     "rule_id": "R1", "policy_version": "nanxun-2019", "department_code": dept,
                     "fund": "skills_upgrade_account", "occupation_code": "6-18-01-01", "level": 4,
                     "event_date": pd.Timestamp("2021-01-01")})
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


@pytest.fixture
def engine(warehouse_url):
    eng = warehouse.connect(warehouse_url)
    yield eng
    eng.dispose()


def post(engine, d, day, run="r"):
    with engine.begin() as conn:
        return ledger.post(conn, d, TYPES, day, f"{run}-{day}")


def all_lines(engine):
    with engine.connect() as conn:
        return warehouse.read_frame(conn, warehouse.ledger_lines).sort_values("seq").reset_index(drop=True)


def test_first_run_pays_and_rerun_posts_nothing(engine):
    d = decisions(("C1", "P1", 150000, "HRSS"), ("C2", "P2", 0, "HRSS"))
    first = post(engine, d, D1)
    assert first["entry_type"].tolist() == ["payout"] and first["amount_fen"].tolist() == [150000]
    assert post(engine, d, D1).empty and post(engine, d, D2).empty
    assert len(all_lines(engine)) == 1


def test_changed_amount_reverses_then_pays_again(engine):
    post(engine, decisions(("C1", "P1", 150000, "HRSS")), D1)
    lines = post(engine, decisions(("C1", "P1", 172500, "HRSS")), D2)
    assert lines["entry_type"].tolist() == ["reversal", "payout"]
    assert lines["amount_fen"].tolist() == [-150000, 172500]
    history = all_lines(engine)
    assert lines.loc[0, "reverses_payout_id"] == history.loc[0, "payout_id"]
    assert history["amount_fen"].sum() == 172500


def test_claim_no_longer_payable_is_reversed_and_can_come_back(engine):
    post(engine, decisions(("C1", "P1", 150000, "HRSS")), D1)
    rev = post(engine, decisions(("C1", "P1", 0, "HRSS")), D2)
    assert rev["entry_type"].tolist() == ["reversal"] and rev["amount_fen"].tolist() == [-150000]
    back = post(engine, decisions(("C1", "P1", 150000, "HRSS")), D3)
    assert back["entry_type"].tolist() == ["payout"]
    ids = all_lines(engine)["payout_id"]
    assert ids.is_unique and len(ids) == 3


def test_department_change_moves_the_line(engine):
    post(engine, decisions(("C1", "P1", 150000, "HRSS")), D1)
    lines = post(engine, decisions(("C1", "P1", 150000, "AGRI")), D2)
    assert lines[["entry_type", "department_code"]].values.tolist() == [["reversal", "HRSS"], ["payout", "AGRI"]]


def test_payout_ids_are_deterministic(warehouse_url, tmp_path):
    d = decisions(("C1", "P1", 150000, "HRSS"), ("C2", "P2", 100000, "EDU"))
    e1 = warehouse.connect(warehouse_url)
    ids1 = post(e1, d, D1)["payout_id"].tolist()
    e1.dispose()
    e2 = warehouse.connect(f"sqlite:///{tmp_path / 'other.sqlite'}")
    ids2 = post(e2, d, D1)["payout_id"].tolist()
    e2.dispose()
    assert ids1 == ids2


@pytest.mark.parametrize("statement", ["UPDATE ledger_lines SET amount_fen = 1", "DELETE FROM ledger_lines"])
def test_database_refuses_updates_and_deletes(engine, statement):
    post(engine, decisions(("C1", "P1", 150000, "HRSS")), D1)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert all_lines(engine)["amount_fen"].tolist() == [150000]


def test_invariant_violation_rolls_back_everything(engine, monkeypatch):
    real = ledger.plan_postings

    def short(*a, **k):  # simulate a planning bug that forgets a claim
        return real(*a, **k).iloc[:1]

    monkeypatch.setattr(ledger, "plan_postings", short)
    with pytest.raises(ledger.LedgerInvariantError):
        post(engine, decisions(("C1", "P1", 150000, "HRSS"), ("C2", "P2", 100000, "HRSS")), D1)
    assert all_lines(engine).empty


def test_bulk_load_keeps_awkward_text_and_nulls(engine):
    from subsidy_ledger.warehouse import STAGING, insert_frame, read_frame

    t = STAGING["veterans"]
    names = ["tab\\there", "new\nline", "back\\\\slash \\N", None, "=HYPERLINK(\"x\")", "普通"]
    frame = pd.DataFrame({"run_id": "r", "source_row": range(2, 8), "record_id": [f"V{i}" for i in range(6)],
                          "name": names, "discharged_on": pd.to_datetime(["2020-01-01"] * 5 + [None])})
    with engine.begin() as conn:
        insert_frame(conn, t, frame)
    with engine.connect() as conn:
        back = read_frame(conn, t).sort_values("source_row")
    assert [None if pd.isna(v) else v for v in back["name"]] == names
    assert back["discharged_on"].isna().tolist() == [False] * 5 + [True]


def test_a_second_poster_waits_for_the_lock_and_gives_up_with_a_clear_error(engine):
    import threading

    outcome = {}
    holder = engine.connect()
    tx = holder.begin()
    ledger.acquire_lock(holder, "first")

    def second(timeout):
        try:
            with engine.begin() as conn:
                ledger.acquire_lock(conn, "second", timeout_s=timeout)
                outcome["got"] = True
        except ledger.LedgerBusyError as exc:
            outcome["busy"] = str(exc)

    t = threading.Thread(target=second, args=(1.0,))
    t.start()
    t.join(30)
    assert "another run is posting" in outcome.get("busy", "") and "got" not in outcome
    t = threading.Thread(target=second, args=(30.0,))
    t.start()
    time.sleep(0.5)
    assert "got" not in outcome  # still queued behind the first poster
    tx.commit()
    holder.close()
    t.join(30)
    assert outcome.get("got") is True


def test_schema_from_migrations_matches_the_model(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), warehouse.metadata)
    assert diff == []
