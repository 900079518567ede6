"""Vectorised date-interval joins: which records of a person cover an event date."""

from __future__ import annotations

import pandas as pd

OPEN_END = pd.Timestamp("2262-04-11")  # near the datetime64 maximum: an empty end date means "ongoing"


def covering(events: pd.DataFrame, date_col: str, records: pd.DataFrame, start: str,
             end: str | None, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Pairs (event index, record columns) where start <= event date <= end (empty end = ongoing).

    events and records are joined on person_id; the result has column `event` holding the event's index.
    """
    left = pd.DataFrame({"event": events.index, "person_id": events["person_id"].to_numpy(),
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
