"""Workbooks for people (workbooks.py, export's books): formats, labels, totals equal to the lines, cover."""

import datetime as dt
import hashlib
import hmac
from decimal import Decimal

import openpyxl
import pandas as pd
import pytest
from subsidy_ledger import export, workbooks
from subsidy_ledger.identifiers import person_codes

AS_OF = dt.date(2022, 7, 8)
A, B = "330503199001011237", "330503198502021237"  # both masked 330503********1237
C = "330503198001011234"


def _lines() -> pd.DataFrame:
    rows = [  # (id, entry, reverses, type, fund, person, ref, occ, level, fen, rule)
        ("PO1", "payout", None, "skill_upgrade", "skills_upgrade_account", A, "C-1", "4-01-01", 3, 200000, "R1"),
        ("PO2", "payout", None, "skill_upgrade", "skills_upgrade_account", B, "C-2", "4-01-01", 4, 150000, "R1"),
        ("RV3", "reversal", "PO0", "skill_upgrade", "skills_upgrade_account", C, "C-3", "4-01-01", 5, -100000, "R1"),
        ("PO4", "payout", None, "living_allowance", "employment_subsidy_fund", C, "K-1", "5-01", 5, 69001, "R6"),
        ("PO5", "payout", None, "skill_upgrade", "skills_upgrade_account", A, "=cmd|' /C calc'!A0", "4-01-01", 2,
         400001, "R1"),
    ]
    f = pd.DataFrame(rows, columns=["payout_id", "entry_type", "reverses_payout_id", "subsidy_type", "fund",
                                    "person_id", "reference", "occupation_code", "level", "amount_fen", "rule_id"])
    return f.assign(posted_on=pd.Timestamp(AS_OF), department_code="HRSS",
                    name=["张伟", "张伟", "李娜", "李娜", "张伟"],
                    uplift_units=[2000, 0, 0, 0, 0], policy_version="nanxun-2019", publicity_end=pd.Timestamp(
                        "2022-07-07"), run_id="night", payee_type="person")


def _decisions() -> pd.DataFrame:
    return pd.DataFrame({"subsidy_type": ["skill_upgrade"] * 3 + ["living_allowance"],
                         "reference": ["C-1", "C-2", "C-3", "K-1"], "person_id": [A, B, C, C],
                         "decision": ["approved", "approved", "rejected", "approved"],
                         "reason_code": [None, None, "annual_cap_reached", None],
                         "event_date": pd.to_datetime(["2020-05-01", "2020-06-01", "2020-07-01", "2020-03-02"])})


@pytest.fixture(scope="module")
def ledger_book(tmp_path_factory):
    ctx = export.Context(person_key=b"k", occupations={"4-01-01": "电工"}, run_id="night")
    rows = export.ledger_extract(_lines(), _decisions(), ctx)
    path = tmp_path_factory.mktemp("wb") / "ledger.xlsx"
    workbooks.write(path, export.ledger_book("HRSS", AS_OF, "night", rows))
    return path, rows


def test_ledger_workbook_is_set_up_for_people(ledger_book):
    path, rows = ledger_book
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["封面", "明细账", "合计", "原因说明"]
    ws = wb["明细账"]
    head = [c.value for c in ws[1]]
    assert head[0] == "支付编号\npayout_id" and "金额（元）\namount" in head and "等级\nlevel" in head
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:T{len(rows) + 1}"
    assert ws.page_setup.orientation == "landscape" and ws.sheet_properties.pageSetUpPr.fitToPage
    # fitToWidth 1 is the file format's default, which XlsxWriter leaves out
    assert (ws.page_setup.fitToWidth or 1) == 1 and ws.page_setup.fitToHeight == 0 and ws.print_title_rows == "$1:$1"
    assert ws.column_dimensions["A"].width > 20
    col = {h.split("\n")[1]: i for i, h in enumerate(head)}
    first = [c.value for c in ws[2]]
    assert isinstance(first[col["posted_on"]], dt.datetime) and first[col["posted_on"]].date() == AS_OF
    assert isinstance(first[col["event_date"]], dt.datetime) and first[col["event_date"]].date() == dt.date(2020, 5, 1)
    assert first[col["amount"]] == 2000 and ws.cell(2, col["amount"] + 1).number_format == "#,##0.00"
    assert first[col["uplift_rate"]] == pytest.approx(0.2)
    assert (first[col["subsidy_type"]], first[col["fund"]], first[col["level"]], first[col["entry_type"]]) == (
        "技能提升补贴", "职业技能提升专账", "三级/高级工", "支付")
    assert first[col["occupation_name"]] == "电工"
    rev = [c.value for c in ws[4]]
    assert rev[col["entry_type"]] == "冲销"
    assert rev[col["reversal_text"]] == "本年度已享受3次，达到每人每年次数上限（四(一)1）"
    # hostile text stays text
    assert all(c.data_type != "f" for s in wb.worksheets for r in s.iter_rows() for c in r)


def test_totals_equal_the_lines_per_fund_and_type(ledger_book):
    path, rows = ledger_book
    wb = openpyxl.load_workbook(path)
    t = list(wb["合计"].iter_rows(values_only=True))
    head, body = t[0], t[1:]
    net = head.index("净额（元） net")
    by = {(r[0], r[1]): r for r in body}
    assert by[("职业技能提升专账 skills_upgrade_account", "技能提升补贴 skill_upgrade")][net] == pytest.approx(6500.01)
    assert body[-1][0] == "总计 grand total"
    total = sum(Decimal(a) for a in rows["amount"])
    assert Decimal(str(body[-1][net])) == total == Decimal("7190.02")
    subtotals = [r for r in body if r[0].endswith("小计 subtotal")]
    assert sum(Decimal(str(r[net])) for r in subtotals) == total
    pays, revs = head.index("新增支付笔数 payouts"), head.index("冲销笔数 reversals")
    assert (body[-1][pays], body[-1][revs]) == (4, 1)
    assert Decimal(str(body[-1][head.index("冲销金额（元）")])) == Decimal("-1000")


def test_cover_shows_payouts_and_reversals_apart_and_a_sign_off(ledger_book):
    path, _ = ledger_book
    cover = {r[0]: r[1] for r in openpyxl.load_workbook(path)["封面"].iter_rows(values_only=True) if r[0]}
    assert cover["部门 department"] == "区人力社保局 HRSS"
    assert cover["新增支付笔数 new payouts"] == 4 and cover["新增支付金额（元）"] == pytest.approx(8190.02)
    assert cover["冲销笔数 reversals"] == 1 and cover["冲销金额（元）"] == -1000
    assert cover["净额（元） net"] == pytest.approx(7190.02)
    assert cover["政策版本 policy version"] == "nanxun-2019" and cover["运行编号 run"] == "night"
    assert {"经办人 (prepared by)", "审核人 (checked by)", "负责人 (approved by)"} <= set(cover)


def test_reasons_sheet_lists_the_glossary(ledger_book):
    path, _ = ledger_book
    rows = list(openpyxl.load_workbook(path)["原因说明"].iter_rows(values_only=True))
    codes = {r[0] for r in rows[1:]}
    assert {"annual_cap_reached", "objection_open", "repriced"} <= codes


def test_workbook_bytes_repeat(tmp_path, ledger_book):
    path, rows = ledger_book
    again = tmp_path / "again.xlsx"
    workbooks.write(again, export.ledger_book("HRSS", AS_OF, "night", rows))
    assert again.read_bytes() == path.read_bytes()


def test_person_codes_tell_apart_people_with_the_same_mask():
    codes = person_codes(pd.Series([A, B, A, None], dtype="string"), b"key-1")
    assert codes[0] == codes[2] != codes[1] and pd.isna(codes[3])
    assert codes[0].startswith("P") and len(codes[0]) == 13 and A not in codes[0]
    assert person_codes(pd.Series([A]), b"key-2")[0] != codes[0]  # another key, another code
    masked = export.ledger_extract(_lines(), _decisions(), export.Context(person_key=b"k"))
    assert masked.loc[0, "person_code"] == masked.loc[4, "person_code"] != masked.loc[1, "person_code"]


def test_person_codes_are_hmac_sha256_of_the_number():
    ids = pd.Series([A, B, C, A], dtype="string")
    want = ["P" + hmac.new(b"key-1", v.encode(), hashlib.sha256).hexdigest()[:12].upper() for v in ids]
    assert person_codes(ids, b"key-1").tolist() == want
    assert export._codes(export.Context(person_key=b"key-1"), ids).tolist() == want


def test_summary_workbook_totals_per_fund_and_grand_total(tmp_path):
    lines = _lines()
    path = tmp_path / "summary.xlsx"
    workbooks.write(path, export.summary_book(AS_OF, "night", lines))
    wb = openpyxl.load_workbook(path)
    detail = list(wb["汇总"].iter_rows(values_only=True))
    head = [h.split("\n")[1] for h in detail[0]]
    assert head == ["department_code", "fund", "payout_lines", "payout_amount", "reversal_lines", "reversal_amount",
                    "amount", "trainees"]
    assert detail[1][:2] == ("区人力社保局", "就业补助资金") and detail[1][6] == pytest.approx(690.01)
    totals = list(wb["合计"].iter_rows(values_only=True))
    th = totals[0]
    grand = totals[-1]
    assert grand[0] == "总计 grand total"
    assert Decimal(str(grand[th.index("净额（元） net")])) == Decimal(int(lines["amount_fen"].sum())) / 100
    assert grand[th.index("享受人数 trainees")] == 3  # 4 payouts to A, B, C: A was paid twice, counted once
    csv = export.summary_extract(lines, AS_OF)
    assert (csv["payout_amount"].tolist(), csv["reversal_amount"].tolist()) == (
        ["690.01", "7500.01"], ["0.00", "-1000.00"])


def test_a_detail_longer_than_a_sheet_goes_on_in_further_sheets(tmp_path):
    # Excel's 1,048,575 rows a sheet, scaled down: 5 ledger rows in sheets of 2 lose none and keep their order
    ctx = export.Context(person_key=b"k", occupations={"4-01-01": "电工"}, run_id="night")
    rows = export.ledger_extract(_lines(), _decisions(), ctx)
    book = export.ledger_book("HRSS", AS_OF, "night", rows)
    assert [(s, a, b) for s, a, b in workbooks.detail_sheets(book, 2)] == [
        ("明细账", 0, 2), ("明细账 (2)", 2, 4), ("明细账 (3)", 4, 5)]
    path = tmp_path / "ledger.xlsx"
    workbooks.write(path, book, sheet_rows=2)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["封面", "明细账", "明细账 (2)", "明细账 (3)", "合计", "原因说明"]
    shown = [r[0] for name in wb.sheetnames[1:4] for r in wb[name].iter_rows(min_row=2, values_only=True)]
    assert shown == list(rows["payout_id"]) and len(shown) == 5
    assert all(wb[n].cell(1, 1).value == "支付编号\npayout_id" and wb[n].freeze_panes == "A2"
               for n in wb.sheetnames[1:4])
    cover = [c.value for c in wb["封面"]["A"] if c.value]
    assert any("分 3 张工作表" in str(v) and "每张至多 2 行" in str(v) for v in cover)
    assert workbooks.detail_sheets(export.ledger_book("HRSS", AS_OF, "night", rows.iloc[:0]))[0][1:] == (0, 0)
