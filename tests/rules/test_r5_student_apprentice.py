"""R5 scenarios: months served, the cap, the end of the counted year, the window, missing allowances."""

import pytest

from tests.scenario import PEOPLE, agreement, decide_apprentices, staged

A = PEOPLE[1]


def decided(start, end=None, allowance="1000.00", as_of="2022-06-30"):
    d = decide_apprentices(staged(apprenticeships=[agreement("ST1", A, "student", start, end, allowance, "EDU")]),
                           as_of)
    assert list(d.index) == ["ST1#1"]
    row = d.loc["ST1#1"]
    assert row["rule_id"] == "R5" and row["subsidy_type"] == "apprentice_student" and row["department_code"] == "EDU"
    return row["decision"], row["reason_code"] if row["decision"] == "rejected" else None, int(row["amount_fen"])


def test_a_full_first_year_is_capped():
    assert decided("2019-09-01", allowance="2500.00") == ("approved", None, 300000)


def test_below_the_cap_pays_allowance_times_twelve():
    assert decided("2019-09-01", allowance="200.00") == ("approved", None, 240000)


@pytest.mark.parametrize("end,months", [("2020-01-15", 4), ("2020-01-01", 4), ("2019-12-31", 3),
                                        ("2025-01-01", 12)])
def test_full_calendar_months_to_the_earlier_of_end_and_one_year(end, months):
    assert decided("2019-09-01", end, allowance="100.50") == ("approved", None, 10050 * months)


@pytest.mark.parametrize("end,outcome", [("2020-02-29", ("approved", None, 100000)),
                                         ("2020-02-28", ("rejected", "no_full_month_served", 0))])
def test_a_month_from_the_31st_ends_on_the_last_day_of_a_short_month(end, outcome):
    assert decided("2020-01-31", end) == outcome


def test_paid_when_the_counted_period_has_ended():
    assert decided("2021-09-01") == ("rejected", "not_completed_yet", 0)
    assert decided("2021-09-01", as_of="2022-09-01") == ("approved", None, 300000)
    # ended early: six full months (2021-09-01 .. 2022-03-01) x 400.00
    assert decided("2021-09-01", "2022-03-15", allowance="400.00") == ("approved", None, 240000)


@pytest.mark.parametrize("start,inside", [("2018-12-31", False), ("2019-01-01", True), ("2021-12-31", True),
                                          ("2022-01-01", False)])
def test_window_by_start_date(start, inside):
    got = decided(start, as_of="2023-12-31")
    assert got == (("approved", None, 300000) if inside else ("rejected", "outside_policy_window", 0))


@pytest.mark.parametrize("allowance", [None, "0.00"])
def test_no_allowance_means_nothing_to_pay(allowance):
    assert decided("2019-09-01", allowance=allowance) == ("rejected", "no_allowance_paid", 0)


def test_no_school_partner():
    ag = agreement("ST1", A, "student", "2019-09-01", None, "1000.00") | {"school_name": " "}
    d = decide_apprentices(staged(apprenticeships=[ag]))
    assert d.loc["ST1#1", ["decision", "reason_code"]].tolist() == ["rejected", "no_school_partner"]


def test_once_per_person_the_earliest_payable_agreement():
    stg = staged(apprenticeships=[agreement("ST2", A, "student", "2020-09-01", None, "1000.00"),
                                  agreement("ST0", A, "student", "2019-03-01", "2019-03-20", "1000.00"),
                                  agreement("ST1", A, "student", "2019-09-01", None, "1000.00")])
    d = decide_apprentices(stg)
    assert d.loc["ST0#1", "reason_code"] == "no_full_month_served"  # not payable: uses up nothing
    assert d.loc["ST1#1", ["decision", "amount_fen"]].tolist() == ["approved", 300000]
    assert d.loc["ST2#1", ["decision", "reason_code", "amount_fen"]].tolist() == ["rejected", "already_paid_once", 0]


def test_the_agreement_the_ledger_pays_stays_the_one():
    import datetime as dt

    import pandas as pd
    from subsidy_ledger import decide, eligibility
    from subsidy_ledger.policy import PolicyBook

    book = PolicyBook.load()
    stg = staged(apprenticeships=[agreement("ST1", A, "student", "2019-09-01", None, "1000.00"),
                                  agreement("ST2", A, "student", "2020-09-01", None, "1000.00")])
    elig = eligibility.build_apprentice_eligibility(stg, dt.date(2022, 6, 30), book)
    paid = pd.DataFrame({"subsidy_type": ["apprentice_student"], "reference": ["ST2#1"], "person_id": [A]})
    d = decide.decide_apprentices(elig, book, dt.date(2022, 6, 30), paid).set_index("reference")
    assert d.loc["ST2#1", "decision"] == "approved" and d.loc["ST1#1", "reason_code"] == "already_paid_once"
