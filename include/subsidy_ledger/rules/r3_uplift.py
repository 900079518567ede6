"""R3 Trade-friction uplift (受中美经贸摩擦影响企业职工培训补贴标准可参照同类职业适当上浮).

Seed 四(二). For R1 and R7: if on the event date (issue date; class start) the person's open insurance
episode is with an employer on the affected-enterprise list (listed_on <= that date), and the date is not
after the uplift's last date, the amount is multiplied by (1 + uplift_rate) after any cap, rounded half up
to 0.01 yuan. A blank rate means the policy's default (decided in POLICY.md).
Decided here: a person with several qualifying episodes gets the highest rate.
"""

from __future__ import annotations

import pandas as pd

from ..intervals import covering
from ..money import apply_uplift

RULE_ID = "R3"


def uplift_units(certs: pd.DataFrame, insurance: pd.DataFrame, affected: pd.DataFrame,
                 default_units: pd.Series, last_issue_date: pd.Series, date_col: str = "issued_on") -> pd.Series:
    """Uplift rate (parts per 10,000) owed to each event (R1: the issue date; R7: the class start); 0 where
    none applies."""
    episodes = covering(certs, date_col, insurance, "start_date", "end_date",
                        keep=("employer_credit_code",))
    listed = episodes.merge(affected[["employer_credit_code", "listed_on", "uplift_rate"]],
                            on="employer_credit_code", how="inner")
    issued = certs[date_col].reindex(listed["event"]).to_numpy()
    listed = listed.loc[listed["listed_on"].to_numpy() <= issued]
    rate = listed["uplift_rate"].fillna(default_units.reindex(listed["event"]).reset_index(drop=True)
                                        .set_axis(listed.index))
    best = rate.groupby(listed["event"]).max()
    units = best.reindex(certs.index).fillna(0).astype("int64")
    in_time = certs[date_col] <= last_issue_date
    return units.where(in_time.fillna(False), 0)


def with_uplift(amount_fen: pd.Series, units: pd.Series) -> pd.Series:
    """Amount after the uplift, rounded half up to the fen."""
    return apply_uplift(amount_fen, units)
