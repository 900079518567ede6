"""A detail sheet's rows as XML (sheet_xml.py): the same cells as XlsxWriter's own calls, a chunk at a time."""

import datetime as dt

import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from subsidy_ledger import sheet_xml, workbooks
from subsidy_ledger.workbooks import DATE, INT, MONEY, RATE, Col

COLS = [Col("text", "文字"), Col("money", "金额", MONEY), Col("rate", "上浮", RATE), Col("n", "次数", INT),
        Col("day", "日期", DATE), Col("level", "等级", label="levels")]
HOSTILE = ["a & b < c > d", "_x0041_ stays", "bell\x07 and \x1f", "  leading", "trailing\u3000", "=1+1",
           "张伟\t李娜", None, "x" * 40_000, "\"quoted\" 'text'", "line\nbreak"]


def _rows() -> pd.DataFrame:
    n = len(HOSTILE)
    return pd.DataFrame({
        # in two Arrow chunks, as a column concatenated from parts or read back from parquet is
        "text": pd.concat([pd.Series(HOSTILE[:4], dtype="string"), pd.Series(HOSTILE[4:], dtype="string")],
                          ignore_index=True),
        "money": pd.Series(["1500.00", "-0.01", None, "0.00", "123456789.99"] + ["2.50"] * (n - 5), dtype="string"),
        "rate": pd.Series(["0.20", "0", None, "0.125"] + ["0.10"] * (n - 4), dtype="string"),
        "n": pd.Series([3, None, 0, -4] + [7] * (n - 4), dtype="Int64"),
        "day": pd.Series([pd.Timestamp("2022-07-08"), pd.NaT, pd.Timestamp("1900-01-15"),
                          pd.Timestamp("1900-03-01"), pd.Timestamp("2020-05-01 12:00")] + [pd.Timestamp(
                              "2024-02-29")] * (n - 5)),
        "level": pd.Series([1, 5, None] + [3] * (n - 3), dtype="Int64"),
    })


def _book(rows: pd.DataFrame) -> workbooks.Book:
    totals = pd.DataFrame({"合计": ["总计 grand total"]})
    return workbooks.Book("标题", "HRSS", dt.date(2022, 7, 8), "night", [("部门", "HRSS")], COLS, rows, totals)


def _reference(path, rows: pd.DataFrame) -> None:
    """The same sheet written cell by cell with XlsxWriter's own calls (constant-memory mode, as before)."""
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    ws = wb.add_worksheet("明细")
    f = {DATE: wb.add_format({"num_format": "yyyy-mm-dd"}), MONEY: wb.add_format({"num_format": "#,##0.00"}),
         RATE: wb.add_format({"num_format": "0.00%"}), INT: wb.add_format({"num_format": "0"}), "text": None}
    for i in range(len(rows)):
        for j, c in enumerate(COLS):
            v = workbooks._values(rows, c).iloc[i]
            if v is None or v is pd.NA or v is pd.NaT:
                continue
            if c.kind == DATE:
                ws.write_datetime(i + 1, j, v.to_pydatetime(), f[DATE])
            elif c.kind in (MONEY, RATE):
                ws.write_number(i + 1, j, float(v), f[c.kind])
            elif c.kind == INT:
                ws.write_number(i + 1, j, int(v), f[INT])
            else:
                ws.write_string(i + 1, j, str(v))
    wb.close()


def _cells(path, sheet: str) -> list[tuple]:
    ws = openpyxl.load_workbook(path)[sheet]
    return [tuple((c.value, c.number_format if c.value is not None else None) for c in r)
            for r in ws.iter_rows(min_row=2, max_col=len(COLS))]


@pytest.mark.parametrize("chunk_rows", [sheet_xml.CHUNK_ROWS, 3])
def test_rows_read_back_as_xlsxwriter_writes_them(tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setattr(sheet_xml, "CHUNK_ROWS", chunk_rows)
    rows = _rows()
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    workbooks.write(ours, _book(rows))
    _reference(theirs, rows)
    got, want = _cells(ours, "明细"), _cells(theirs, "明细")
    assert len(got) == len(rows) == len(want)
    assert got == want
    text = [r[0][0] for r in got]
    assert text[0] == "a & b < c > d" and text[3] == "  leading" and text[4] == "trailing\u3000"
    assert text[7] is None and len(text[8]) == sheet_xml.MAX_TEXT and text[5] == "=1+1"
    assert got[0][1] == (1500, "#,##0.00") and got[1][1] == (-0.01, "#,##0.00") and got[2][1] == (None, None)
    assert got[0][4][0] == dt.datetime(2022, 7, 8) and got[4][4][0] == dt.datetime(2020, 5, 1, 12)
    assert got[0][5][0] == "一级/高级技师" and got[2][5] == (None, None)
    ws = openpyxl.load_workbook(ours)["明细"]
    assert ws.max_row == len(rows) + 1 and ws.auto_filter.ref == f"A1:F{len(rows) + 1}"
    assert all(c.data_type != "f" for r in ws.iter_rows() for c in r)


def test_text_that_looks_like_markup_stays_text(tmp_path):
    # XlsxWriter's constant-memory mode passes "<r>...</r>" through as rich-text XML; here it is escaped
    rows = _rows().iloc[:1].assign(text=pd.Series(["<r><t>x</t></r>"], dtype="string"))
    path = tmp_path / "b.xlsx"
    workbooks.write(path, _book(rows))
    assert openpyxl.load_workbook(path)["明细"]["A2"].value == "<r><t>x</t></r>"


def test_a_numeric_column_refuses_text_that_is_not_a_number():
    col = sheet_xml.Column(sheet_xml.NUMBER, 3, pd.Series(["1.00", "12,00"], dtype="string"))
    with pytest.raises(ValueError, match="'12,00'"):
        sheet_xml.cell_content(col)


def test_excel_serial_days_count_the_phantom_leap_day():
    days = pd.Series([pd.Timestamp("1900-01-01"), pd.Timestamp("1900-02-28"), pd.Timestamp("1900-03-01"),
                      pd.Timestamp("2022-07-08"), pd.NaT, pd.Timestamp("2022-07-08 06:00")])
    assert sheet_xml._serials(days).to_pylist() == ["1", "59", "61", "44750", None, "44750.25"]


def test_a_workbook_without_the_sheet_part_is_an_error(tmp_path):
    path = tmp_path / "c.xlsx"
    workbooks.write(path, _book(_rows().iloc[:0]))
    detail = sheet_xml.Detail("xl/worksheets/sheet9.xml", [sheet_xml.Column(
        sheet_xml.TEXT, 1, pd.Series(["x"], dtype="string"))])
    with pytest.raises(ValueError, match="sheet9"):
        sheet_xml.fill(path, [detail])
    assert not path.with_name("c.xlsx.part").exists()
