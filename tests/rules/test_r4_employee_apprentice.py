"""R4 scenarios: agreement years, the end-date and as-of boundaries, the window, the school partner, a year in
post first, and three years per person across agreements."""

from pathlib import Path

import pandas as pd
import pytest
from subsidy_ledger.policy import PolicyBook

from tests.scenario import PEOPLE, agreement, decide_apprentices, insured, staged

A = PEOPLE[0]
EXAMPLE = Path(__file__).parents[2] / "docs/examples/policies"


def decided(start, end=None, as_of="2022-06-30", book=None):
    stg = staged(social_insurance=[insured(A)], apprenticeships=[agreement("AG1", A, "employee", start, end)])
    d = decide_apprentices(stg, as_of, book)
    return {ref: (row["decision"], row["reason_code"] if row["decision"] == "rejected" else None,
                  int(row["amount_fen"])) for ref, row in d.iterrows()}


def test_three_completed_years_are_paid_and_no_fourth():
    stg = staged(social_insurance=[insured(A)], apprenticeships=[agreement("AG1", A, "employee", "2019-03-01")])
    d = decide_apprentices(stg)
    assert list(d.index) == ["AG1#1", "AG1#2", "AG1#3"]
    assert (d["decision"] == "approved").all() and (d["amount_fen"] == 400000).all()
    assert set(d["rule_id"]) == {"R4"} and set(d["subsidy_type"]) == {"apprentice_employee"}
    assert set(d["department_code"]) == {"ECON"} and set(d["fund"]) == {"skills_upgrade_account"}
    assert set(d["policy_version"]) == {"nanxun-2019"}


def test_a_year_ending_exactly_on_the_end_date_is_paid():
    assert decided("2019-03-01", "2021-03-01") == {"AG1#1": ("approved", None, 400000),
                                                   "AG1#2": ("approved", None, 400000)}


def test_a_year_cut_short_by_the_end_date_is_not_paid():
    assert decided("2019-03-01", "2021-02-28") == {
        "AG1#1": ("approved", None, 400000),
        "AG1#2": ("rejected", "agreement_ended_before_year_completed", 0)}


@pytest.mark.parametrize("as_of,outcome", [("2020-02-29", ("rejected", "not_completed_yet", 0)),
                                           ("2020-03-01", ("approved", None, 400000))])
def test_a_year_is_paid_from_the_day_it_completes(as_of, outcome):
    got = decided("2019-03-01", as_of=as_of)
    assert got["AG1#1"] == outcome
    # year 2 begins on the day year 1 completes: from then on it is a claim in progress
    assert got.get("AG1#2") == (("rejected", "not_completed_yet", 0) if as_of == "2020-03-01" else None)


def test_years_that_began_before_the_window_are_not_paid():
    got = decided("2018-06-01")
    assert got["AG1#1"] == ("rejected", "outside_policy_window", 0)
    assert got["AG1#2"] == got["AG1#3"] == ("approved", None, 400000)


@pytest.mark.parametrize("start,inside", [("2021-12-31", True), ("2022-01-01", False)])
def test_the_last_day_of_the_window(start, inside):
    got = decided(start, as_of="2023-01-31")
    assert got["AG1#1"] == (("approved", None, 400000) if inside else ("rejected", "outside_policy_window", 0))


def test_a_29_february_start_completes_on_28_february():
    assert decided("2020-02-29", as_of="2021-02-28")["AG1#1"] == ("approved", None, 400000)
    assert decided("2020-02-29", as_of="2021-02-27")["AG1#1"][1] == "not_completed_yet"


def test_an_agreement_not_begun_makes_no_claim_and_students_are_not_r4():
    stg = staged(social_insurance=[insured(A)], apprenticeships=[agreement("AG1", A, "employee", "2022-07-01"),
                                  agreement("AG2", A, "student", "2020-01-01", allowance="1000.00")])
    d = decide_apprentices(stg)
    assert list(d.index) == ["AG2#1"] and d.loc["AG2#1", "rule_id"] == "R5"


def test_a_version_with_fewer_years_rejects_the_later_ones(tmp_path):
    text = (EXAMPLE / "nanxun-2022.yaml").read_text("utf-8").replace("max_years: 3", "max_years: 2")
    (tmp_path / "nanxun-2022.yaml").write_text(text, "utf-8")
    book = PolicyBook.load(tmp_path)
    got = decided("2020-03-01", as_of="2023-06-30", book=book)
    assert got["AG1#1"] == got["AG1#2"] == ("approved", None, 400000)
    assert got["AG1#3"] == ("rejected", "years_cap_reached", 0)  # year 3 begins 2022-03-01, priced by nanxun-2022


def verdicts(d):
    return {ref: (row["decision"], row["reason_code"] if row["decision"] != "approved" else None,
                  int(row["amount_fen"])) for ref, row in d.iterrows()}


def test_no_school_partner():
    ag = agreement("AG1", A, "employee", "2019-03-01", "2020-03-01") | {"school_name": None}
    got = verdicts(decide_apprentices(staged(social_insurance=[insured(A)], apprenticeships=[ag])))
    assert got == {"AG1#1": ("rejected", "no_school_partner", 0)}


@pytest.mark.parametrize("episode,ok", [
    (dict(start="2018-03-01"), True),                         # exactly a year before the start
    (dict(start="2018-03-02"), False),                        # a day short
    (dict(start="2015-01-01", end="2019-02-27"), False),      # left before the start
    (dict(start="2015-01-01", end="2019-02-28"), True),       # insured to the day before
    (dict(start="2015-01-01", employer=1), False),            # with another employer
])
def test_in_post_with_the_agreements_employer_for_the_whole_year_before(episode, ok):
    stg = staged(social_insurance=[insured(A, **episode)],
                 apprenticeships=[agreement("AG1", A, "employee", "2019-03-01", "2020-03-01")])
    got = verdicts(decide_apprentices(stg))["AG1#1"]
    assert got == (("approved", None, 400000) if ok else ("rejected", "not_in_post_one_year", 0))


def test_three_years_per_person_across_agreements():
    stg = staged(social_insurance=[insured(A)], apprenticeships=[
        agreement("AG1", A, "employee", "2019-01-01", "2021-01-01"),
        agreement("AG2", A, "employee", "2019-06-01")])
    got = verdicts(decide_apprentices(stg, as_of="2022-12-31"))
    # years in order of their start: AG1#1 (2019-01), AG2#1 (2019-06), AG1#2 (2020-01), AG2#2 (2020-06), AG2#3
    assert [got[r][0] for r in ("AG1#1", "AG2#1", "AG1#2")] == ["approved"] * 3
    assert got["AG2#2"] == got["AG2#3"] == ("rejected", "years_cap_reached", 0)


def test_a_year_the_ledger_pays_keeps_its_place():
    import datetime as dt

    from subsidy_ledger import decide, eligibility

    book = PolicyBook.load()
    stg = staged(social_insurance=[insured(A)], apprenticeships=[
        agreement("AG1", A, "employee", "2019-01-01", "2021-01-01"),
        agreement("AG2", A, "employee", "2019-06-01", "2021-06-01")])
    elig = eligibility.build_apprentice_eligibility(stg, dt.date(2022, 6, 30), book)
    paid = pd.DataFrame({"subsidy_type": "apprentice_employee", "reference": ["AG2#1", "AG2#2", "AG1#2"],
                         "person_id": A})
    d = decide.decide_apprentices(elig, book, dt.date(2022, 6, 30), paid).set_index("reference")
    assert d.loc["AG1#1", "reason_code"] == "years_cap_reached"
    assert (d.loc[["AG2#1", "AG2#2", "AG1#2"], "decision"] == "approved").all()
