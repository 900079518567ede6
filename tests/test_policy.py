"""Dated policy versions (POLICY.md "Parameters")."""

from pathlib import Path

import pandas as pd
import pytest
from subsidy_ledger.policy import PolicyBook, PolicyError

SRC = Path(__file__).parents[1] / "include/subsidy_ledger/policies/nanxun-2019.yaml"


def test_packaged_version_matches_the_digest():
    book = PolicyBook.load()
    v = book.by_name["nanxun-2019"]
    assert [v.level_amount_fen(lvl) for lvl in (5, 4, 3, 2, 1)] == [100000, 150000, 200000, 400000, 600000]
    assert v.special_ability_cap_fen == 80000 and v.annual_cap == 3 and v.default_uplift_units == 2000
    assert book.departments == sorted(["HRSS", "AGRI", "VETS", "ECON", "EMERG", "EDU", "DPF", "COMMERCE"])


def test_version_by_event_date():
    book = PolicyBook.load()
    got = book.version_of(pd.Series(pd.to_datetime(["2018-12-31", "2019-01-01", "2021-12-31", "2022-01-01"])))
    assert got.isna().tolist() == [True, False, False, True]


def _write(tmp_path, name, start, end, amount="1000.00"):
    text = SRC.read_text("utf-8").replace("version: nanxun-2019", f"version: {name}")
    text = text.replace("effective_from: 2019-01-01", f"effective_from: {start}")
    text = text.replace("effective_to: 2021-12-31      #", f"effective_to: {end}      #")
    text = text.replace('5: "1000.00"', f'5: "{amount}"')
    (tmp_path / f"{name}.yaml").write_text(text, "utf-8")


def test_a_new_version_takes_effect_on_its_start_date(tmp_path):
    _write(tmp_path, "nanxun-2022", "2022-01-01", "2022-12-31", amount="1200.00")
    book = PolicyBook.load(tmp_path)
    got = book.version_of(pd.Series(pd.to_datetime(["2021-12-31", "2022-01-01"])))
    assert got.tolist() == ["nanxun-2019", "nanxun-2022"]
    assert book.by_name["nanxun-2022"].level_amount_fen(5) == 120000


def test_overlapping_versions_are_refused(tmp_path):
    _write(tmp_path, "overlap", "2021-06-01", "2022-12-31")
    with pytest.raises(PolicyError, match="overlap"):
        PolicyBook.load(tmp_path)


def test_sub_fen_amounts_are_refused(tmp_path):
    _write(tmp_path, "bad", "2023-01-01", "2023-12-31", amount="1000.005")
    with pytest.raises(PolicyError, match="malformed"):
        PolicyBook.load(tmp_path)
