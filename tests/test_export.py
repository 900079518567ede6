"""Extract formatting: masking, formula neutralisation, money text, XLSX (CONTRACT.md "Extracts out")."""

import pandas as pd
from subsidy_ledger.contract import mask_ids_in_text
from subsidy_ledger.export import neutralise
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
