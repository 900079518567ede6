"""Publicity (P1) and payability (P3): an approved claim is publicised before the ledger pays it.

A claim enters its department's publicity list the night it is first approved for an amount and department
the ledger does not already pay, and again whenever that amount or department changes. Its period ends
`publicity_working_days` working days of the PRC calendar later (policy of the version that priced it). It is
payable on the first night after the end; a payout the ledger holds for it stands until then. A period of 0
working days means no publicity: payable the night it is approved.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .contract import CLAIM_KEY
from .policy import PolicyBook
from .workdays import publicity_ends

RECORD_COLUMNS = [*CLAIM_KEY, "name", "department_code", "fund", "occupation_code", "level", "amount_fen",
                  "rule_id", "policy_version", "publicity_start", "publicity_end", "working_days"]


def latest(history: pd.DataFrame) -> pd.DataFrame:
    """Each claim's latest publicity record (by start date, then posting order)."""
    if history.empty:
        return pd.DataFrame(columns=[*CLAIM_KEY, "pub_amount", "pub_department", "pub_start", "pub_end", "pub_days"])
    h = history.sort_values(["publicity_start", "seq"], kind="stable").groupby(CLAIM_KEY, sort=False).tail(1)
    return h[[*CLAIM_KEY, "amount_fen", "department_code", "publicity_start", "publicity_end", "working_days"]].rename(
        columns={"amount_fen": "pub_amount", "department_code": "pub_department", "publicity_start": "pub_start",
                 "publicity_end": "pub_end", "working_days": "pub_days"})


def working_days_of(book: PolicyBook, versions: pd.Series) -> pd.Series:
    """P1: the publicity period of each claim, from the policy version that priced it (the latest where none)."""
    fallback = book.versions[-1].publicity_working_days
    days = book.per_version(versions.astype("string").fillna(""), lambda v: v.publicity_working_days)
    return days.fillna(fallback).astype("int64")


def plan(decisions: pd.DataFrame, state: pd.DataFrame, history: pd.DataFrame, as_of: dt.date, book: PolicyBook
         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The publicity records entering tonight, and per approved claim: publicity_end and whether it is payable.

    state: the ledger's claim state (active payout amount and department); history: every publicity record.
    """
    a = decisions.loc[decisions["decision"] == "approved"].reset_index(drop=True)
    active = state[[*CLAIM_KEY, "active_amount", "active_department_code"]] if len(state) else \
        pd.DataFrame(columns=[*CLAIM_KEY, "active_amount", "active_department_code"])
    m = a.merge(active, on=CLAIM_KEY, how="left").merge(latest(history), on=CLAIM_KEY, how="left")
    amount = m["amount_fen"].astype("int64")
    dept = m["department_code"].astype("string")
    paid_as_decided = (m["active_amount"].astype("Int64") == amount).fillna(False).to_numpy(dtype=bool) & \
        (m["active_department_code"].astype("string") == dept).fillna(False).to_numpy(dtype=bool)
    publicised = (m["pub_amount"].astype("Int64") == amount).fillna(False).to_numpy(dtype=bool) & \
        (m["pub_department"].astype("string") == dept).fillna(False).to_numpy(dtype=bool)
    enter = ~paid_as_decided & ~publicised
    today = pd.Timestamp(as_of)
    days = working_days_of(book, m["policy_version"])
    new = m.loc[enter].assign(publicity_start=today, working_days=days[enter])
    new["publicity_end"] = publicity_ends(new["publicity_start"], new["working_days"]) if len(new) else \
        pd.Series(dtype="datetime64[s]")
    new = new[RECORD_COLUMNS].reset_index(drop=True)

    end = pd.to_datetime(m["pub_end"]).astype("datetime64[s]")
    n = m["pub_days"].astype("Int64")
    end.loc[enter] = new["publicity_end"].to_numpy()
    n.loc[enter] = new["working_days"].to_numpy()
    over = (end < today).fillna(False).to_numpy(dtype=bool) | (n == 0).fillna(False).to_numpy(dtype=bool)
    status = m[CLAIM_KEY].assign(publicity_end=end, payable=paid_as_decided | over)
    return new, status


def with_payability(decisions: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """decisions with `payable` (False for an approved claim still in publicity) and its `publicity_end`."""
    out = decisions.merge(status, on=CLAIM_KEY, how="left")
    out["payable"] = out["payable"].astype("boolean").fillna(True).astype(bool)
    out["payable"] = np.where(out["decision"] == "approved", out["payable"], True)
    return out
