"""CSV extracts byte for byte as pandas' `to_csv` writes them, built a column at a time with Arrow.

pandas hands every field to Python's csv writer, about a microsecond each: a 1,000,000-person night's department
CSVs took about 10 s of the export (1.5 s this way). Here each column becomes text at once: integers in decimal,
booleans as True/False, missing values empty, a field quoted (its quotes doubled) when it holds a comma, a quote,
CR or LF, which is what the csv module's QUOTE_MINIMAL does with the "\\r\\n" line ending. A frame with a column
of another type (floats, dates, mixed objects), or with a single column (the csv module quotes a row that is one
empty field), is left to pandas.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types

from .arrow_text import as_text, bytes_in, joined

LINE_END = "\r\n"
CHUNK_ROWS = 50_000  # rows built at once: the text held in memory stays a few MiB (200,000 added 76 MiB to the peak)
_QUOTE_CHARS = '",\r\n'  # what makes the csv module quote a field (delimiter, quote character, line ending)
_QUOTED = f"[{_QUOTE_CHARS}]"
_QUOTED_BYTES = list(_QUOTE_CHARS.encode())


def kind(values: pd.Series) -> str | None:
    """How a column is written: "bool", "int" or "text", or None for a type this module leaves to pandas."""
    dtype = values.dtype
    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype):
        return "int"
    if isinstance(dtype, pd.StringDtype) or (types.is_object_dtype(dtype) and types.infer_dtype(values, skipna=True)
                                             in ("string", "empty")):
        return "text"
    return None


def fields(values: pd.Series, how: str) -> pa.Array:
    """One column's fields as they go into the file (`how`: its kind); only text can need quoting."""
    if how == "bool":
        text = pc.if_else(pa.array(values, type=pa.bool_()), "True", "False")
    elif how == "int":
        text = pa.array(values, type=pa.int64()).cast(pa.string())
    else:
        text = quoted(as_text(values))
    return pc.fill_null(text, "")


def quoted(text: pa.Array) -> pa.Array:
    """Text fields quoted where the csv module quotes them, with their quotes doubled."""
    # most columns (codes, amounts, dates) hold none of those characters: one pass over their bytes says so
    if not bytes_in(text)[_QUOTED_BYTES].any():
        return text
    need = pc.fill_null(pc.match_substring_regex(text, _QUOTED), False)
    if not pc.any(need).as_py():
        return text
    return pc.if_else(need, pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', ""), text)


def lines(frame: pd.DataFrame, chunk_rows: int | None = None) -> Iterator[memoryview] | None:
    """The file's bytes (UTF-8, no BOM), header first, a chunk of rows at a time; None when pandas must write it."""
    if len(frame.columns) < 2 or not all(isinstance(c, str) for c in frame.columns):
        return None
    kinds = [kind(frame[c]) for c in frame.columns]  # every column's type checked before a byte is written
    if None in kinds:
        return None
    chunk_rows = chunk_rows or CHUNK_ROWS

    def chunks() -> Iterator[memoryview]:
        header = ",".join(quoted(pa.array(list(frame.columns), type=pa.string())).to_pylist())
        yield memoryview((header + LINE_END).encode("utf-8"))
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start:start + chunk_rows]
            row = pc.binary_join_element_wise(*(fields(part[c], k) for c, k in zip(frame.columns, kinds,
                                                                                    strict=True)), ",")
            yield joined(pc.binary_join_element_wise(row, LINE_END, ""))
    return chunks()


def write(frame: pd.DataFrame, path: Path) -> None:
    """The frame as a CSV file for Excel: UTF-8 with BOM, CRLF, empty cells for missing values, no index."""
    body = lines(frame)
    if body is None:
        frame.to_csv(path, index=False, encoding="utf-8-sig", lineterminator=LINE_END)
        return
    with open(path, "wb") as fh:
        fh.write(codecs.BOM_UTF8)
        for chunk in body:
            fh.write(chunk)
