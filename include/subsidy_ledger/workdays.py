"""Working days of the official PRC calendar (法定节假日 and 调休 working weekends), for the publicity period (P1).

The calendar is the `chinesecalendar` package, which follows the State Council's yearly holiday notices; it
covers the years its release knows, and a date beyond them is an error, never a guess.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import chinese_calendar
import pandas as pd


class CalendarError(RuntimeError):
    """The PRC calendar package has no data for a date the run needs."""


@lru_cache(maxsize=4096)
def add_working_days(start: dt.date, n: int) -> dt.date:
    """The n-th working day after start (start itself when n is 0); 调休 weekends count, holidays do not."""
    day, left = start, n
    try:
        while left > 0:
            day += dt.timedelta(days=1)
            if chinese_calendar.is_workday(day):
                left -= 1
    except NotImplementedError as exc:
        raise CalendarError(f"the PRC holiday calendar (chinesecalendar {chinese_calendar.__version__}) has no data "
                            f"for {day.year}: install a newer release before publicising claims on {start}") from exc
    return day


def publicity_ends(starts: pd.Series, days: pd.Series) -> pd.Series:
    """Per row, the publicity end: `days` working days after `starts` (few distinct pairs: computed once each)."""
    pairs = pd.DataFrame({"s": pd.to_datetime(starts).dt.date, "n": days.astype("int64")})
    ends = {k: add_working_days(k[0], int(k[1])) for k in set(zip(pairs["s"], pairs["n"], strict=True))}
    out = [ends[k] for k in zip(pairs["s"], pairs["n"], strict=True)]
    return pd.to_datetime(pd.Series(out, index=starts.index, dtype="object"))
