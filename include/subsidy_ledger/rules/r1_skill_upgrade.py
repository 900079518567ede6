"""R1 Skill-upgrade subsidy (技能提升补贴 / 培训补贴), one per certificate.

Seed 四(一)1: "凡参加失业保险的人员(机关事业单位在编人员除外)，凭取得的职业资格证书（职业技能等级证书、
专项能力证书等）可申领技能提升补贴 … 初级工1000元、中级工1500元、高级工2000元、技师4000元、高级技师6000元 …
专项能力证书按照每人不超过800元标准给予补贴 … 每人每年可享受不超过3次，但同一职业（工种）同一等级只享受一次，
市、区政策不重复享受。" and 五 (开班备案, 实名制). Checks run in POLICY.md's order; the first that fails is
the reason code. Checks 8 and 9 depend on the person's earlier approvals, so they run in claim order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RULE_ID = "R1"
SPECIAL = "special_ability"
# Checks 1-7 look at one certificate's own records.
RECORD_CHECKS = (
    "certificate_revoked",
    "outside_policy_window",
    "civil_servant_excluded",
    "not_eligible_group",
    "class_not_filed_in_advance",
    "not_on_class_roster",
    "paid_by_city",
)
DUPLICATE = "duplicate_occupation_level"
CAP = "annual_cap_reached"
REASON_CODES = (*RECORD_CHECKS, DUPLICATE, CAP)


def subsidy_type(certificate_type: pd.Series) -> pd.Series:
    """special_ability certificates are their own subsidy type; the others are skill_upgrade."""
    return pd.Series(np.where(certificate_type == SPECIAL, "special_ability", "skill_upgrade"),
                     index=certificate_type.index, dtype="string")


def record_check_failures(e: pd.DataFrame) -> pd.Series:
    """First failing check among 1-7 for each certificate (NA when all pass)."""
    names_class = e["training_class_id"].notna()
    failed = [
        e["status"] == "revoked",
        e["policy_version"].isna(),
        e["civil_servant"],
        ~(e["insured"] | e["key_group"]),
        names_class & ~e["class_filed_in_advance"].fillna(False).astype(bool),
        names_class & ~e["on_roster"].fillna(False).astype(bool),
        e["paid_by_city"],
    ]
    conds = [np.asarray(f.fillna(False) if hasattr(f, "fillna") else f, dtype=bool) for f in failed]
    reason = np.select(conds, RECORD_CHECKS, default="")
    return pd.Series(reason, index=e.index, dtype="string").replace("", pd.NA)


def slot_key(e: pd.DataFrame) -> pd.Series:
    """The one-per-occupation-and-level slot: qualification and skill-level certificates share a slot;
    special-ability ones key on the occupation code alone."""
    level = e["level"].astype("string").fillna("")
    kind = pd.Series(np.where(e["certificate_type"] == SPECIAL, "S", "Q"), index=e.index)
    return e["person_id"] + "|" + kind + "|" + e["occupation_code"] + "|" + level


def apply_order_checks(cands: pd.DataFrame, annual_cap: pd.Series, already_paid: pd.Series) -> pd.DataFrame:
    """Checks 8 and 9 in claim order; returns reason (NA = approved) and cap_place per candidate.

    Claims the ledger already pays go first (they keep their slot and cap place while their own
    records still qualify them); the rest follow in (issued_on, certificate_no) order. Rejected
    claims use up neither a slot nor a cap place. Vectorised across people, one round per rank.
    """
    c = pd.DataFrame({
        "person_id": cands["person_id"], "slot": slot_key(cands),
        "year": cands["issued_on"].dt.year.astype("int64"), "cap": annual_cap.astype("int64"),
        "prio": np.where(already_paid.to_numpy(dtype=bool), 0, 1),
        "issued_on": cands["issued_on"], "certificate_no": cands["certificate_no"],
    }, index=cands.index)
    c = c.sort_values(["person_id", "prio", "issued_on", "certificate_no"], kind="stable")
    c["rank"] = c.groupby("person_id", sort=False).cumcount()
    c["year_key"] = c["person_id"] + "|" + c["year"].astype(str)
    reason = pd.Series(pd.NA, index=c.index, dtype="string")
    place = pd.Series(pd.NA, index=c.index, dtype="Int64")
    taken: set[str] = set()
    used = pd.Series(dtype="int64")
    for r in range(int(c["rank"].max()) + 1 if len(c) else 0):
        cur = c.loc[c["rank"] == r]
        dup = cur["slot"].isin(taken)
        count = cur["year_key"].map(used).fillna(0).astype("int64")
        full = ~dup & (count >= cur["cap"])
        ok = ~dup & ~full
        reason.loc[cur.index[dup.to_numpy()]] = DUPLICATE
        reason.loc[cur.index[full.to_numpy()]] = CAP
        place.loc[cur.index[ok.to_numpy()]] = (count[ok] + 1).to_numpy()
        taken.update(cur.loc[ok, "slot"])
        used = used.add(cur.loc[ok, "year_key"].value_counts(), fill_value=0).astype("int64")
    return pd.DataFrame({"reason": reason, "cap_place": place}).reindex(cands.index)


def base_amount_fen(e: pd.DataFrame, level_amount: pd.Series, special_cap: pd.Series) -> pd.Series:
    """Amount before the uplift: the catalog's where it has a row, else the level amount; a
    special-ability amount is the catalog's or the cap, never more than the cap."""
    special = e["certificate_type"] == SPECIAL
    catalog = e["catalog_amount_fen"]
    standard = catalog.fillna(level_amount)
    wanted = catalog.fillna(special_cap)
    capped = wanted.where(~(wanted > special_cap).fillna(False), special_cap)
    return pd.Series(np.where(special, capped, standard), index=e.index).astype("Int64")
