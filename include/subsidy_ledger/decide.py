"""Decide: every claim approved or rejected with its reason code, amount, rule id and policy version."""

from __future__ import annotations

import pandas as pd

from .money import apply_uplift
from .policy import PolicyBook
from .rules import r1_skill_upgrade as r1

SKILLS_ACCOUNT = "skills_upgrade_account"
DECISION_COLUMNS = [
    "subsidy_type", "reference", "person_id", "name", "decision", "reason_code", "amount_fen",
    "base_amount_fen", "uplift_units", "cap_place", "rule_id", "policy_version", "department_code", "fund",
    "occupation_code", "level", "event_date",
]
CLAIM_KEY = ["subsidy_type", "reference", "person_id"]


def decide_certificates(e: pd.DataFrame, book: PolicyBook, already_paid: pd.DataFrame) -> pd.DataFrame:
    """R1 (with R2, R3) for every certificate in the eligibility table.

    already_paid holds the claim keys the ledger currently pays (net amount > 0).
    """
    e = e.reset_index(drop=True)
    stype = r1.subsidy_type(e["certificate_type"])
    reason = r1.record_check_failures(e)
    cands = e.loc[reason.isna()]
    paid_keys = set(zip(already_paid["subsidy_type"], already_paid["reference"], already_paid["person_id"],
                        strict=True))
    is_paid = pd.Series([k in paid_keys for k in zip(stype[cands.index], cands["certificate_no"],
                                                      cands["person_id"], strict=True)],
                        index=cands.index, dtype=bool)
    cap = book.per_version(cands["policy_version"], lambda v: v.annual_cap)
    order = r1.apply_order_checks(cands, cap, is_paid)
    reason.loc[cands.index] = order["reason"]
    cap_place = order["cap_place"].reindex(e.index).astype("Int64")

    versions = e["policy_version"]
    level_amount = pd.Series(pd.NA, index=e.index, dtype="Int64")
    for name, v in book.by_name.items():
        mask = (versions == name).fillna(False) & e["level"].notna()
        level_amount[mask] = e.loc[mask, "level"].map(v.level_amount_fen).astype("int64")
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
