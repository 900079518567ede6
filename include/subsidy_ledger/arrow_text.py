"""Text files built a column at a time with Arrow's string kernels (the workbooks' rows, the CSV extracts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def as_text(values: pd.Series) -> pa.Array:
    """The values as an Arrow string array, missing values null."""
    s = values.astype("string")
    text = pa.array(s.array, type=pa.string()) if len(s) else pa.array([], type=pa.string())
    # a column read back in pieces is a chunked array: one array, so that the columns line up row by row
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def joined(rows: pa.Array) -> memoryview:
    """The strings of an Arrow array end to end (a null as nothing): a view of its data buffer, not a copy per value."""
    if not len(rows) or rows.buffers()[2] is None:
        return memoryview(b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset:rows.offset + len(rows) + 1]
    return memoryview(rows.buffers()[2])[offsets[0]:offsets[-1]]


def bytes_in(text: pa.Array) -> np.ndarray:
    """Which of the 256 byte values occur in the strings' UTF-8 (a null as nothing): one pass that lets a caller
    skip the kernels a column does not need (an ASCII byte never occurs inside another character's UTF-8)."""
    return np.bincount(np.frombuffer(joined(text), dtype=np.uint8), minlength=256) > 0
