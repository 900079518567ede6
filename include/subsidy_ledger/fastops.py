"""Vector operations pandas is slow at on Arrow-backed strings."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def isin(values: pd.Series, candidates) -> pd.Series:
    """values.isin(candidates) for text, computed by Arrow (pandas converts each candidate in Python)."""
    arr = pa.array(values.to_numpy(dtype=object, na_value=None), type=pa.string())
    cand = candidates.to_numpy(dtype=object, na_value=None) if isinstance(candidates, pd.Series) else list(candidates)
    hit = pc.is_in(arr, value_set=pa.array(cand, type=pa.string()), skip_nulls=True)
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)
