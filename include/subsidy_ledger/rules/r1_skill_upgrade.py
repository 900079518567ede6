"""R1 Skill-upgrade subsidy (技能提升补贴), one per certificate, HRSS's.

Seed 四(一)1: "凡参加失业保险的人员(机关事业单位在编人员除外)，凭取得的职业资格证书（职业技能等级证书、
专项能力证书等）可申领技能提升补贴 … 初级工1000元、中级工1500元、高级工2000元、技师4000元、高级技师6000元 …
专项能力证书按照每人不超过800元标准给予补贴 … 每人每年可享受不超过3次，但同一职业（工种）同一等级只享受一次，
市、区政策不重复享受。" The certificate alone decides ("凭证书"): the training route (class, roster) is R7's
business, not R1's (POLICY.md revision 2). Checks run in POLICY.md's order; the first that fails is the reason
code. Checks 8 and 9 depend on the person's earlier approvals (and city payouts), so they run in claim order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .claim_order import first_come

RULE_ID = "R1"
SPECIAL = "special_ability"
# Checks 1-7 look at one certificate's own records (and at what the ledger and R7 already pay).
RECORD_CHECKS = (
    "certificate_revoked",
    "outside_policy_window",
    "civil_servant_excluded",
    "not_eligible_group",
    "insufficient_insurance_months",
    "paid_by_city",
    "paid_as_training_subsidy",
)
DUPLICATE = "duplicate_occupation_level"
CAP = "annual_cap_reached"
REASON_CODES = (*RECORD_CHECKS, DUPLICATE, CAP)


def subsidy_type(certificate_type: pd.Series) -> pd.Series:
    """special_ability certificates are their own subsidy type; the others are skill_upgrade."""
    return pd.Series(np.where(certificate_type == SPECIAL, "special_ability", "skill_upgrade"),
                     index=certificate_type.index, dtype="string")


def _flag(values) -> np.ndarray:
    return np.asarray(values.fillna(False) if hasattr(values, "fillna") else values, dtype=bool)


def record_check_failures(e: pd.DataFrame, min_months: pd.Series, already_paid: pd.Series,
                          paid_as_training: pd.Series) -> pd.Series:
    """First failing check among 1-7 for each certificate (NA when all pass).

    min_months: the pricing version's minimum insured months (0 = off); already_paid: the ledger pays this
    claim (a city payout recorded after it does not undo it: check 6 lets it stand); paid_as_training: the
    person has an approved R7 claim for the same occupation and level.
    """
    only_insured = _flag(e["insured"]) & ~_flag(e["key_group"])
    months = e["insured_months"].fillna(0).astype("int64")
    failed = [
        e["status"] == "revoked",
        e["policy_version"].isna(),
        e["civil_servant"],
        ~(_flag(e["insured"]) | _flag(e["key_group"])),
        only_insured & (months < min_months.fillna(0).astype("int64")).to_numpy(),
        _flag(e["paid_by_city"]) & ~_flag(already_paid),
        paid_as_training,
    ]
    reason = np.select([_flag(f) for f in failed], RECORD_CHECKS, default="")
    return pd.Series(reason, index=e.index, dtype="string").replace("", pd.NA)


def slot_key(e: pd.DataFrame) -> pd.Series:
    """The one-per-occupation-and-level slot: qualification and skill-level certificates share a slot;
    special-ability ones key on the occupation code alone."""
    level = e["level"].astype("string").fillna("")
    kind = pd.Series(np.where(e["certificate_type"] == SPECIAL, "S", "Q"), index=e.index)
    return e["person_id"] + "|" + kind + "|" + e["occupation_code"] + "|" + level


def apply_order_checks(cands: pd.DataFrame, annual_cap: pd.Series, already_paid: pd.Series,
                       city_places: pd.Series | None = None) -> pd.DataFrame:
    """Checks 8 and 9 in claim order (issued_on, certificate_no); returns reason (NA = approved) and
    cap_place per candidate. city_places counts the city's payouts per "person|year" (they take places)."""
    return first_come(cands["person_id"], slot_key(cands), cands["issued_on"].dt.year, annual_cap, already_paid,
                      cands[["issued_on", "certificate_no"]], DUPLICATE, CAP, city_places)


def base_amount_fen(e: pd.DataFrame, level_amount: pd.Series, special_cap: pd.Series) -> pd.Series:
    """Amount before the uplift: the level amount the plan fixes; a special-ability certificate earns the
    catalog amount effective on its issue date, never more than the cap, or the cap without a catalog row
    (the catalog prices training, R7; for R1 it can only lower the special-ability ceiling)."""
    special = e["certificate_type"] == SPECIAL
    wanted = e["catalog_amount_fen"].where(special).fillna(special_cap)
    capped = wanted.where(~(wanted > special_cap).fillna(False), special_cap)
    return pd.Series(np.where(special, capped, level_amount), index=e.index).astype("Int64")


def city_places(city: pd.DataFrame, certs: pd.DataFrame, district_pays: set[str]) -> pd.Series:
    """Cap places the city's payouts take, per "person|year" (check 9: 市、区 count together).

    A city payout counts in the year of the certificate it paid (its issue date when that certificate is in
    the drop, else paid_on); one for a certificate the district already pays is an overlap for HRSS to
    settle, and the district's claim holds that place already.
    """
    if city.empty:
        return pd.Series(dtype="int64")
    issued = certs[["certificate_no", "issued_on"]].drop_duplicates("certificate_no")
    c = city.loc[~city["certificate_no"].isin(district_pays), ["person_id", "certificate_no", "paid_on"]]
    c = c.merge(issued, on="certificate_no", how="left")
    when = pd.to_datetime(c["issued_on"]).fillna(pd.to_datetime(c["paid_on"]))
    key = c["person_id"].astype(str) + "|" + when.dt.year.astype("Int64").astype(str)
    counts = key.loc[when.notna()].value_counts()
    return pd.Series(counts.to_numpy(dtype="int64"), index=counts.index.astype(object))
