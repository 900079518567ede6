"""Workbooks for people (Excel/WPS): a cover with a sign-off block, the rows with Chinese headers and labels,
totals per subsidy type and fund with a grand total, and the glossary of reasons.

The CSVs beside them stay for machines (CONTRACT.md's English columns); these are what a clerk prints,
signs and files. Dates are dates, amounts are numbers; text is never turned into a formula.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd
import xlsxwriter

from . import labels, sheet_xml

# column kinds: text, date, money (yuan text "1500.00"), int, rate (decimal text "0.20")
TEXT, DATE, MONEY, INT, RATE = "text", "date", "money", "int", "rate"
# Excel and WPS open at most 1,048,576 rows a sheet (one is the header); XlsxWriter silently skips cells past
# it, so a province's detail goes on in further sheets instead of losing rows
SHEET_ROWS = 1_048_575
_XML_KIND = {TEXT: sheet_xml.TEXT, DATE: sheet_xml.DATE, MONEY: sheet_xml.NUMBER, RATE: sheet_xml.NUMBER,
             INT: sheet_xml.NUMBER}


@dataclass(frozen=True)
class Col:
    """One column of a detail sheet: the frame's column, its Chinese header, kind, width, label table."""

    name: str
    zh: str
    kind: str = TEXT
    width: float = 12
    label: str | None = None  # a labels.KINDS table: the cell shows the Chinese label, the header the code


@dataclass
class Book:
    """What one workbook shows: a title, the cover's lines, the rows and the totals."""

    title: str
    department: str
    as_of: dt.date
    run_id: str
    cover: list[tuple[str, object]]
    columns: list[Col]
    rows: pd.DataFrame
    totals: pd.DataFrame  # already labelled; the last row is the grand total
    totals_money: tuple[str, ...] = ()
    sheet: str = "明细"
    notes: list[str] = field(default_factory=list)


def _header(c: Col) -> str:
    return f"{c.zh}\n{c.name}"


def _values(frame: pd.DataFrame, c: Col) -> pd.Series:
    """A detail column's values as shown: labelled where the column has labels, missing where the frame has none."""
    s = frame[c.name] if c.name in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
    return labels.series(c.label, s).where(s.notna()) if c.label else s


def detail_sheets(book: Book, sheet_rows: int = SHEET_ROWS) -> list[tuple[str, int, int]]:
    """(sheet name, first row, end row) of each detail sheet: 明细, 明细 (2), ... of at most sheet_rows rows."""
    n = len(book.rows)
    return [(book.sheet if k == 0 else f"{book.sheet} ({k + 1})", start, min(start + sheet_rows, n))
            for k, start in enumerate(range(0, max(n, 1), sheet_rows))]


def write(path: Path, book: Book, sheet_rows: int = SHEET_ROWS) -> None:
    """Write the workbook: 封面 (cover), the detail sheet(s), 合计 (totals) and 原因说明 (reasons)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    # A fixed creation date keeps the bytes identical when a run is repeated.
    wb.set_properties({"created": dt.datetime.combine(book.as_of, dt.time()), "title": book.title})
    f = _formats(wb)
    sheets = detail_sheets(book, sheet_rows)
    notes = list(book.notes)
    if len(sheets) > 1:
        n, k = f"{len(book.rows):,}", len(sheets)
        notes.append(f"明细共 {n} 行，分 {k} 张工作表（{sheets[0][0]} 至 {sheets[-1][0]}，"
                     f"每张至多 {sheet_rows:,} 行）。"
                     f"The detail's {n} rows fill {k} sheets of at most {sheet_rows:,} rows.")
    _cover(wb.add_worksheet("封面"), book, f, notes)
    details = []  # (worksheet part, its rows, each column with its format)
    for name, start, end in sheets:
        ws = wb.add_worksheet(name)
        details.append((f"xl/worksheets/sheet{len(wb.worksheets())}.xml", book.rows.iloc[start:end],
                        _detail(ws, book.columns, end - start, f)))
    _totals(wb.add_worksheet("合计"), book, f)
    _reasons(wb.add_worksheet("原因说明"), f)
    wb.close()
    # the rows themselves, a column at a time: XlsxWriter assigned each format its style index on closing
    sheet_xml.fill(path, [sheet_xml.Detail(part, [
        sheet_xml.Column(_XML_KIND[c.kind], _style(fmt), _values(rows, c)) for c, fmt in cols])
        for part, rows, cols in details])


def _formats(wb) -> dict:
    base = {"font_name": "宋体", "font_size": 9}
    return {
        "title": wb.add_format(base | {"bold": True, "font_size": 14}),
        "head": wb.add_format(base | {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7",
                                      "border": 1}),
        "text": wb.add_format(base),
        "date": wb.add_format(base | {"num_format": "yyyy-mm-dd"}),
        "money": wb.add_format(base | {"num_format": "#,##0.00"}),
        "rate": wb.add_format(base | {"num_format": "0.00%"}),
        "int": wb.add_format(base | {"num_format": "0"}),
        "bold_money": wb.add_format(base | {"bold": True, "num_format": "#,##0.00", "top": 1}),
        "bold": wb.add_format(base | {"bold": True, "top": 1}),
        "label": wb.add_format(base | {"bold": True}),
        "sign": wb.add_format(base | {"bottom": 1}),
        "cover_money": wb.add_format(base | {"num_format": "#,##0.00", "align": "left"}),
        "cover_int": wb.add_format(base | {"num_format": "0", "align": "left"}),
        "cover_date": wb.add_format(base | {"num_format": "yyyy-mm-dd", "align": "left"}),
    }


def _print_setup(ws, header_rows: int = 1) -> None:
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # fitted to the width, as many pages down as it needs
    ws.repeat_rows(0, header_rows - 1)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.set_footer("&C第 &P 页，共 &N 页")


def _cover(ws, book: Book, f: dict, notes: list[str]) -> None:
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 40)
    ws.set_portrait()
    ws.set_paper(9)
    ws.fit_to_pages(1, 1)  # one page to sign
    ws.write_string(0, 0, book.title, f["title"])
    row = 2
    for label, value in book.cover:
        ws.write_string(row, 0, label, f["label"])
        if isinstance(value, Decimal):
            ws.write_number(row, 1, float(value), f["cover_money"])
        elif isinstance(value, int):
            ws.write_number(row, 1, value, f["cover_int"])
        elif isinstance(value, dt.date):
            ws.write_datetime(row, 1, dt.datetime.combine(value, dt.time()), f["cover_date"])
        else:
            ws.write_string(row, 1, str(value), f["text"])
        row += 1
    row += 1
    for note in notes:
        ws.write_string(row, 0, note, f["text"])
        row += 1
    row += 1
    for who in ("经办人 (prepared by)", "审核人 (checked by)", "负责人 (approved by)"):
        ws.write_string(row, 0, who, f["label"])
        ws.write_string(row, 1, "", f["sign"])
        ws.write_string(row + 1, 0, "日期 (date)", f["text"])
        ws.write_string(row + 1, 1, "", f["sign"])
        row += 3


def _detail(ws, cols: list[Col], n_rows: int, f: dict) -> list[tuple[Col, object]]:
    """A detail sheet's header, widths, filter and print set-up; its rows are filled in after closing (fill)."""
    fmt = {DATE: f["date"], MONEY: f["money"], RATE: f["rate"], INT: f["int"], TEXT: f["text"]}
    for j, c in enumerate(cols):
        ws.set_column(j, j, c.width, fmt[c.kind])  # the column's format is its cells' style, blank cells' too
    ws.set_row(0, 30)
    for j, c in enumerate(cols):
        ws.write_string(0, j, _header(c), f["head"])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(n_rows, 1), len(cols) - 1)
    _print_setup(ws)
    return [(c, fmt[c.kind]) for c in cols]


def _style(fmt) -> int:
    """The style index XlsxWriter gave a column's format when it wrote the sheet."""
    if fmt.xf_index is None:
        raise RuntimeError("XlsxWriter gave a detail column's format no style index; the rows cannot be written")
    return fmt.xf_index


def _totals(ws, book: Book, f: dict) -> None:
    t = book.totals
    for j, c in enumerate(t.columns):
        ws.set_column(j, j, 18)
        ws.write_string(0, j, c, f["head"])
    ws.set_row(0, 30)
    _print_setup(ws)
    for i, row in enumerate(t.itertuples(index=False), start=1):
        grand = i == len(t)
        for j, (c, v) in enumerate(zip(t.columns, row, strict=True)):
            if v is None or v is pd.NA:
                continue
            if c in book.totals_money:
                ws.write_number(i, j, float(v), f["bold_money" if grand else "money"])
            elif isinstance(v, (int,)) and not isinstance(v, bool):
                ws.write_number(i, j, v, f["bold" if grand else "int"])
            else:
                ws.write_string(i, j, str(v), f["bold" if grand else "text"])


def _reasons(ws, f: dict) -> None:
    g = labels.glossary()
    heads = ["代码\ncode", "类别\nkind", "说明\nexplanation", "方案条款\nclause"]
    for j, (h, w) in enumerate(zip(heads, (34, 12, 60, 30), strict=True)):
        ws.set_column(j, j, w)
        ws.write_string(0, j, h, f["head"])
    ws.set_row(0, 30)
    _print_setup(ws)
    kind = {"rejected": "不予补贴", "held": "暂缓", "reversal": "冲销"}
    for i, r in enumerate(g.itertuples(index=False), start=1):
        for j, v in enumerate((r.code, kind[r.kind], r.zh, r.clause)):
            ws.write_string(i, j, v, f["text"])


def totals_by(frame: pd.DataFrame, keys: list[tuple[str, str, str | None]], sums: list[tuple[str, str]],
              counts: list[tuple[str, pd.Series]] = (), distinct: list[tuple[str, str]] = ()
              ) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Totals per key pair (labelled, code beside), a subtotal per value of the first key (the fund) and a
    grand total last. sums: (integer-fen column, header), summed exactly into yuan; counts: (header, boolean
    mask); distinct: (column, header), the distinct values in each group (people are not counted twice)."""
    work = frame.assign(**{h: pd.Series(m, index=frame.index).astype("int64") for h, m in counts})

    def row(cells: list, part: pd.DataFrame) -> dict:
        r = {header: cell for (_, header, _), cell in zip(keys, cells, strict=True)}
        r |= {h: int(part[h].sum()) for h, _ in counts}
        r |= {header: int(part[c].nunique()) for c, header in distinct}
        return r | {header: Decimal(int(part[c].astype("int64").sum())) / 100 for c, header in sums}

    def name(kind: str | None, v) -> str:
        return f"{labels.zh(kind, v) or v} {v}" if kind else str(v)

    rows, first = [], keys[0]
    for v1, part1 in work.groupby(first[0], sort=True):
        for v2, part2 in (part1.groupby(keys[1][0], sort=True) if len(keys) > 1 else []):
            rows.append(row([name(first[2], v1), name(keys[1][2], v2)], part2))
        rows.append(row([f"{name(first[2], v1)} 小计 subtotal"] + [None] * (len(keys) - 1), part1))
    rows.append(row(["总计 grand total"] + [None] * (len(keys) - 1), work))
    out = pd.DataFrame(rows).astype(object)
    return out.where(out.notna(), None), tuple(h for _, h in sums)
