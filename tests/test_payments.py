"""From decision to payment end to end (P1-P3), on SQLite and PostgreSQL: publicity over the PRC calendar,
objections, payee accounts, bank results, recoveries, and the reconciliation after every night."""

from __future__ import annotations

import csv
import os
import stat
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from subsidy_ledger import payments, pipeline, warehouse
from subsidy_ledger.workdays import CalendarError, add_working_days

from tests.scenario import PEOPLE, account, certificate, insured, write_drop

pytestmark = pytest.mark.usefixtures("relaxed_gates")  # one claim reversed is 100 % of the payouts
P0, P1 = PEOPLE[0], PEOPLE[1]
ACCOUNT_A, ACCOUNT_B = "6222020012345678901", "6228480098765432"


def _night(tmp_path: Path, url: str, as_of: str, **registries) -> dict:
    """Write the drop of a night and run it; returns the pipeline's stage results."""
    base = {"social_insurance": [insured(P0), insured(P1)],
            "certificates": [certificate("C1", P0, "2020-06-01"), certificate("C2", P1, "2020-06-02", level="3")],
            "objections": [], "payee_accounts": [], "payment_results": []}
    drop = write_drop(tmp_path / "drops" / as_of, **{**base, **registries})
    cfg = pipeline.RunConfig(sources=str(drop), as_of=as_of, warehouse=url, out=str(tmp_path / "out"),
                             run_id=f"t__{as_of}")
    return pipeline.run(cfg)


def _csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _table(url: str, table: sa.Table) -> pd.DataFrame:
    engine = warehouse.connect(url)
    with engine.connect() as c:
        frame = warehouse.read_frame(c, table)
    engine.dispose()
    return frame


def _lines(url: str) -> pd.DataFrame:
    return _table(url, warehouse.ledger_lines).sort_values("seq").reset_index(drop=True)


def _recon(tmp_path: Path, as_of: str) -> list[dict]:
    return _csv(tmp_path / "out" / as_of / "payments_reconciliation.csv")


def test_working_days_follow_the_2020_national_day_holiday_and_its_adjusted_saturday():
    # 1-8 October 2020 were holidays; Sunday 27 September and Saturday 10 October were working days (调休)
    assert add_working_days(pd.Timestamp("2020-09-28").date(), 5).isoformat() == "2020-10-12"
    assert add_working_days(pd.Timestamp("2020-09-25").date(), 1).isoformat() == "2020-09-27"
    assert add_working_days(pd.Timestamp("2020-09-28").date(), 0).isoformat() == "2020-09-28"
    with pytest.raises(CalendarError, match="no data for 2027"):  # never a guessed holiday
        add_working_days(pd.Timestamp("2026-12-28").date(), 5)


def test_a_claim_is_publicised_first_and_posted_the_night_after_five_working_days(tmp_path, warehouse_url):
    _night(tmp_path, warehouse_url, "2020-09-28")
    listed = _csv(tmp_path / "out" / "2020-09-28" / "HRSS" / "publicity.csv")
    assert {(r["reference"], r["amount"], r["publicity_start"], r["publicity_end"]) for r in listed} == {
        ("C1", "1500.00", "2020-09-28", "2020-10-12"), ("C2", "2000.00", "2020-09-28", "2020-10-12")}
    assert listed[0]["name_masked"] == "持**" and "*" * 8 in listed[0]["person_id_masked"]
    assert (tmp_path / "out" / "2020-09-28" / "HRSS" / "publicity.xlsx").is_file()
    assert _lines(warehouse_url).empty  # approved, but nothing is paid before publicity
    _night(tmp_path, warehouse_url, "2020-10-12")  # the last day of publicity (10 October counted)
    assert _lines(warehouse_url).empty
    assert _csv(tmp_path / "out" / "2020-10-12" / "HRSS" / "publicity.csv") == []  # nobody enters again
    _night(tmp_path, warehouse_url, "2020-10-13")
    lines = _lines(warehouse_url)
    assert sorted(lines["reference"]) == ["C1", "C2"] and set(lines["posted_on"].astype(str)) == {"2020-10-13"}
    assert set(lines["publicity_end"].astype(str)) == {"2020-10-12"} and set(lines["payee_type"]) == {"person"}
    ledger_csv = _csv(tmp_path / "out" / "2020-10-13" / "HRSS" / "ledger.csv")
    assert {r["publicity_end"] for r in ledger_csv} == {"2020-10-12"}
    _night(tmp_path, warehouse_url, "2020-10-13")  # a rerun posts nothing and instructs nothing twice
    assert len(_lines(warehouse_url)) == 2


def test_a_changed_amount_is_publicised_again_and_the_old_payout_stands_meanwhile(tmp_path, warehouse_url):
    _night(tmp_path, warehouse_url, "2021-03-01")
    _night(tmp_path, warehouse_url, "2021-03-09")
    assert _lines(warehouse_url)["amount_fen"].sum() == 350000
    regraded = {"certificates": [certificate("C1", P0, "2020-06-01", level="3"),
                                 certificate("C2", P1, "2020-06-02", level="3")]}
    _night(tmp_path, warehouse_url, "2021-03-10", **regraded)
    listed = _csv(tmp_path / "out" / "2021-03-10" / "HRSS" / "publicity.csv")
    assert [(r["reference"], r["amount"]) for r in listed] == [("C1", "2000.00")]
    assert len(_lines(warehouse_url)) == 2  # C1's 1,500.00 payout stands while 2,000.00 is publicised
    _night(tmp_path, warehouse_url, "2021-03-18", **regraded)
    lines = _lines(warehouse_url)
    c1 = lines.loc[lines["reference"] == "C1"]
    assert c1["entry_type"].tolist() == ["payout", "reversal", "payout"] and c1["amount_fen"].sum() == 200000


def test_an_open_objection_holds_the_claim_and_an_upheld_one_means_it_never_posts(tmp_path, warehouse_url):
    _night(tmp_path, warehouse_url, "2020-09-28")
    lodged = {"objection_id": "YY1", "subsidy_type": "skill_upgrade", "reference": "C1", "person_id": P0,
              "lodged_on": "2020-09-30"}
    dismissed = {"objection_id": "YY2", "subsidy_type": "skill_upgrade", "reference": "C2", "person_id": P1,
                 "lodged_on": "2020-09-29", "resolved_on": "2020-10-09", "outcome": "dismissed"}
    _night(tmp_path, warehouse_url, "2020-10-13", objections=[lodged, dismissed])
    d = {r["reference"]: r for r in _csv(tmp_path / "out" / "2020-10-13" / "HRSS" / "decisions.csv")}
    assert (d["C1"]["decision"], d["C1"]["reason_code"]) == ("held", "objection_open")
    assert d["C2"]["decision"] == "approved"
    assert _lines(warehouse_url)["reference"].tolist() == ["C2"]  # dismissed: it goes on
    upheld = {**lodged, "resolved_on": "2020-10-14", "outcome": "upheld"}
    for night in ("2020-10-15", "2020-10-26"):
        _night(tmp_path, warehouse_url, night, objections=[upheld, dismissed])
        d = {r["reference"]: r for r in _csv(tmp_path / "out" / night / "HRSS" / "decisions.csv")}
        assert (d["C1"]["decision"], d["C1"]["reason_code"]) == ("rejected", "objection_upheld")
    assert _lines(warehouse_url)["reference"].tolist() == ["C2"]
    src = _table(warehouse_url, warehouse.claim_sources)  # lineage: the objection's file row under each decision
    src = src.loc[(src["run_id"] == "t__2020-10-26") & (src["role"] == "objection")]
    assert sorted(zip(src["reference"], src["source_row"], src["record_key"], strict=True)) == [
        ("C1", 2, "YY1"), ("C2", 3, "YY2")]


def _bank_file(tmp_path: Path, as_of: str, dept: str = "HRSS") -> list[dict]:
    path = tmp_path / "out" / "payments" / as_of / f"{dept}.csv"
    if not path.exists():
        return []
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    return _csv(path)


def _payments(tmp_path: Path, as_of: str) -> dict[str, dict]:
    return {r["reference"]: r for r in _csv(tmp_path / "out" / as_of / "HRSS" / "payments.csv")}


def test_a_payout_without_an_account_waits_and_is_instructed_when_one_arrives(tmp_path, warehouse_url):
    _night(tmp_path, warehouse_url, "2021-03-01")
    accounts = [account(P1, ACCOUNT_B)]
    _night(tmp_path, warehouse_url, "2021-03-09", payee_accounts=accounts)
    p = _payments(tmp_path, "2021-03-09")
    assert p["C1"]["state"] == "waiting_account" and p["C1"]["instruction_id"] == ""
    assert p["C2"]["state"] == "in_transit" and p["C2"]["account_no_masked"] == "********5432"
    assert [r["account_no"] for r in _bank_file(tmp_path, "2021-03-09")] == [ACCOUNT_B]
    _night(tmp_path, warehouse_url, "2021-03-10", payee_accounts=accounts)  # still none for P0
    assert _bank_file(tmp_path, "2021-03-10") == [] and _payments(tmp_path, "2021-03-10")["C1"]["state"] == \
        "waiting_account"
    _night(tmp_path, warehouse_url, "2021-03-11", payee_accounts=[*accounts, account(P0, ACCOUNT_A, "2021-03-11")])
    bank = _bank_file(tmp_path, "2021-03-11")
    assert [(r["payee_id"], r["account_no"], r["amount"]) for r in bank] == [(P0, ACCOUNT_A, "1500.00")]
    assert bank[0]["instruction_id"] == payments.instruction_id(bank[0]["payout_id"], 0)
    assert _payments(tmp_path, "2021-03-11")["C1"]["state"] == "in_transit"
    _night(tmp_path, warehouse_url, "2021-03-11", payee_accounts=[*accounts, account(P0, ACCOUNT_A, "2021-03-11")])
    assert len(_table(warehouse_url, warehouse.payment_instructions)) == 2  # the rerun issued nothing again
    assert {r["balanced"] for r in _recon(tmp_path, "2021-03-11")} == {"true"}


def test_a_failed_payment_is_instructed_again_only_after_the_account_changes(tmp_path, warehouse_url):
    old = [account(P0, ACCOUNT_A), account(P1, ACCOUNT_B)]
    _night(tmp_path, warehouse_url, "2021-03-01", payee_accounts=old)
    _night(tmp_path, warehouse_url, "2021-03-09", payee_accounts=old)
    first = {r["payee_id"]: r for r in _bank_file(tmp_path, "2021-03-09")}[P0]
    failed = [{"instruction_id": first["instruction_id"], "payout_id": first["payout_id"], "result": "failed",
               "result_date": "2021-03-10", "failure_reason": "账户已销户"}]
    _night(tmp_path, warehouse_url, "2021-03-10", payee_accounts=old, payment_results=failed)
    assert _payments(tmp_path, "2021-03-10")["C1"]["state"] == "failed" and _bank_file(tmp_path, "2021-03-10") == []
    _night(tmp_path, warehouse_url, "2021-03-11", payee_accounts=old, payment_results=failed)
    assert _bank_file(tmp_path, "2021-03-11") == []  # the same account would fail again
    new = [account(P0, ACCOUNT_A, end="2021-03-11"), account(P0, "6217000011112222", "2021-03-12"), old[1]]
    _night(tmp_path, warehouse_url, "2021-03-12", payee_accounts=new, payment_results=failed)
    again = _bank_file(tmp_path, "2021-03-12")
    assert [(r["payout_id"], r["account_no"]) for r in again] == [(first["payout_id"], "6217000011112222")]
    assert again[0]["instruction_id"] == payments.instruction_id(first["payout_id"], 1)
    recon = {(r["department_code"], r["fund"]): r for r in _recon(tmp_path, "2021-03-12")}
    hrss = recon[("HRSS", "skills_upgrade_account")]
    assert (hrss["owed"], hrss["in_transit"], hrss["waiting"], hrss["balanced"]) == ("3500.00", "3500.00", "0.00",
                                                                                      "true")


def test_a_paid_payout_later_reversed_becomes_a_recovery_until_the_bank_settles_it(tmp_path, warehouse_url):
    accounts = [account(P0, ACCOUNT_A), account(P1, ACCOUNT_B)]
    _night(tmp_path, warehouse_url, "2021-03-01", payee_accounts=accounts)
    _night(tmp_path, warehouse_url, "2021-03-09", payee_accounts=accounts)
    sent = {r["payee_id"]: r for r in _bank_file(tmp_path, "2021-03-09")}
    paid = [{"instruction_id": r["instruction_id"], "payout_id": r["payout_id"], "result": "paid",
             "result_date": "2021-03-10"} for r in sent.values()]
    _night(tmp_path, warehouse_url, "2021-03-10", payee_accounts=accounts, payment_results=paid)
    assert {r["state"] for r in _payments(tmp_path, "2021-03-10").values()} == {"paid"}
    revoked = [certificate("C1", P0, "2020-06-01", status="revoked"), certificate("C2", P1, "2020-06-02", level="3")]
    _night(tmp_path, warehouse_url, "2021-03-11", payee_accounts=accounts, payment_results=paid, certificates=revoked)
    lines = _lines(warehouse_url)
    assert lines["entry_type"].tolist()[-1] == "reversal"  # reversed at once, no publicity needed
    p = _payments(tmp_path, "2021-03-11")["C1"]
    assert p["state"] == "recovery_owed" and p["recovery_id"] == payments.recovery_id(p["payout_id"])
    hrss = {(r["department_code"], r["fund"]): r for r in _recon(tmp_path, "2021-03-11")}[
        ("HRSS", "skills_upgrade_account")]
    assert (hrss["owed"], hrss["paid"], hrss["recoveries_owed"], hrss["balanced"]) == ("2000.00", "2000.00",
                                                                                      "1500.00", "true")
    assert [r["payout_id"] for r in _bank_file(tmp_path, "2021-03-11")] == []  # a recovery is not a bank payment
    settled = [*paid, {"instruction_id": p["recovery_id"], "payout_id": p["payout_id"], "result": "paid",
                       "result_date": "2021-03-15"}]
    _night(tmp_path, warehouse_url, "2021-03-15", payee_accounts=accounts, payment_results=settled,
           certificates=revoked)
    assert _payments(tmp_path, "2021-03-15")["C1"]["state"] == "recovered"
    hrss = {(r["department_code"], r["fund"]): r for r in _recon(tmp_path, "2021-03-15")}[
        ("HRSS", "skills_upgrade_account")]
    assert (hrss["recoveries_owed"], hrss["recovered"]) == ("0.00", "1500.00")


def test_a_bank_result_for_no_instruction_is_quarantined(tmp_path, warehouse_url):
    stray = [{"instruction_id": "PI" + "A" * 22, "payout_id": "PO" + "B" * 22, "result": "paid",
              "result_date": "2021-03-01"}]
    _night(tmp_path, warehouse_url, "2021-03-01", payment_results=stray)
    q = _csv(tmp_path / "out" / "2021-03-01" / "quarantine.csv")
    assert [(r["registry"], r["row_number"], r["reasons"]) for r in q] == [("payment_results", "2",
                                                                           "unknown_instruction")]
    rec = {r["registry"]: r for r in _csv(tmp_path / "out" / "2021-03-01" / "reconciliation.csv")}
    assert (rec["payment_results"]["rows_in"], rec["payment_results"]["quarantined"]) == ("1", "1")


def test_trace_shows_publicity_instruction_and_bank_result_with_their_rows(tmp_path, warehouse_url):
    from subsidy_ledger import trace

    accounts = [account(P0, ACCOUNT_A)]
    _night(tmp_path, warehouse_url, "2021-03-01", payee_accounts=accounts)
    _night(tmp_path, warehouse_url, "2021-03-09", payee_accounts=accounts)
    sent = _bank_file(tmp_path, "2021-03-09")[0]
    res = [{"instruction_id": sent["instruction_id"], "payout_id": sent["payout_id"], "result": "paid",
            "result_date": "2021-03-10"}]
    _night(tmp_path, warehouse_url, "2021-03-10", payee_accounts=accounts, payment_results=res)
    engine = warehouse.connect(warehouse_url)
    with engine.connect() as c:
        t = trace.trace_payout(c, sent["payout_id"])
    engine.dispose()
    assert t["publicity"][0]["publicity_end"] == "2021-03-08" and t["payout"]["publicity_end"] == "2021-03-08"
    pay = t["payment"][0]
    assert (pay["account_no_masked"], pay["account_source"], pay["result"]) == ("********8901", "payee_accounts:2",
                                                                                "paid")
    assert pay["result_source"]["file_name"] == "payment_results.csv" and pay["result_source"]["row_number"] == 2
    text = trace.render_payout(t)
    assert "publicity 2021-03-01 .. 2021-03-08" in text and ACCOUNT_A not in text and P0 not in text


NIGHT_STEPS = st.lists(st.fixed_dictionaries({
    "days": st.integers(1, 9),                                     # nights are 1-9 calendar days apart
    "levels": st.tuples(st.sampled_from(["4", "3", "revoked"]), st.sampled_from(["3", "2"])),
    "objection": st.sampled_from([None, "open", "upheld", "dismissed"]),
    "accounts": st.tuples(st.sampled_from([None, ACCOUNT_A, "6217000011112222"]), st.sampled_from([None, ACCOUNT_B])),
    "bank": st.lists(st.sampled_from(["paid", "failed", None]), min_size=4, max_size=4),
}), min_size=2, max_size=5)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=NIGHT_STEPS)
def test_owed_is_paid_plus_in_transit_plus_waiting_after_every_night(tmp_path_factory, steps):
    """Over random nights (publicity releases, objections, accounts coming and going, bank results paying or
    failing instructions and settling recoveries), every department and fund balances after every night."""
    tmp = tmp_path_factory.mktemp("prop")
    url = f"sqlite:///{tmp / 'warehouse.sqlite'}"
    day, results = pd.Timestamp("2021-02-22"), {}
    for step in steps:
        day += pd.Timedelta(days=step["days"])
        as_of = day.date().isoformat()
        c1 = certificate("C1", P0, "2020-06-01", level="4" if step["levels"][0] == "revoked" else step["levels"][0],
                         status="revoked" if step["levels"][0] == "revoked" else "valid")
        objection = [] if step["objection"] is None else [{
            "objection_id": "YY1", "subsidy_type": "skill_upgrade", "reference": "C1", "person_id": P0,
            "lodged_on": "2021-02-20", "resolved_on": None if step["objection"] == "open" else "2021-02-21",
            "outcome": None if step["objection"] == "open" else step["objection"]}]
        accounts = [account(p, a) for p, a in zip((P0, P1), step["accounts"], strict=True) if a]
        _night(tmp, url, as_of, certificates=[c1, certificate("C2", P1, "2020-06-02", level=step["levels"][1])],
               objections=objection, payee_accounts=accounts, payment_results=list(results.values()))
        _assert_balanced(tmp, url, as_of)
        # the bank answers some of the instructions still open, for the next night's drop
        instr = _table(url, warehouse.payment_instructions)
        waiting = instr.loc[~instr["instruction_id"].isin(list(results))].sort_values("seq")
        for (_, i), answer in zip(waiting.iterrows(), step["bank"], strict=False):
            if answer is not None and not (i["kind"] == "recovery" and answer == "failed"):
                results[i["instruction_id"]] = {"instruction_id": i["instruction_id"], "payout_id": i["payout_id"],
                                                "result": answer, "result_date": as_of}


def _assert_balanced(tmp: Path, url: str, as_of: str) -> None:
    """The night's extracts against the warehouse, computed apart from the pipeline's own check: the ledger's net
    per department and fund equals the payouts paid, in transit and waiting in payments.csv; the recoveries
    owed there equal the reconciliation's."""
    lines = _lines(url)
    owed = lines.groupby(["department_code", "fund"])["amount_fen"].sum() if len(lines) else pd.Series(dtype=int)
    pays = pd.concat([pd.read_csv(p, dtype=str, encoding="utf-8-sig", keep_default_na=False)
                      for p in sorted((tmp / "out" / as_of).glob("*/payments.csv"))], ignore_index=True)
    fen = pays["amount"].map(_fen).astype("int64")
    active = pays.assign(fen=fen).loc[pays["state"].isin(payments.ACTIVE_STATES)]
    by_state = active.groupby(["department_code", "fund"])["fen"].sum() if len(active) else pd.Series(dtype=int)
    nonzero = {k: int(v) for k, v in owed.items() if v}
    assert nonzero == {k: int(v) for k, v in by_state.items() if v}
    recon = _recon(tmp, as_of)
    assert all(r["balanced"] == "true" for r in recon)
    owed_back = pays.assign(fen=fen).loc[pays["state"] == "recovery_owed"]
    assert int(owed_back["fen"].sum()) == sum(_fen(r["recoveries_owed"]) for r in recon)


def _fen(yuan: str) -> int:
    return int(Decimal(yuan) * 100)


def _line(pid: str, entry: str, amount: int, reverses: str | None = None, payee_type: str | None = "person",
          dept: str = "HRSS") -> dict:
    return {"payout_id": pid, "entry_type": entry, "reverses_payout_id": reverses, "department_code": dept,
            "fund": "skills_upgrade_account", "subsidy_type": "skill_upgrade", "reference": pid, "person_id": P0,
            "name": "甲", "amount_fen": amount, "payee_type": payee_type, "posted_on": pd.Timestamp("2021-03-09")}


def _instr(iid: str, pid: str, kind: str = "payment", attempt: int = 0) -> dict:
    return {"instruction_id": iid, "kind": kind, "payout_id": pid, "attempt": attempt, "payee_id": P0,
            "payee_name": "甲", "bank_name": "某银行", "account_no": ACCOUNT_A,
            "instructed_on": pd.Timestamp("2021-03-09")}


def test_payment_states_and_the_reconciliation_equation():
    lines = pd.DataFrame([_line("A", "payout", 100), _line("B", "payout", 200), _line("C", "payout", 300),
                          _line("D", "payout", 400), _line("E", "payout", 500), _line("E2", "reversal", -500, "E"),
                          _line("F", "payout", 600, payee_type=None),  # posted before payments existed
                          _line("G", "payout", 700), _line("G2", "reversal", -700, "G")])
    instr = pd.DataFrame([_instr("IB", "B"), _instr("IC", "C"), _instr("ID", "D"), _instr("IE", "E"),
                          _instr("IG", "G"), _instr("RG", "G", "recovery")])
    outs = pd.DataFrame({"instruction_id": ["IC", "ID", "IE", "IG"], "result": ["paid", "failed", "paid", "paid"],
                         "result_date": pd.Timestamp("2021-03-10"), "failure_reason": None})
    st = payments.states(lines, instr, outs).set_index("payout_id")["state"].to_dict()
    assert st == {"A": "waiting_account", "B": "in_transit", "C": "paid", "D": "failed", "E": "recovery_owed",
                  "F": "paid", "G": "recovery_owed"}
    r = payments.reconcile(lines, payments.states(lines, instr, outs)).iloc[0]
    assert (r["owed_fen"], r["paid_fen"], r["in_transit_fen"], r["waiting_fen"], r["recoveries_owed_fen"]) == (
        1600, 900, 200, 500, 1200) and r["balanced"]
    # a reversal booked to another department than its payout breaks the equation: the night is refused
    bad = pd.concat([lines, pd.DataFrame([_line("H", "payout", 50), _line("H2", "reversal", -50, "H", dept="AGRI")])])
    with pytest.raises(payments.PaymentReconciliationError, match="do not reconcile"):
        payments.check(payments.reconcile(bad, payments.states(bad, instr, outs)))


def test_new_instructions_go_to_waiting_payouts_with_an_account_and_to_failed_ones_whose_account_changed():
    lines = pd.DataFrame([_line("A", "payout", 100), _line("D", "payout", 400), _line("E", "payout", 500),
                          _line("E2", "reversal", -500, "E")])
    instr = pd.DataFrame([_instr("ID", "D"), _instr("IE", "E")])
    outs = pd.DataFrame({"instruction_id": ["ID", "IE"], "result": ["failed", "paid"],
                         "result_date": pd.Timestamp("2021-03-10"), "failure_reason": None})
    st = payments.states(lines, instr, outs)
    classes = pd.DataFrame(columns=["class_id", "institution_credit_code"])
    none = pd.DataFrame(columns=["institution_credit_code", "institution_name", "bank_name", "account_no",
                                 "qualified_from", "__row"])
    same = pd.DataFrame({"payee_id": [P0], "payee_name": ["甲"], "bank_name": ["某银行"], "account_no": [ACCOUNT_A],
                         "account_source": ["payee_accounts:2"]})
    new = payments.plan_instructions(st, classes, same, payments.institution_accounts(none, pd.Timestamp(
        "2021-03-11").date()), pd.Timestamp("2021-03-11").date(), "r")
    assert sorted(zip(new["payout_id"], new["kind"], new["attempt"], strict=True)) == [
        ("A", "payment", 0), ("E", "recovery", 0)]  # D failed on this very account: not again
    changed = same.assign(account_no=["6217000011112222"])
    new = payments.plan_instructions(st, classes, changed, payments.institution_accounts(none, pd.Timestamp(
        "2021-03-11").date()), pd.Timestamp("2021-03-11").date(), "r")
    assert ("D", "payment", 1) in set(zip(new["payout_id"], new["kind"], new["attempt"], strict=True))
    assert new.set_index("payout_id").loc["D", "instruction_id"] == payments.instruction_id("D", 1)
