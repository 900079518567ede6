"""Held decisions (POLICY.md "Decisions: approved, rejected, held"): a claim whose evidence is unreadable waits.

`awaiting_registry_correction`: a row of the claim's person (its person_id, compacted) in a registry that
the claim's rule reads was quarantined in this run. Nothing is posted for a held claim, and a payout the
ledger already holds for it stands; when the registry corrects the row, the claim is decided normally.
A claim is never rejected because its evidence was unreadable.
"""

from __future__ import annotations

import pandas as pd

from . import r4_employee_apprentice as r4
from . import r5_student_apprentice as r5
from . import r6_living_allowance as r6

HELD = "held"
AWAITING_CORRECTION = "awaiting_registry_correction"
OVERLAPPING_ATTENDANCE = "overlapping_attendance"  # R6/R7: on two rosters whose class dates overlap
HOLD_REASONS = (AWAITING_CORRECTION, OVERLAPPING_ATTENDANCE)

# the registries each rule reads about the claim's person (rows of other persons cannot change its outcome)
R1_READS = ("certificates", "social_insurance", "unemployment_registrations", "veterans", "low_income",
            "city_payouts")
READS = {
    "skill_upgrade": R1_READS,
    "special_ability": R1_READS,
    r4.SUBSIDY_TYPE: ("apprenticeships", "social_insurance"),
    r5.SUBSIDY_TYPE: ("apprenticeships",),
    r6.SUBSIDY_TYPE: ("class_enrollments", "low_income", "school_leavers"),
}


def quarantined_rows(claims: pd.DataFrame, quarantine: pd.DataFrame) -> pd.Series:
    """For each claim (subsidy_type, person_id), its person's quarantined rows in the registries its rule
    reads, as `registry:row` pairs joined by `;` (NA where there are none)."""
    if claims.empty or quarantine.empty:
        return pd.Series(pd.NA, index=claims.index, dtype="string")
    reads = pd.DataFrame([(t, r) for t, regs in READS.items() for r in regs], columns=["subsidy_type", "registry"])
    q = quarantine.loc[quarantine["person_id"].notna(), ["registry", "row_number", "person_id"]]
    q = q.merge(reads, on="registry").sort_values(["registry", "row_number"])
    q["pair"] = q["registry"] + ":" + q["row_number"].astype("int64").astype(str)
    rows = q.drop_duplicates(["subsidy_type", "person_id", "pair"]).groupby(
        ["subsidy_type", "person_id"], sort=False)["pair"].agg(";".join)
    keys = pd.MultiIndex.from_frame(claims[["subsidy_type", "person_id"]].astype(str))
    return pd.Series(rows.reindex(keys).to_numpy(), index=claims.index, dtype="string")


def hold(decisions: pd.DataFrame, held_rows: pd.Series, overlapping: pd.Series | None = None) -> pd.DataFrame:
    """Decisions with every claim that has quarantined rows (or, given `overlapping`, overlapping attendance)
    turned into a held one, amount 0; unreadable evidence is named first, as the more basic of the two."""
    out = decisions.assign(held_rows=held_rows.astype("string"))
    awaiting = out["held_rows"].notna()
    overlap = (pd.Series(False, index=out.index) if overlapping is None
               else overlapping.reindex(out.index).fillna(False).astype(bool)) & ~awaiting
    for mask, reason in ((awaiting, AWAITING_CORRECTION), (overlap, OVERLAPPING_ATTENDANCE)):
        out.loc[mask, "decision"] = HELD
        out.loc[mask, "reason_code"] = reason
        out.loc[mask, "amount_fen"] = 0
    return out
