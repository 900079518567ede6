"""The subsidy catalog (补贴目录清单) in R1, revision 2: it prices training (R7); for R1 it can only lower
the special-ability ceiling. Level amounts stay the plan's."""

import pytest

from tests.scenario import PEOPLE, certificate, decide_all, insured, staged

A = PEOPLE[4]


def row(amount, frm="2020-01-01", to=None, code="ZJ-NX-001", kind="special_ability", level=None):
    return {"occupation_code": code, "certificate_type": kind, "level": level, "amount": amount,
            "effective_from": frm, "effective_to": to}


def amount(catalog, issued="2020-06-01", kind="special_ability", level=None, occupation="ZJ-NX-001"):
    d = decide_all(staged(social_insurance=[insured(A)], subsidy_catalog=catalog,
                          certificates=[certificate("C1", A, issued, level=level, occupation=occupation, kind=kind)]))
    assert d.loc["C1", "decision"] == "approved"
    return int(d.loc["C1", "amount_fen"])


def test_a_levelled_certificate_earns_the_plans_level_amount_whatever_the_catalog_says():
    for kind in ("skill_level", "vocational_qualification"):
        listed = [row("1650.00", code="6-18-01-01", kind=kind, level="4"),
                  row("900.00", code="6-18-01-01", kind=kind, level="4", frm="2020-03-01")]
        assert amount(listed, kind=kind, level="4", occupation="6-18-01-01") == 150000


@pytest.mark.parametrize("listed,expected", [("600.00", 60000), ("800.00", 80000), ("1000.00", 80000)])
def test_the_catalog_can_only_lower_the_special_ability_ceiling(listed, expected):
    assert amount([row(listed)]) == expected


def test_without_a_row_a_special_ability_certificate_earns_the_ceiling():
    assert amount([]) == 80000
    assert amount([row("500.00", code="ZJ-NX-002")]) == 80000  # another occupation


@pytest.mark.parametrize("issued,expected", [("2019-12-31", 80000), ("2020-01-01", 60000),
                                             ("2020-12-31", 60000), ("2021-01-01", 80000)])
def test_the_row_applies_only_inside_its_date_range(issued, expected):
    assert amount([row("600.00", "2020-01-01", "2020-12-31")], issued=issued) == expected


def test_the_latest_row_in_force_wins():
    catalog = [row("600.00", "2020-01-01"), row("500.00", "2020-07-01")]
    assert amount(catalog, issued="2020-06-30") == 60000
    assert amount(catalog, issued="2020-07-01") == 50000
