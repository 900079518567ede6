"""P2 Objections (五 "公示结果"): an objection to a publicised claim holds it while open; upheld, it rejects it.

An objection names its claim by (subsidy_type, reference, person_id). It counts from the day it was lodged;
it is resolved on `resolved_on` with its `outcome`. Dismissed, the claim goes on as decided. An objection
lodged after the as-of date does not count yet. Decided here: an objection counts whenever it was lodged,
during publicity or after payment: upheld after payment, the payout is reversed and becomes a recovery.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ..contract import CLAIM_KEY

RULE_ID = "P2"
OBJECTION_OPEN = "objection_open"      # hold reason
OBJECTION_UPHELD = "objection_upheld"  # rejection reason


def standing(objections: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Per claim named by an objection lodged by as_of: whether one is still open and whether one was upheld."""
    o = objections.loc[objections["lodged_on"] <= pd.Timestamp(as_of)]
    resolved = o["resolved_on"].notna() & (o["resolved_on"] <= pd.Timestamp(as_of)) & o["outcome"].notna()
    flags = pd.DataFrame({k: o[k].astype("string") for k in CLAIM_KEY})
    flags["open"] = (~resolved).to_numpy()
    flags["upheld"] = (resolved & (o["outcome"] == "upheld")).to_numpy()
    flags["objection_ids"] = o["objection_id"].astype("string").to_numpy()
    if flags.empty:
        return pd.DataFrame(columns=[*CLAIM_KEY, "open", "upheld", "objection_ids"])
    g = flags.groupby(CLAIM_KEY, sort=False)
    return pd.DataFrame({"open": g["open"].any(), "upheld": g["upheld"].any(),
                         "objection_ids": g["objection_ids"].agg(";".join)}).reset_index()


def apply(decisions: pd.DataFrame, objections: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Approved claims under an upheld objection become rejected (objection_upheld); under an open one, held
    (objection_open). Rejected and already-held claims stay as they are."""
    s = standing(objections, as_of)
    if s.empty:
        return decisions
    keys = decisions[CLAIM_KEY].astype("string")
    m = keys.merge(s, on=CLAIM_KEY, how="left")
    approved = (decisions["decision"] == "approved").to_numpy()
    upheld = approved & m["upheld"].fillna(False).to_numpy(dtype=bool)
    held = approved & ~upheld & m["open"].fillna(False).to_numpy(dtype=bool)
    out = decisions.copy()
    out.loc[upheld, ["decision", "reason_code", "amount_fen"]] = ["rejected", OBJECTION_UPHELD, 0]
    out.loc[held, ["decision", "reason_code", "amount_fen"]] = ["held", OBJECTION_OPEN, 0]
    return out
