"""Vectorised date-interval joins: which records of a person cover an event date."""

from __future__ import annotations

import numpy as np
import pandas as pd

OPEN_END = pd.Timestamp("2262-04-11")  # near the datetime64 maximum: an empty end date means "ongoing"


def covering(events: pd.DataFrame, date_col: str, records: pd.DataFrame, start: str,
             end: str | None, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Pairs (event index, record columns) where start <= event date <= end (empty end = ongoing).

    events and records are joined on person_id; the result has column `event` holding the event's index.
    """
    left = pd.DataFrame({"event": events.index, "person_id": events["person_id"].array,
                         "_date": events[date_col].to_numpy()})
    cols = ["person_id", start, *([end] if end else []), *keep]
    right = records[list(dict.fromkeys(cols))]
    pairs = left.merge(right, on="person_id", how="inner")
    ok = pairs[start] <= pairs["_date"]
    if end:
        ok &= pairs["_date"] <= pairs[end].fillna(OPEN_END)
    return pairs.loc[ok].drop(columns=["_date"])


def any_covering(events: pd.DataFrame, date_col: str, records: pd.DataFrame, start: str,
                 end: str | None) -> pd.Series:
    """True for each event that has at least one covering record."""
    hit = covering(events, date_col, records, start, end)["event"].unique()
    return pd.Series(events.index.isin(hit), index=events.index)


def add_months(dates: pd.Series, months) -> pd.Series:
    """dates + n calendar months, the day clamped to the month's end (2020-01-31 + 1 month = 2020-02-29).

    Years are 12 months, so 2020-02-29 + 1 year = 2021-02-28. NaT stays NaT.
    """
    d = pd.to_datetime(dates)
    ok = d.notna()
    total = (d.dt.year.fillna(1970) * 12 + d.dt.month.fillna(1) - 1 + months).astype("int64")
    first = pd.to_datetime(pd.DataFrame({"year": total // 12, "month": total % 12 + 1, "day": 1}))
    day = np.minimum(d.dt.day.fillna(1).astype("int64"), first.dt.days_in_month)
    out = (first + pd.to_timedelta(day - 1, unit="D")).astype(d.dtype)
    return out.where(ok)


def full_months(start: pd.Series, end: pd.Series) -> pd.Series:
    """Whole calendar months from start to end: the largest m with add_months(start, m) <= end (0 if none)."""
    s, e = pd.to_datetime(start), pd.to_datetime(end)
    m = ((e.dt.year - s.dt.year) * 12 + (e.dt.month - s.dt.month)).fillna(0).astype("int64")
    m = m.where(add_months(s, m) <= e, m - 1)
    return m.clip(lower=0).astype("Int64").where(s.notna() & e.notna())
