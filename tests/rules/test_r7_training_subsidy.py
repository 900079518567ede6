"""R7 scenarios: every reason code and hold in POLICY.md's order, the amount (project standard, catalog, R3),
per-person limits and the filed budget."""

import pandas as pd
import pytest

from tests.scenario import (
    EMPLOYERS,
    INSTITUTION,
    PEOPLE,
    decide_training,
    enrolled,
    institution,
    insured,
    project,
    staged,
    training_class,
)

A, B, C = PEOPLE[7], PEOPLE[8], PEOPLE[10]
CATALOG = [{"occupation_code": "5-01-02-01", "certificate_type": "skill_level", "level": "5", "amount": "900.00",
            "effective_from": "2019-01-01"}]


def decided(classes=None, roster=None, projects=None, institutions=None, catalog=None, as_of="2022-06-30",
            **more):
    stg = staged(training_classes=classes or [training_class("K1", "2020-05-01", "2020-05-20", project_id="P1")],
                 class_enrollments=roster or [enrolled("K1", A)],
                 training_projects=[project("P1")] if projects is None else projects,
                 training_institutions=[institution()] if institutions is None else institutions,
                 subsidy_catalog=CATALOG if catalog is None else catalog, **more)
    return decide_training(stg, as_of)


def verdict(d, key=("K1", A)):
    row = d.loc[key]
    return row["decision"], row["reason_code"] if row["decision"] != "approved" else None, int(row["amount_fen"])


def test_a_project_class_pays_the_filed_standard_to_the_institution_from_the_department():
    d = decided()
    assert verdict(d) == ("approved", None, 120000)
    row = d.loc[("K1", A)]
    assert (row["rule_id"], row["subsidy_type"], row["department_code"], row["fund"]) == (
        "R7", "training_subsidy", "AGRI", "skills_upgrade_account")


def test_an_hrss_class_without_a_project_is_priced_by_the_catalog():
    d = decided(classes=[training_class("K1", "2020-05-01", "2020-05-20", dept="HRSS")])
    assert verdict(d) == ("approved", None, 90000)
    special = [{"occupation_code": "ZJ-NX-001", "certificate_type": "special_ability", "level": None,
                "amount": "700.00", "effective_from": "2019-01-01"}]
    d = decided(classes=[training_class("K1", "2020-05-01", "2020-05-20", dept="HRSS", occupation="ZJ-NX-001",
                                        level=None)], catalog=special)
    assert verdict(d) == ("approved", None, 70000)  # a class without a level matches special-ability rows


@pytest.mark.parametrize("start,end,ok", [("2018-12-31", "2019-01-20", False), ("2019-01-01", "2019-01-20", True),
                                          ("2021-12-31", "2022-01-20", True), ("2022-01-01", "2022-01-20", False)])
def test_outside_policy_window_by_class_start(start, end, ok):
    d = decided(classes=[training_class("K1", start, end, project_id="P1")])
    assert verdict(d) == (("approved", None, 120000) if ok else ("rejected", "outside_policy_window", 0))


@pytest.mark.parametrize("filed", ["2020-05-01", "2020-05-02"])
def test_class_not_filed_in_advance(filed):
    d = decided(classes=[training_class("K1", "2020-05-01", "2020-05-20", filed=filed, project_id="P1")])
    assert verdict(d) == ("rejected", "class_not_filed_in_advance", 0)


def test_an_unknown_class_is_not_filed_and_charged_to_hrss():
    d = decided(classes=[], roster=[enrolled("K9", A)])
    row = d.loc[("K9", A)]
    assert (row["reason_code"], row["department_code"]) == ("class_not_filed_in_advance", "HRSS")


@pytest.mark.parametrize("klass,projects,ok", [
    (dict(dept="AGRI"), [], False),                                          # another department, no project
    (dict(dept="AGRI", project_id="P1"), [project("P1", filed="2020-04-21")], True),   # filed with the class
    (dict(dept="AGRI", project_id="P1"), [project("P1", filed="2020-04-22")], False),  # filed after it
    (dict(dept="AGRI", project_id="P1"), [project("P1", dept="ECON")], False),         # another's project
    (dict(dept="HRSS"), [], True),                                           # HRSS's own class needs none
])
def test_project_not_filed(klass, projects, ok):
    # the class is filed on 2020-04-21 (ten days before it starts)
    d = decided(classes=[training_class("K1", "2020-05-01", "2020-05-20", **klass)], projects=projects)
    assert verdict(d)[:2] == (("approved", None) if ok else ("rejected", "project_not_filed"))


@pytest.mark.parametrize("quals,ok", [
    ([institution(start="2020-05-01")], True), ([institution(start="2020-05-02")], False),
    ([institution(end="2020-04-30")], False), ([institution(end="2020-05-01")], True),
    ([institution(end="2019-12-31"), institution(start="2020-04-01")], True),  # renewed before the class
    ([institution(code=EMPLOYERS[2])], False),                                 # another institution
])
def test_institution_not_qualified_on_the_class_start(quals, ok):
    d = decided(institutions=quals)
    assert verdict(d) == (("approved", None, 120000) if ok else ("rejected", "institution_not_qualified", 0))


def test_assessment_not_passed():
    assert verdict(decided(roster=[enrolled("K1", A, passed="false")])) == ("rejected", "assessment_not_passed", 0)


def test_not_in_catalog():
    d = decided(classes=[training_class("K1", "2020-05-01", "2020-05-20", dept="HRSS", level="4")])
    assert verdict(d) == ("rejected", "not_in_catalog", 0)


def test_the_check_order():
    # unqualified institution AND not passed AND no catalog row: the earliest check wins
    d = decided(classes=[training_class("K1", "2020-05-01", "2020-05-20", dept="HRSS", level="4")],
                roster=[enrolled("K1", A, passed="false")], institutions=[])
    assert verdict(d) == ("rejected", "institution_not_qualified", 0)


def test_one_subsidy_per_occupation_and_level_and_three_a_year():
    classes = [training_class(f"K{i}", f"2020-0{i}-01", f"2020-0{i}-10", project_id="P1") for i in range(1, 6)]
    classes.append(training_class("L1", "2020-07-01", "2020-07-10", dept="HRSS", occupation="1-01-01-01"))
    catalog = [*CATALOG, {"occupation_code": "1-01-01-01", "certificate_type": "skill_level", "level": "5",
                          "amount": "500.00", "effective_from": "2019-01-01"}]
    # A takes five classes of one occupation and level: the first is paid, the others are duplicates
    d = decided(classes=classes, roster=[enrolled(f"K{i}", A) for i in range(1, 6)], catalog=catalog)
    assert verdict(d, ("K1", A)) == ("approved", None, 120000)
    assert {verdict(d, (f"K{i}", A))[1] for i in range(2, 6)} == {"duplicate_occupation_level"}
    # B takes four classes of four occupations ending in 2020: the fourth is over the yearly three
    occupations = ["2-01-01-01", "2-01-01-02", "2-01-01-03", "2-01-01-04"]
    classes = [training_class(f"M{i}", f"2020-0{i + 1}-01", f"2020-0{i + 1}-10", dept="HRSS", occupation=o)
               for i, o in enumerate(occupations)]
    catalog = [{"occupation_code": o, "certificate_type": "vocational_qualification", "level": "5",
                "amount": "500.00", "effective_from": "2019-01-01"} for o in occupations]
    d = decided(classes=classes, roster=[enrolled(f"M{i}", B) for i in range(4)], catalog=catalog, projects=[])
    assert [d.loc[(f"M{i}", B), "decision"] for i in range(4)] == ["approved"] * 3 + ["rejected"]
    assert d.loc[("M3", B), "reason_code"] == "annual_cap_reached"


def test_a_paid_entry_keeps_its_place():
    classes = [training_class(f"K{i}", f"2020-0{i}-01", f"2020-0{i}-10", project_id="P1") for i in (1, 2)]
    stg = staged(training_classes=classes, class_enrollments=[enrolled("K1", A), enrolled("K2", A)],
                 training_projects=[project("P1")], training_institutions=[institution()])
    d = decide_training(stg, paid=[("training_subsidy", "K2", A)])
    assert d.loc[("K2", A), "decision"] == "approved"
    assert d.loc[("K1", A), "reason_code"] == "duplicate_occupation_level"


def test_overlapping_attendance_holds_an_entry_that_passes_its_checks():
    classes = [training_class("K1", "2020-05-01", "2020-05-20", project_id="P1"),
               training_class("K2", "2020-05-10", "2020-05-30", dept="HRSS", occupation="1-01-01-01")]
    d = decided(classes=classes, roster=[enrolled("K1", A), enrolled("K2", A, passed="false")])
    assert verdict(d, ("K1", A)) == ("held", "overlapping_attendance", 0)
    assert verdict(d, ("K2", A)) == ("rejected", "assessment_not_passed", 0)  # its own check fails first


def test_over_filed_budget_in_order_of_class_end_class_and_person():
    classes = [training_class("K1", "2020-05-01", "2020-05-20", project_id="P1"),
               training_class("K2", "2020-04-01", "2020-04-10", project_id="P1")]
    roster = [enrolled("K1", A), enrolled("K1", B), enrolled("K2", C)]
    d = decided(classes=classes, roster=roster, projects=[project("P1", budget="2400.00")])
    assert verdict(d, ("K2", C)) == ("approved", None, 120000)  # K2 ended first
    people = sorted([A, B])
    assert verdict(d, ("K1", people[0])) == ("approved", None, 120000)
    assert verdict(d, ("K1", people[1])) == ("held", "over_filed_budget", 0)
    d = decided(classes=classes, roster=roster, projects=[project("P1", budget="3600.00")])
    assert set(d["decision"]) == {"approved"}  # an amended filing with a larger budget releases it


def test_the_uplift_applies_on_the_class_start():
    affected = [{"employer_credit_code": EMPLOYERS[0], "employer_name": "某公司", "listed_on": "2019-06-01",
                 "uplift_rate": "0.10"}]
    d = decided(social_insurance=[insured(A)], affected_enterprises=affected)
    assert verdict(d) == ("approved", None, 132000)
    assert d.loc[("K1", A), "uplift_units"] == 1000


def test_a_class_still_running_makes_no_claim_yet():
    d = decided(classes=[training_class("K1", "2022-06-01", "2022-07-01", project_id="P1")])
    assert len(d) == 0


def test_entries_waiting_for_a_correction_use_up_nothing():
    classes = [training_class(f"K{i}", f"2020-0{i}-01", f"2020-0{i}-10", project_id="P1") for i in (1, 2)]
    stg = staged(training_classes=classes, class_enrollments=[enrolled("K1", A), enrolled("K2", A)],
                 training_projects=[project("P1")], training_institutions=[institution()])
    import datetime as dt

    from subsidy_ledger import decide, eligibility
    from subsidy_ledger.policy import PolicyBook

    book = PolicyBook.load()
    elig = eligibility.build_training_eligibility(stg, dt.date(2022, 6, 30), book)
    rows = pd.Series([pd.NA] * len(elig), dtype="string")
    rows[elig.index[elig["class_id"] == "K1"][0]] = "training_classes:9"
    d = decide.decide_training_subsidies(elig, book, None, rows).set_index("reference")
    assert d.loc["K1", ["decision", "reason_code", "held_rows"]].tolist() == [
        "held", "awaiting_registry_correction", "training_classes:9"]
    assert d.loc["K2", "decision"] == "approved"  # K1 waits, so K2 takes the occupation-and-level slot


def test_reason_codes_are_those_of_policy_md():
    from subsidy_ledger.rules import r7_training_subsidy as r7

    assert r7.REASON_CODES == ("outside_policy_window", "class_not_filed_in_advance", "project_not_filed",
                               "institution_not_qualified", "assessment_not_passed", "not_in_catalog",
                               "duplicate_occupation_level", "annual_cap_reached")
    assert EMPLOYERS[3] == INSTITUTION
