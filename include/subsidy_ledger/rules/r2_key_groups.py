"""R2 Key assistance groups (重点帮扶群体, "城乡失业人员等国家规定的重点帮扶群体参照执行").

Seed 四(一)1. On a date a person is in a key group if any holds: an unemployment registration
open on that date; a low_income record of any category valid on that date; a veteran record
discharged on or before that date.
"""

from __future__ import annotations

import pandas as pd

from ..intervals import any_covering

RULE_ID = "R2"


def in_key_group(events: pd.DataFrame, date_col: str, unemployment: pd.DataFrame,
                 low_income: pd.DataFrame, veterans: pd.DataFrame) -> pd.Series:
    """True for each event whose person is in a key assistance group on the event date."""
    unemployed = any_covering(events, date_col, unemployment, "registered_on", "ended_on")
    poor = any_covering(events, date_col, low_income, "valid_from", "valid_to")
    veteran = any_covering(events, date_col, veterans, "discharged_on", None)
    return unemployed | poor | veteran
