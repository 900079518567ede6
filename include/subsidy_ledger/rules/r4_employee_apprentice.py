"""R4 Employee apprentice (职工学徒), subsidy type apprentice_employee.

Seed 四(一)2: "职工学徒原则上按学徒每人每年不低于4000元的标准进行补贴，补贴期限最长不超过3年。"
Agreement year k (k = 1..max_years) runs from start_date + (k-1) years to
start_date + k years; it is paid when it has completed on or before both the run's as-of date and the
agreement's end date, and began inside the policy window (the version in force on its first day prices it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RULE_ID = "R4"
SUBSIDY_TYPE = "apprentice_employee"
KIND = "employee"
# Checks in this order; the first that fails is the reason code.
REASON_CODES = (
    "outside_policy_window",                  # the year began outside every policy version's range
    "max_years_reached",                      # k is beyond the pricing version's max_years
    "agreement_ended_before_year_completed",  # the agreement ended before the year's last day
    "not_completed_yet",                      # the year completes after the as-of date
)


def reference(agreement_id: pd.Series, year: pd.Series) -> pd.Series:
    """Claim reference `<agreement_id>#<k>`."""
    return agreement_id.astype("string") + "#" + year.astype("string")


def reasons(f: pd.DataFrame, max_years: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """First failing check per agreement year (NA when the year is payable)."""
    failed = [
        f["policy_version"].isna(),
        (f["year"] > max_years).fillna(False),
        (f["agreement_end"] < f["period_end"]).fillna(False),
        f["period_end"] > as_of,
    ]
    reason = np.select([np.asarray(c, dtype=bool) for c in failed], REASON_CODES, default="")
    return pd.Series(reason, index=f.index, dtype="string").replace("", pd.NA)


def amount_fen(approved: pd.Series, amount_per_year: pd.Series) -> pd.Series:
    """The pricing version's amount per year for a payable year, else 0."""
    return amount_per_year.where(approved, 0).fillna(0).astype("int64")
