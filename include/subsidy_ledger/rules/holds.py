"""Held decisions (POLICY.md "Decisions: approved, rejected, held"): a claim whose evidence is unreadable waits.

`awaiting_registry_correction`: a row of the claim's person (its person_id, compacted) in a registry that
the claim's rule reads was quarantined in this run. Nothing is posted for a held claim, and a payout the
ledger already holds for it stands; when the registry corrects the row, the claim is decided normally.
A claim is never rejected because its evidence was unreadable.
"""

from __future__ import annotations

import pandas as pd

from . import p2_objections as p2
from . import r4_employee_apprentice as r4
from . import r5_student_apprentice as r5
from . import r6_living_allowance as r6
from . import r7_training_subsidy as r7

HELD = "held"
AWAITING_CORRECTION = "awaiting_registry_correction"
OVERLAPPING_ATTENDANCE = "overlapping_attendance"  # R6/R7: on two rosters whose class dates overlap
HOLD_REASONS = (AWAITING_CORRECTION, OVERLAPPING_ATTENDANCE, r7.OVER_BUDGET, p2.OBJECTION_OPEN)

# the registries each rule reads about the claim's person (rows of other persons cannot change its outcome)
R1_READS = ("certificates", "social_insurance", "unemployment_registrations", "veterans", "low_income",
            "city_payouts")
# every claim also reads the objections against its person (P2): an unreadable one might be open
READS = {
    "skill_upgrade": (*R1_READS, "objections"),
    "special_ability": (*R1_READS, "objections"),
    r4.SUBSIDY_TYPE: ("apprenticeships", "social_insurance", "objections"),
    r5.SUBSIDY_TYPE: ("apprenticeships", "objections"),
    r6.SUBSIDY_TYPE: ("class_enrollments", "low_income", "school_leavers", "objections"),
    r7.SUBSIDY_TYPE: ("class_enrollments", "social_insurance", "objections"),
}
# claims whose reference is a class also wait for their class's rows (which name no person): the class
# filing (R6, R7), and for R7 the class's project filing and its institution's qualifications
CLASS_CLAIMS = {r6.SUBSIDY_TYPE: ("training_classes",),
                r7.SUBSIDY_TYPE: ("training_classes", "training_projects", "training_institutions")}


def _person_rows(claims: pd.DataFrame, quarantine: pd.DataFrame) -> pd.DataFrame:
    reads = pd.DataFrame([(t, r) for t, regs in READS.items() for r in regs], columns=["subsidy_type", "registry"])
    q = quarantine.loc[quarantine["person_id"].notna(), ["registry", "row_number", "person_id"]]
    q = q.merge(reads, on="registry")
    return claims[["subsidy_type", "person_id"]].reset_index(names="claim").merge(
        q, on=["subsidy_type", "person_id"])[["claim", "registry", "row_number"]]


def _class_rows(claims: pd.DataFrame, quarantine: pd.DataFrame, classes: pd.DataFrame | None) -> pd.DataFrame:
    c = claims.loc[claims["subsidy_type"].isin(list(CLASS_CLAIMS)), ["subsidy_type", "reference"]].reset_index(
        names="claim")
    q = quarantine[["registry", "row_number", "record_key"]]
    parts = [c.merge(q.loc[q["registry"] == "training_classes"], left_on="reference", right_on="record_key")]
    if classes is not None and len(classes):
        c = c.loc[c["subsidy_type"] == r7.SUBSIDY_TYPE].merge(
            classes[["class_id", "project_id", "institution_credit_code"]], left_on="reference", right_on="class_id")
        parts.append(c.merge(q.loc[q["registry"] == "training_projects"], left_on="project_id",
                             right_on="record_key"))
        inst = q.loc[q["registry"] == "training_institutions"]
        parts.append(c.merge(inst.assign(code=inst["record_key"].str.split("+").str[0]),
                             left_on="institution_credit_code", right_on="code"))
    return pd.concat([x[["claim", "registry", "row_number"]] for x in parts], ignore_index=True)


def quarantined_rows(claims: pd.DataFrame, quarantine: pd.DataFrame, classes: pd.DataFrame | None = None
                     ) -> pd.Series:
    """For each claim, the quarantined rows it waits for, as `registry:row` pairs joined by `;` (NA where
    there are none): its person's rows in the registries its rule reads, and for a claim on a class its
    class's filing, project filing and institution qualifications (`classes`: the accepted classes)."""
    if claims.empty or quarantine.empty:
        return pd.Series(pd.NA, index=claims.index, dtype="string")
    rows = pd.concat([_person_rows(claims, quarantine), _class_rows(claims, quarantine, classes)],
                     ignore_index=True)
    rows = rows.drop_duplicates().sort_values(["claim", "registry", "row_number"])
    rows["pair"] = rows["registry"] + ":" + rows["row_number"].astype("int64").astype(str)
    joined = rows.groupby("claim", sort=False)["pair"].agg(";".join)
    return pd.Series(joined.reindex(claims.index).to_numpy(), index=claims.index, dtype="string")


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
