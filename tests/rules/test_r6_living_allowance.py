"""R6 scenarios: filing, window, completion, the plan's groups on the start date (school leavers included),
days and amount."""

import pytest

from tests.scenario import PEOPLE, decide_living, enrolled, low_income, school_leaver, staged, training_class

A, B = PEOPLE[2], PEOPLE[3]


def decided(klass=None, roster=None, records=None, as_of="2022-06-30", leavers=()):
    stg = staged(training_classes=[klass or training_class("K1", "2020-05-01", "2020-05-20")],
                 class_enrollments=roster or [enrolled("K1", A, "10")],
                 low_income=[low_income(A)] if records is None else records, school_leavers=list(leavers))
    d = decide_living(stg, as_of)
    if len(d) == 0:
        return None
    row = d.iloc[0]
    assert row["rule_id"] == "R6" and row["subsidy_type"] == "living_allowance"
    assert row["fund"] == "employment_subsidy_fund"
    return row["decision"], row["reason_code"] if row["decision"] == "rejected" else None, int(row["amount_fen"])


def test_attended_days_times_thirty_yuan_passed_or_not():
    stg = staged(training_classes=[training_class("K1", "2020-05-01", "2020-05-20", dept="AGRI")],
                 class_enrollments=[enrolled("K1", A, "10", passed="false")], low_income=[low_income(A)])
    d = decide_living(stg)
    row = d.loc[("K1", A)]
    assert (row["decision"], int(row["amount_fen"]), row["department_code"]) == ("approved", 30000, "AGRI")
    assert row["policy_version"] == "nanxun-2019"


@pytest.mark.parametrize("category", ["low_income_rural_household", "employment_difficulty", "disabled",
                                      "zero_employment_family"])
def test_each_qualifying_category(category):
    """二 "就业困难人员（含残疾人）": disabled trainees count as employment-difficulty ones."""
    assert decided(records=[low_income(A, category)]) == ("approved", None, 30000)


def test_an_urban_minimum_living_adult_who_is_no_school_leaver_is_in_no_group():
    assert decided(records=[low_income(A, "urban_minimum_living")]) == ("rejected", "not_eligible_group", 0)


def test_other_trainees_make_no_claim():
    assert decided(records=[]) is None


@pytest.mark.parametrize("hukou,household,ok", [
    ("rural", None, True),                        # 两后生中的农村学员
    ("urban", "urban_minimum_living", True),      # 两后生中的城市低保家庭学员
    ("urban", None, False),
    ("urban", "employment_difficulty", False),    # the household's record must be urban minimum living
])
def test_school_leavers(hukou, household, ok):
    # the leaver's household (HH1) holds a record in a parent's name; the leaver has one of their own there
    parent = PEOPLE[9]
    records = [low_income(A, "urban_minimum_living", start="2010-01-01", end="2012-12-31")]
    if household:
        records.append(low_income(parent, household))
    got = decided(records=records, leavers=[school_leaver(A, hukou)])
    assert got == (("approved", None, 30000) if ok else ("rejected", "not_eligible_group", 0))


def test_a_school_leaver_who_graduated_after_the_class_started_is_not_one_yet():
    assert decided(records=[], leavers=[school_leaver(A, "rural", graduated="2020-05-02")]) == \
        ("rejected", "not_eligible_group", 0)
    assert decided(records=[], leavers=[school_leaver(A, "rural", graduated="2020-05-01")]) == \
        ("approved", None, 30000)


def test_the_group_basis_is_recorded():
    import datetime as dt

    from subsidy_ledger import eligibility
    from subsidy_ledger.policy import PolicyBook

    stg = staged(training_classes=[training_class("K1", "2020-05-01", "2020-05-20")],
                 class_enrollments=[enrolled("K1", A), enrolled("K1", B)],
                 low_income=[low_income(B, "disabled")], school_leavers=[school_leaver(A, "rural")])
    f = eligibility.build_living_allowance_eligibility(stg, dt.date(2022, 6, 30), PolicyBook.load())
    assert dict(zip(f["person_id"], f["group_basis"], strict=True)) == {A: "school_leaver_rural", B: "disabled"}


@pytest.mark.parametrize("valid_from,valid_to,ok", [("2020-05-01", None, True), ("2020-05-02", None, False),
                                                    ("2019-01-01", "2020-04-30", False),
                                                    ("2019-01-01", "2020-05-01", True)])
def test_record_valid_on_the_class_start_date(valid_from, valid_to, ok):
    got = decided(records=[low_income(A, start=valid_from, end=valid_to)])
    assert got == (("approved", None, 30000) if ok else ("rejected", "not_eligible_group", 0))


@pytest.mark.parametrize("filed,ok", [("2020-04-30", True), ("2020-05-01", False), ("2020-05-03", False)])
def test_a_class_filed_on_its_start_day_is_not_filed_in_advance(filed, ok):
    got = decided(klass=training_class("K1", "2020-05-01", "2020-05-20", filed=filed))
    assert got == (("approved", None, 30000) if ok else ("rejected", "class_not_filed_in_advance", 0))


def test_an_unknown_class_is_not_filed_and_charged_to_hrss():
    stg = staged(training_classes=[], class_enrollments=[enrolled("K9", A, "10")], low_income=[low_income(A)])
    row = decide_living(stg).loc[("K9", A)]
    assert (row["reason_code"], row["department_code"]) == ("class_not_filed_in_advance", "HRSS")


@pytest.mark.parametrize("start,end,ok", [("2018-12-31", "2019-01-20", False), ("2019-01-01", "2019-01-20", True),
                                          ("2021-12-31", "2022-01-20", True), ("2022-01-01", "2022-01-20", False)])
def test_window_by_class_start(start, end, ok):
    got = decided(klass=training_class("K1", start, end))
    assert got == (("approved", None, 30000) if ok else ("rejected", "outside_policy_window", 0))


@pytest.mark.parametrize("end,ok", [("2022-06-30", True), ("2022-07-01", False)])
def test_paid_once_the_class_has_ended(end, ok):
    got = decided(klass=training_class("K1", "2021-12-01", end))
    assert got == (("approved", None, 30000) if ok else ("rejected", "not_completed_yet", 0))


def test_a_class_not_started_by_the_as_of_date_makes_no_claim():
    assert decided(klass=training_class("K1", "2022-07-01", "2022-07-20")) is None


def test_no_attendance():
    assert decided(roster=[enrolled("K1", A, "0")]) == ("rejected", "no_attendance", 0)


def test_each_trainee_is_a_separate_claim():
    stg = staged(training_classes=[training_class("K1", "2020-05-01", "2020-05-20")],
                 class_enrollments=[enrolled("K1", A, "10"), enrolled("K1", B, "3")],
                 low_income=[low_income(A), low_income(B, "employment_difficulty")])
    d = decide_living(stg)
    assert d.loc[("K1", A), "amount_fen"] == 30000 and d.loc[("K1", B), "amount_fen"] == 9000


def test_two_rosters_with_overlapping_dates_hold_both_entries():
    """POLICY.md Decisions: overlapping_attendance holds both R6 entries until a roster is corrected."""
    classes = [training_class("K1", "2020-05-01", "2020-05-20"), training_class("K2", "2020-05-15", "2020-06-10"),
               training_class("K3", "2020-07-01", "2020-07-10")]
    roster = [enrolled("K1", A, "10"), enrolled("K2", A, "10"), enrolled("K3", A, "5"), enrolled("K1", B, "10")]
    d = decide_living(staged(training_classes=classes, class_enrollments=roster,
                             low_income=[low_income(A), low_income(B)]))
    for cid in ("K1", "K2"):
        row = d.loc[(cid, A)]
        assert (row["decision"], row["reason_code"], int(row["amount_fen"])) == ("held", "overlapping_attendance", 0)
    assert d.loc[("K3", A), "decision"] == "approved" and d.loc[("K1", B), "decision"] == "approved"


def test_classes_that_touch_on_one_day_overlap():
    classes = [training_class("K1", "2020-05-01", "2020-05-20"), training_class("K2", "2020-05-20", "2020-05-30")]
    d = decide_living(staged(training_classes=classes, class_enrollments=[enrolled("K1", A), enrolled("K2", A)],
                             low_income=[low_income(A)]))
    assert set(d["reason_code"]) == {"overlapping_attendance"}
