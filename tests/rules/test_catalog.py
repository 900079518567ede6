"""The subsidy catalog (补贴目录清单) in R1: amounts by occupation, type and level for a date range."""

import pytest

from tests.scenario import PEOPLE, certificate, decide_all, insured, staged

A = PEOPLE[4]


def row(amount, frm="2020-01-01", to=None, code="6-18-01-01", kind="skill_level", level="4"):
    return {"occupation_code": code, "certificate_type": kind, "level": level, "amount": amount,
            "effective_from": frm, "effective_to": to}


def amount(catalog, issued="2020-06-01", kind="skill_level", level="4", occupation="6-18-01-01"):
    d = decide_all(staged(social_insurance=[insured(A)], subsidy_catalog=catalog,
                          certificates=[certificate("C1", A, issued, level=level, occupation=occupation, kind=kind)]))
    assert d.loc["C1", "decision"] == "approved"
    return int(d.loc["C1", "amount_fen"])


def test_a_catalog_row_sets_the_amount():
    assert amount([row("1650.00")]) == 165000


def test_without_a_row_the_level_amount_applies():
    assert amount([]) == 150000
    assert amount([row("1650.00", code="4-03-02-01")]) == 150000        # another occupation
    assert amount([row("1650.00", kind="vocational_qualification")]) == 150000  # another certificate type
    assert amount([row("1650.00", level="5")]) == 150000                 # another level


@pytest.mark.parametrize("issued,expected", [("2019-12-31", 150000), ("2020-01-01", 165000),
                                             ("2020-12-31", 165000), ("2021-01-01", 150000)])
def test_the_row_applies_only_inside_its_date_range(issued, expected):
    assert amount([row("1650.00", "2020-01-01", "2020-12-31")], issued=issued) == expected


def test_the_latest_row_in_force_wins():
    catalog = [row("1650.00", "2020-01-01"), row("1700.00", "2020-07-01")]
    assert amount(catalog, issued="2020-06-30") == 165000
    assert amount(catalog, issued="2020-07-01") == 170000


@pytest.mark.parametrize("listed,expected", [("600.00", 60000), ("800.00", 80000), ("1000.00", 80000)])
def test_special_ability_catalog_amounts_never_exceed_the_cap(listed, expected):
    catalog = [row(listed, code="ZJ-NX-001", kind="special_ability", level=None)]
    assert amount(catalog, kind="special_ability", level=None, occupation="ZJ-NX-001") == expected
