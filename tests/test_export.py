"""Extract formatting: masking, formula neutralisation, money text, XLSX (CONTRACT.md "Extracts out")."""

import datetime as dt

import openpyxl
import pandas as pd
from subsidy_ledger.export import mask_ids_in_text, neutralise, write_xlsx
from subsidy_ledger.money import fen_to_yuan_text, rate_units_to_text


def test_formula_text_is_neutralised():
    got = neutralise(pd.Series(["=HYPERLINK(\"http://x\")", "+1", "@SUM(A1)", "-2", "张伟", None]))
    assert got.tolist()[:5] == ["'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)", "'-2", "张伟"]
    assert pd.isna(got[5])


def test_money_and_rate_text():
    assert fen_to_yuan_text(pd.Series([150000, -150000, 5, 13591])).tolist() == [
        "1500.00", "-1500.00", "0.05", "135.91"]
    assert rate_units_to_text(pd.Series([0, 2000, 1250, 1000])).tolist() == ["0", "0.20", "0.125", "0.10"]


def test_identity_numbers_inside_keys_are_masked():
    assert mask_ids_in_text(pd.Series(["K1+33050319800101123X"])).tolist() == ["K1+330503********123X"]


def test_xlsx_keeps_text_as_text_and_amounts_as_numbers(tmp_path):
    frame = pd.DataFrame({"name": ["=1+1", "张伟"], "amount": ["1500.00", "-1725.50"]}, dtype="string")
    path = tmp_path / "l.xlsx"
    write_xlsx(frame, path, dt.date(2022, 6, 30))
    rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
    assert rows == [("name", "amount"), ("=1+1", 1500.0), ("张伟", -1725.5)]
    first = path.read_bytes()
    write_xlsx(frame, path, dt.date(2022, 6, 30))
    assert path.read_bytes() == first
