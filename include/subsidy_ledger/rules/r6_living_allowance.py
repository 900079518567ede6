"""R6 Living allowance (生活费补贴), subsidy type living_allowance, from the employment subsidy fund.

Seed 四(二): "对建档立卡低收入农户家庭劳动力、就业困难人员（含残疾人）、零就业家庭成员、"两后生"中的农村学员和
城市低保家庭学员，在培训期间按规定通过就业补助资金同时给予生活费补贴。" For each roster entry of a class filed
in advance, started inside the window and ended on or before the as-of date, whose person on the class start
date is in one of those groups (eligibility.living_allowance_group): attendance_days x per_day, passed or not.
An urban minimum-living adult who is not a school leaver is in none. Reference `<class_id>`; the class's
department pays. Two rosters of one person with overlapping dates hold both entries (holds.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RULE_ID = "R6"
SUBSIDY_TYPE = "living_allowance"
REASON_CODES = (
    "class_not_filed_in_advance",  # the class is unknown, or filed_on is not before start_date (五 开班备案)
    "outside_policy_window",       # the class started outside every policy version's range
    "not_completed_yet",           # the class ends after the as-of date
    "not_eligible_group",          # in none of the plan's groups on the class start date
    "no_attendance",               # attended no day
)


def reasons(f: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """First failing check per roster entry (NA when payable)."""
    failed = [
        ~f["filed_in_advance"].fillna(False).astype(bool),
        f["policy_version"].isna(),
        (f["end_date"] > as_of).fillna(False),
        ~f["qualifying_group"].fillna(False).astype(bool),
        f["paid_days"].fillna(0) <= 0,
    ]
    reason = np.select([np.asarray(c, dtype=bool) for c in failed], REASON_CODES, default="")
    return pd.Series(reason, index=f.index, dtype="string").replace("", pd.NA)


def paid_days(attendance_days: pd.Series, class_days: pd.Series) -> pd.Series:
    """Attended days, never more than the class's calendar days (a roster claiming more is quarantined in
    validation; this bound only keeps the arithmetic safe)."""
    return np.minimum(attendance_days.fillna(0).astype("int64"), class_days.fillna(0).astype("int64"))


def amount_fen(approved: pd.Series, days: pd.Series, per_day_fen: pd.Series) -> pd.Series:
    """days x per-day allowance for a payable entry, else 0."""
    return (days.astype("int64") * per_day_fen.fillna(0).astype("int64")).where(approved, 0).astype("int64")
