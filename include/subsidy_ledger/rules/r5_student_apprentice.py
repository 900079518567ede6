"""R5 Student apprentice (学生学徒), subsidy type apprentice_student.

Seed 四(一)2: "学生学徒补贴金额一般按学徒月实习津贴标准确定，每人每年不高于3000元的标准进行补贴，
补贴期限最长不超过1年。" (校企合作: a school partner is required.)
Once per person: min(monthly_allowance x full calendar months from start_date to the earlier of end_date and
start_date + months_counted months, cap), paid when that earlier date is on or before the as-of date and
start_date is inside the policy window. Reference `<agreement_id>#1`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RULE_ID = "R5"
SUBSIDY_TYPE = "apprentice_student"
KIND = "student"
RECORD_CHECKS = (
    "outside_policy_window",   # start_date outside every policy version's range
    "no_school_partner",       # no school named: the plan requires 校企合作
    "not_completed_yet",       # the counted period ends after the as-of date
    "no_full_month_served",    # not one whole month between start and the period's end
    "no_allowance_paid",       # the agreement states no (or a zero) monthly allowance
)
ONCE = "already_paid_once"     # the person has an approved student-apprentice claim on another agreement
REASON_CODES = (*RECORD_CHECKS, ONCE)


def record_check_failures(f: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """First failing check among the agreement's own ones (NA when they all pass)."""
    failed = [
        f["policy_version"].isna(),
        ~f["school_partner"].fillna(False).astype(bool),
        f["period_end"] > as_of,
        (f["months_served"].fillna(0) <= 0),
        (f["monthly_allowance_fen"].fillna(0) <= 0),
    ]
    reason = np.select([np.asarray(c, dtype=bool) for c in failed], RECORD_CHECKS, default="")
    return pd.Series(reason, index=f.index, dtype="string").replace("", pd.NA)


def reasons(f: pd.DataFrame, as_of: pd.Timestamp, already_paid: pd.Series) -> pd.Series:
    """First failing check per student agreement (NA when payable); only the person's first payable
    agreement is paid (the one the ledger pays, else the earliest start, then agreement id)."""
    reason = record_check_failures(f, as_of)
    c = pd.DataFrame({"person_id": f["person_id"], "prio": np.where(already_paid.to_numpy(dtype=bool), 0, 1),
                      "period_start": f["period_start"], "reference": f["reference"]}, index=f.index)
    c = c.loc[reason.isna()].sort_values(["person_id", "prio", "period_start", "reference"], kind="stable")
    again = c["person_id"].duplicated().reindex(f.index, fill_value=False).astype(bool)
    return reason.mask(again, ONCE)


def amount_fen(approved: pd.Series, months: pd.Series, allowance_fen: pd.Series, cap_fen: pd.Series) -> pd.Series:
    """min(allowance x months, cap) for a payable agreement, else 0 (integer fen: no rounding arises)."""
    raw = months.fillna(0).astype("int64") * allowance_fen.fillna(0).astype("int64")
    capped = np.minimum(raw, cap_fen.fillna(0).astype("int64"))
    return pd.Series(capped, index=months.index).where(approved, 0).astype("int64")
