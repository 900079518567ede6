"""R4 Employee apprentice (职工学徒), subsidy type apprentice_employee.

Seed 四(一)2: "在企业（含拥有技能人才培养职能的行业协会）全面推行企业新型学徒制度，对企业新招用和转岗的
已在岗满一年的职工 … 与技工院校、职业院校 … 开展 … 学徒培训 … 职工学徒原则上按学徒每人每年不低于4000元的标准
进行补贴，补贴期限最长不超过3年。"
Agreement year k runs from start_date + (k-1) years to start_date + k years; it is paid when it has completed
on or before both the run's as-of date and the agreement's end date, and began inside the policy window (the
version in force on its first day prices it). At most max_years paid years per person, across agreements.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RULE_ID = "R4"
SUBSIDY_TYPE = "apprentice_employee"
KIND = "employee"
# Checks in this order; the first that fails is the reason code. The last runs in claim order.
RECORD_CHECKS = (
    "outside_policy_window",                  # the year began outside every policy version's range
    "no_school_partner",                      # no school named: the plan requires 校企合作
    "not_in_post_one_year",                   # not insured with the agreement's employer the whole year before
    "agreement_ended_before_year_completed",  # the agreement ended before the year's last day
    "not_completed_yet",                      # the year completes after the as-of date
)
YEARS_CAP = "years_cap_reached"               # the person already has max_years approved years, any agreement
REASON_CODES = (*RECORD_CHECKS, YEARS_CAP)


def reference(agreement_id: pd.Series, year: pd.Series) -> pd.Series:
    """Claim reference `<agreement_id>#<k>`."""
    return agreement_id.astype("string") + "#" + year.astype("string")


def record_check_failures(f: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """First failing check among the agreement year's own ones (NA when they all pass)."""
    failed = [
        f["policy_version"].isna(),
        ~f["school_partner"].fillna(False).astype(bool),
        ~f["in_post_one_year"].fillna(False).astype(bool),
        (f["agreement_end"] < f["period_end"]).fillna(False),
        f["period_end"] > as_of,
    ]
    reason = np.select([np.asarray(c, dtype=bool) for c in failed], RECORD_CHECKS, default="")
    return pd.Series(reason, index=f.index, dtype="string").replace("", pd.NA)


def years_cap(f: pd.DataFrame, passed: pd.Series, max_years: pd.Series, already_paid: pd.Series) -> pd.Series:
    """True for years that pass their own checks but come after the person's max_years paid years.

    Years the ledger already pays keep their place; the rest follow in (period_start, reference) order.
    """
    c = pd.DataFrame({"person_id": f["person_id"], "prio": np.where(already_paid.to_numpy(dtype=bool), 0, 1),
                      "period_start": f["period_start"], "reference": f["reference"]}, index=f.index).loc[passed]
    c = c.sort_values(["person_id", "prio", "period_start", "reference"], kind="stable")
    earlier = c.groupby("person_id", sort=False).cumcount()
    over = earlier >= max_years.reindex(c.index).fillna(0).astype("int64")
    return over.reindex(f.index, fill_value=False).astype(bool)


def reasons(f: pd.DataFrame, max_years: pd.Series, as_of: pd.Timestamp, already_paid: pd.Series) -> pd.Series:
    """First failing check per agreement year (NA when the year is payable)."""
    reason = record_check_failures(f, as_of)
    capped = years_cap(f, reason.isna(), max_years, already_paid)
    return reason.mask(capped, YEARS_CAP)


def amount_fen(approved: pd.Series, amount_per_year: pd.Series) -> pd.Series:
    """The pricing version's amount per year for a payable year, else 0."""
    return amount_per_year.where(approved, 0).fillna(0).astype("int64")
