"""Decide: every claim approved, rejected or held, with its reason code, amount, rule id and policy version."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .contract import CLAIM_KEY, EMPLOYMENT_FUND, SKILLS_ACCOUNT
from .eligibility import city_matches
from .money import apply_uplift
from .policy import PolicyBook
from .rules import holds
from .rules import r1_skill_upgrade as r1
from .rules import r4_employee_apprentice as r4
from .rules import r5_student_apprentice as r5
from .rules import r6_living_allowance as r6
from .rules import r7_training_subsidy as r7

DECISION_COLUMNS = [
    "subsidy_type", "reference", "person_id", "name", "decision", "reason_code", "amount_fen",
    "base_amount_fen", "uplift_units", "cap_place", "rule_id", "policy_version", "department_code", "fund",
    "occupation_code", "level", "event_date",
]


def _is_paid(stype: pd.Series, reference: pd.Series, person: pd.Series, already_paid: pd.DataFrame) -> pd.Series:
    """True for each claim key the ledger currently pays."""
    keys = pd.MultiIndex.from_arrays([already_paid[c].astype(str) for c in CLAIM_KEY])
    mine = pd.MultiIndex.from_arrays([stype.astype(str), reference.astype(str), person.astype(str)])
    return pd.Series(mine.isin(keys), index=stype.index, dtype=bool)


def paid_as_training(e: pd.DataFrame, training_approved: pd.DataFrame | None) -> pd.Series:
    """R1 check 7: the person has an approved R7 claim for the certificate's occupation code and level
    (a class without a level matches a special-ability certificate of its occupation)."""
    if training_approved is None or training_approved.empty:
        return pd.Series(False, index=e.index)
    key = ["person_id", "occupation_code", "level"]
    t = training_approved[key].astype("string").fillna("").drop_duplicates().assign(_hit=True)
    hit = e[key].astype("string").fillna("").merge(t, on=key, how="left")["_hit"]
    return pd.Series(hit.fillna(False).to_numpy(dtype=bool), index=e.index)


def decide_certificates(e: pd.DataFrame, book: PolicyBook, already_paid: pd.DataFrame,
                        city: pd.DataFrame | None = None, training_approved: pd.DataFrame | None = None
                        ) -> pd.DataFrame:
    """R1 (with R2, R3) for every certificate in the eligibility table.

    already_paid holds the claim keys the ledger currently pays (net amount > 0); city the city's payouts
    made by the run's date (they take cap places); training_approved the approved R7 claims (person,
    occupation code, level).
    """
    e = e.reset_index(drop=True)
    stype = r1.subsidy_type(e["certificate_type"])
    is_paid = _is_paid(stype, e["certificate_no"], e["person_id"], already_paid)
    min_months = book.per_version(e["policy_version"], lambda v: v.minimum_insured_months)
    reason = r1.record_check_failures(e, min_months, is_paid, paid_as_training(e, training_approved))
    cands = e.loc[reason.isna()]
    cap = book.per_version(cands["policy_version"], lambda v: v.annual_cap)
    district_pays = set(e.loc[is_paid, "certificate_no"])
    places = r1.city_places(city if city is not None else pd.DataFrame(), e, district_pays)
    order = r1.apply_order_checks(cands, cap, is_paid[cands.index], places)
    reason.loc[cands.index] = order["reason"]
    cap_place = order["cap_place"].reindex(e.index).astype("Int64")

    versions = e["policy_version"]
    level_amount = pd.Series(pd.NA, index=e.index, dtype="Int64")
    for name, v in book.by_name.items():
        mask = (versions == name).fillna(False) & e["level"].notna()
        levels = e.loc[mask, "level"]  # priced once per level, not once per certificate
        level_amount[mask] = levels.map({lvl: v.level_amount_fen(lvl) for lvl in levels.unique()}).astype("int64")
    special_cap = book.per_version(versions, lambda v: v.special_ability_cap_fen).astype("Int64")
    base = r1.base_amount_fen(e, level_amount, special_cap)
    approved = reason.isna()
    uplift = e["uplift_units"].where(approved, 0).astype("int64")
    amount = apply_uplift(base.fillna(0), uplift).where(approved, 0).astype("int64")
    return pd.DataFrame({
        "subsidy_type": stype, "reference": e["certificate_no"], "person_id": e["person_id"],
        "name": e["name"], "decision": approved.map({True: "approved", False: "rejected"}).astype("string"),
        "reason_code": reason, "amount_fen": amount, "base_amount_fen": base, "uplift_units": uplift,
        "cap_place": cap_place, "rule_id": r1.RULE_ID, "policy_version": versions,
        "department_code": e["department_code"], "fund": SKILLS_ACCOUNT,
        "occupation_code": e["occupation_code"], "level": e["level"], "event_date": e["issued_on"],
    })[DECISION_COLUMNS]


CITY_OVERLAP_COLUMNS = ["reference", "person_id", "name", "department_code", "occupation_code", "level",
                        "district_amount_fen", "city_certificate_no", "city_paid_on", "city_amount_fen"]


def city_overlaps(e: pd.DataFrame, decided: pd.DataFrame, already_paid: pd.DataFrame,
                  city: pd.DataFrame) -> pd.DataFrame:
    """R1 check 6: certificates the district pays and still approves that the city has paid too (its payout
    recorded after the district's). The district's payout stands; HRSS settles the pair with the city."""
    e = e.reset_index(drop=True)
    d = decided.reset_index(drop=True)
    paid = _is_paid(d["subsidy_type"], d["reference"], d["person_id"], already_paid)
    both = e.loc[(d["decision"] == "approved") & paid & e["paid_by_city"].fillna(False).astype(bool)]
    pairs = city_matches(both, city).merge(
        d[["reference", "person_id", "name", "department_code", "occupation_code", "level", "amount_fen"]],
        left_on="event", right_index=True)
    return pairs.rename(columns={"amount_fen": "district_amount_fen"})[CITY_OVERLAP_COLUMNS].reset_index(drop=True)


def _frame(f: pd.DataFrame, reason: pd.Series, amount: pd.Series, base: pd.Series, rule_id: pd.Series | str,
           fund: str, event_date: pd.Series, **cols) -> pd.DataFrame:
    approved = reason.isna()
    return pd.DataFrame({
        "subsidy_type": f["subsidy_type"], "reference": f["reference"], "person_id": f["person_id"],
        "name": f["name"], "decision": approved.map({True: "approved", False: "rejected"}).astype("string"),
        "reason_code": reason, "amount_fen": amount, "base_amount_fen": base.astype("Int64"), "uplift_units": 0,
        "cap_place": pd.Series(pd.NA, index=f.index, dtype="Int64"), "rule_id": rule_id,
        "policy_version": f["policy_version"], "department_code": f["department_code"], "fund": fund,
        "event_date": event_date, **cols,
    })[DECISION_COLUMNS]


def decide_apprentices(f: pd.DataFrame, book: PolicyBook, as_of, already_paid: pd.DataFrame | None = None
                       ) -> pd.DataFrame:
    """R4 for employee agreement years and R5 for student agreements (limits per person, across agreements;
    already_paid: the claim keys the ledger pays, which keep their place)."""
    f = f.reset_index(drop=True)
    when = pd.Timestamp(as_of)
    version = f["policy_version"]
    employee = (f["subsidy_type"] == r4.SUBSIDY_TYPE).to_numpy(dtype=bool)
    paid = _is_paid(f["subsidy_type"], f["reference"], f["person_id"],
                    already_paid if already_paid is not None else pd.DataFrame(columns=CLAIM_KEY))
    max_years = book.per_version(version, lambda v: v.apprentice_max_years)
    emp, stu = f.loc[employee], f.loc[~employee]
    reason = pd.concat([r4.reasons(emp, max_years[emp.index], when, paid[emp.index]),
                        r5.reasons(stu, when, paid[stu.index])]).reindex(f.index).astype("string")
    approved = reason.isna()
    per_year = book.per_version(version, lambda v: v.apprentice_year_amount_fen)
    cap = book.per_version(version, lambda v: v.student_cap_fen)
    student_base = r5.amount_fen(pd.Series(True, index=f.index), f["months_served"], f["monthly_allowance_fen"], cap)
    base = pd.Series(np.where(employee, per_year.fillna(0), student_base), index=f.index)
    amount = pd.Series(np.where(employee, r4.amount_fen(approved, per_year),
                                r5.amount_fen(approved, f["months_served"], f["monthly_allowance_fen"], cap)),
                       index=f.index).astype("int64")
    rule = pd.Series(np.where(employee, r4.RULE_ID, r5.RULE_ID), index=f.index, dtype="string")
    return _frame(f, reason, amount, base, rule, SKILLS_ACCOUNT, f["period_start"],
                  occupation_code=pd.NA, level=pd.NA)


def decide_living_allowances(f: pd.DataFrame, book: PolicyBook, as_of) -> pd.DataFrame:
    """R6 for every roster entry in the living-allowance eligibility table."""
    f = f.reset_index(drop=True).assign(subsidy_type=r6.SUBSIDY_TYPE)
    f["reference"] = f["class_id"]
    days = r6.paid_days(f["attendance_days"], f["class_days"])
    reason = r6.reasons(f.assign(paid_days=days), pd.Timestamp(as_of))
    per_day = book.per_version(f["policy_version"], lambda v: v.living_allowance_per_day_fen)
    base = r6.amount_fen(pd.Series(True, index=f.index), days, per_day)
    amount = r6.amount_fen(reason.isna(), days, per_day)
    out = _frame(f, reason, amount, base, r6.RULE_ID, EMPLOYMENT_FUND, f["start_date"],
                 occupation_code=f["occupation_code"], level=f["level"])
    overlapping = f.get("overlapping_attendance")
    return holds.hold(out, pd.Series(pd.NA, index=out.index, dtype="string"), overlapping)


def decide_training_subsidies(f: pd.DataFrame, book: PolicyBook, already_paid: pd.DataFrame | None = None,
                              held_rows: pd.Series | None = None, budget: bool = True) -> pd.DataFrame:
    """R7 (with R3) for every roster entry in the training eligibility table.

    held_rows: the quarantined rows each entry waits for (holds.quarantined_rows); a held entry uses up no
    slot, cap place or budget. Then overlapping attendance and the project's filed budget hold entries;
    budget=False leaves the budget to hold_over_budget (a project's trainees may sit in other partitions).
    """
    f = f.reset_index(drop=True).assign(subsidy_type=r7.SUBSIDY_TYPE)
    f["reference"] = f["class_id"]
    awaiting = (held_rows.reset_index(drop=True) if held_rows is not None
                else pd.Series(pd.NA, index=f.index, dtype="string")).astype("string")
    paid = _is_paid(f["subsidy_type"], f["reference"], f["person_id"],
                    already_paid if already_paid is not None else pd.DataFrame(columns=CLAIM_KEY))
    base = r7.base_amount_fen(f["project_standard_fen"], f["catalog_amount_fen"])
    reason = r7.record_check_failures(f.assign(base_amount_fen=base))
    # "then holds": an entry that fails its own checks is rejected, overlapping or not
    overlap = f["overlapping_attendance"].fillna(False).astype(bool) & reason.isna()
    waits = awaiting.notna() | overlap
    cands = f.loc[reason.isna() & ~waits]
    cap = book.per_version(cands["policy_version"], lambda v: v.training_annual_cap)
    order = r7.apply_order_checks(cands, cap, paid[cands.index])
    reason.loc[cands.index] = order["reason"]
    approved = reason.isna()
    uplift = f["uplift_units"].where(approved, 0).fillna(0).astype("int64")
    amount = apply_uplift(base.fillna(0), uplift).where(approved, 0).astype("int64")
    out = _frame(f, reason, amount, base, r7.RULE_ID, SKILLS_ACCOUNT, f["start_date"],
                 occupation_code=f["occupation_code"], level=f["level"])
    out["uplift_units"] = uplift
    out["cap_place"] = order["cap_place"].reindex(f.index).astype("Int64")
    out = holds.hold(out, awaiting, overlap)
    return hold_over_budget(out, f, already_paid) if budget else out


def hold_over_budget(decided: pd.DataFrame, f: pd.DataFrame, already_paid: pd.DataFrame | None) -> pd.DataFrame:
    """R7's budget check over all of a project's entries: decided holds R7 decisions row for row with the
    eligibility rows f; approved entries past their project's filed budget are held (over_filed_budget)."""
    decided, f = decided.reset_index(drop=True), f.reset_index(drop=True)
    paid = _is_paid(decided["subsidy_type"], decided["reference"], decided["person_id"],
                    already_paid if already_paid is not None else pd.DataFrame(columns=CLAIM_KEY))
    over = r7.budget_holds(f, decided["decision"] == "approved", decided["amount_fen"], paid)
    out = decided.copy()
    out.loc[over, "decision"] = holds.HELD
    out.loc[over, "reason_code"] = r7.OVER_BUDGET
    out.loc[over, "amount_fen"] = 0
    return out
