"""A detail sheet's rows as worksheet XML, built a column at a time with Arrow instead of a library call per cell.

XlsxWriter writes each workbook (cover, header row, widths, filter, print set-up, totals, reasons). Its call
per cell costs about 10 µs, which made the largest night's workbooks most of the export. So XlsxWriter writes a
detail sheet's header only, and `fill` puts the rows into that sheet afterwards. They are written the way
XlsxWriter's constant-memory mode writes them: inline strings, control characters as `_xHHHH_`, leading or
trailing whitespace preserved, text cut at Excel's 32,767 characters, dates as Excel serial numbers.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from xlsxwriter.utility import xl_col_to_name

from .arrow_text import as_text, bytes_in, joined

TEXT, NUMBER, DATE = "text", "number", "date"
CHUNK_ROWS = 50_000  # rows built at once: bounds the XML held in memory to some tens of MiB
# zlib's fastest level for the rows' part: 236 MB of XML (300,000 rows) in 0.7 s instead of 2.4 s at the default
# level, for a file 21 % larger; the workbook's other, small parts keep the default
ROWS_COMPRESSLEVEL = 1
MAX_TEXT = 32_767  # Excel's longest cell text; XlsxWriter cuts longer text to it too
_EXCEL_EPOCH = pd.Timestamp("1899-12-31")
_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
_ESCAPED_ESCAPE = r"(_x[0-9a-fA-F]{4}_)"  # a literal "_x0041_" would read back as "A": Excel escapes its "_"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
# Python's \s (XlsxWriter's test for whitespace to preserve) in RE2: ASCII space, the Unicode separators, NEL
_EDGE_SPACE = r"^[\s\p{Z}\x{85}]|[\s\p{Z}\x{85}]$"
_CONTROL_BYTES = [*range(0x00, 0x09), *range(0x0B, 0x20)]
# the UTF-8 bytes _EDGE_SPACE's characters begin with: ASCII whitespace, then the lead bytes of U+0085 and
# U+00A0 (C2), U+1680 (E1), U+2000-U+205F (E2) and U+3000 (E3)
_SPACE_BYTES = [*range(0x09, 0x0E), *range(0x1C, 0x21), 0xC2, 0xE1, 0xE2, 0xE3]


@dataclass(frozen=True)
class Column:
    """One column's cells: its kind, the style index of its format, and its values (None/NA: no cell)."""

    kind: str
    style: int
    values: pd.Series


@dataclass(frozen=True)
class Detail:
    """The rows to put into one worksheet part of a workbook XlsxWriter wrote with the header row only."""

    part: str  # the zip member, xl/worksheets/sheetN.xml
    columns: list[Column]
    first_row: int = 2  # Excel's row number of the first data row (row 1 is the header)


def cell_content(column: Column) -> pa.Array:
    """The text inside each cell's <c> element after its reference (null: no cell), for a column or a chunk of it."""
    if column.kind == TEXT:
        return _text_cells(as_text(column.values), column.style)
    if column.kind == DATE:
        number = _serials(column.values)
    else:
        number = as_text(column.values)
        bad = pc.invert(pc.fill_null(pc.match_substring_regex(number, _NUMBER), True))
        if pc.any(bad).as_py():
            raise ValueError(f"not a number for a numeric cell: {pc.filter(number, bad)[0].as_py()!r}")
    return pc.binary_join_element_wise(f'" s="{column.style}"><v>', number, "</v></c>", "")


def rows_xml(columns: list[Column], first_row: int = 2, chunk_rows: int | None = None):
    """The <row> elements of the columns' rows, as UTF-8 bytes a chunk of rows (default CHUNK_ROWS) at a time."""
    n = len(columns[0].values) if columns else 0
    chunk_rows = chunk_rows or CHUNK_ROWS
    letters = [xl_col_to_name(j) for j in range(len(columns))]
    for start in range(0, n, chunk_rows):
        end = min(start + chunk_rows, n)
        numbers = pa.array(np.arange(first_row + start, first_row + end, dtype=np.int64)).cast(pa.string())
        cells = []
        for letter, column in zip(letters, columns, strict=True):
            part = Column(column.kind, column.style, column.values.iloc[start:end])
            cells.append(pc.binary_join_element_wise(f'<c r="{letter}', numbers, cell_content(part), ""))
        rows = pc.binary_join_element_wise('<row r="', numbers, '">', *cells, "</row>", "",
                                           null_handling="replace", null_replacement="")
        yield joined(rows)


def fill(path: Path, details: list[Detail], chunk_rows: int | None = None) -> None:
    """Put each detail's rows into its worksheet part of the workbook at `path` (rewritten in place)."""
    wanted = {d.part: d for d in details if d.columns and len(d.columns[0].values)}
    if not wanted:
        return
    part_path = path.with_name(path.name + ".part")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(
            part_path, "w", zipfile.ZIP_DEFLATED, compresslevel=ROWS_COMPRESSLEVEL) as dst:
        for info in src.infolist():
            detail = wanted.pop(info.filename, None)
            if detail is None:
                # the member's own date and type, so that a repeated run gives the same bytes
                out = zipfile.ZipInfo(info.filename, info.date_time)
                out.compress_type, out.external_attr = info.compress_type, info.external_attr
                dst.writestr(out, src.read(info))
                continue
            head, tail = _split(src.read(info).decode("utf-8"), detail)
            # opened by name: the file's compression level and ZipInfo's fixed date (1980-01-01), as XlsxWriter's
            with dst.open(info.filename, "w", force_zip64=True) as fh:
                fh.write(head.encode("utf-8"))
                for chunk in rows_xml(detail.columns, detail.first_row, chunk_rows):
                    fh.write(chunk)
                fh.write(tail.encode("utf-8"))
    if wanted:
        part_path.unlink()
        raise ValueError(f"{path.name}: no worksheet part {sorted(wanted)} to put rows into")
    part_path.replace(path)


def _split(sheet: str, detail: Detail) -> tuple[str, str]:
    """The sheet's XML before and after where the rows go, its dimension extended to the last row."""
    at = sheet.find("</sheetData>")
    if at < 0:
        raise ValueError(f"{detail.part}: no sheetData to put rows into")
    last = f"{xl_col_to_name(len(detail.columns) - 1)}{detail.first_row + len(detail.columns[0].values) - 1}"
    head = re.sub(r'<dimension ref="([A-Z]+[0-9]+)(:[A-Z]+[0-9]+)?"/>', rf'<dimension ref="\1:{last}"/>',
                  sheet[:at], count=1)
    return head, sheet[at:]


def _text_cells(text: pa.Array, style: int) -> pa.Array:
    """Inline-string cells of text, escaped as XlsxWriter escapes it."""
    # byte lengths first: text of at most MAX_TEXT bytes has at most MAX_TEXT characters
    if (pc.max(pc.binary_length(text)).as_py() or 0) > MAX_TEXT and pc.max(pc.utf8_length(text)).as_py() > MAX_TEXT:
        text = pc.utf8_slice_codeunits(text, 0, MAX_TEXT)
    present = bytes_in(text)  # most columns (codes, amounts, names) need few of the passes below: skip the others
    if present[ord("_")] and pc.any(pc.match_substring_regex(text, _ESCAPED_ESCAPE)).as_py():
        text = pc.replace_substring_regex(text, _ESCAPED_ESCAPE, r"_x005F\1")
    if present[_CONTROL_BYTES].any():
        control = pc.fill_null(pc.match_substring_regex(text, _CONTROL.pattern), False)
        if pc.any(control).as_py():  # rare: the few such values one by one
            fixed = [_CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", v) if hit else v
                     for v, hit in zip(text.to_pylist(), control.to_pylist(), strict=True)]
            text = pa.array(fixed, type=pa.string())
    preserve = (pc.fill_null(pc.match_substring_regex(text, _EDGE_SPACE), False) if present[_SPACE_BYTES].any()
                else pa.scalar(False))
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        if present[ord(raw)]:
            text = pc.replace_substring(text, raw, entity)
    opening = pc.if_else(preserve, f'" s="{style}" t="inlineStr"><is><t xml:space="preserve">',
                         f'" s="{style}" t="inlineStr"><is><t>')
    return pc.binary_join_element_wise(opening, text, "</t></is></c>", "")


def _serials(values: pd.Series) -> pa.Array:
    """Excel's serial day numbers (1900 date system, its phantom 29 February 1900 included), as text."""
    ts = pd.to_datetime(values, errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    days = ((ts - _EXCEL_EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype="float64", na_value=np.nan)
    days = np.where(days > 59, days + 1, days)
    whole = np.isfinite(days) & (days == np.floor(days))
    text = np.full(len(days), None, dtype=object)
    text[whole] = days[whole].astype(np.int64).astype(str)
    part = np.isfinite(days) & ~whole
    text[part] = [f"{v:.16G}" for v in days[part]]
    return pa.array(text, type=pa.string())
