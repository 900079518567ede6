"""A1: the plan's measures on a hand-made drop, each figure worked out by hand (no GX, no warehouse)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest
from subsidy_ledger import assessment
from subsidy_ledger.policy import PolicyBook

AS_OF = dt.date(2021, 6, 30)
T1, T2, T3 = "330503101", "330503102", "330503103"
E1, E2 = "91330503MA2B000001", "91330503MA2B000002"


def _d(v):
    return pd.to_datetime(pd.Series(v, dtype="string"), format="%Y-%m-%d")


@pytest.fixture(scope="module")
def drop() -> dict[str, pd.DataFrame]:
    """Three classes, two agreements, four employed people, their certificates and three annual plans."""
    classes = pd.DataFrame({"class_id": ["C1", "C2", "C3"], "department_code": ["HRSS", "AGRI", "AGRI"],
                            "end_date": _d(["2020-05-01", "2021-08-01", "2019-12-31"]),
                            "town_code": pd.Series([T1, T2, T2], dtype="string")})
    enrollments = pd.DataFrame({"class_id": ["C1", "C1", "C1", "C2", "C2", "C3", "C3", "C9"],
                                "person_id": [f"p{i}" for i in range(8)]})  # C9: no class filed, not counted
    agreements = pd.DataFrame({"agreement_id": ["A1", "A2"], "person_id": ["p1", "p2"],
                               "employer_credit_code": [E1, E2], "department_code": ["HRSS", "ECON"],
                               "start_date": _d(["2019-03-01", "2021-05-01"]), "end_date": _d(["2021-09-01", None])})
    insurance = pd.DataFrame({"person_id": ["p1", "p1", "q1", "q2", "q3", "q4"],
                              "employer_credit_code": [E1, E1, E2, E2, E2, E2],
                              "start_date": _d(["2015-01-01", "2018-01-01", "2019-01-01", "2019-01-01", "2020-06-01",
                                                "2020-06-01"]),
                              "end_date": _d(["2017-12-31", None, None, None, None, "2020-12-30"]),
                              "town_code": pd.Series(["330503100", T3, T1, T1, T1, T1], dtype="string")})
    certificates = pd.DataFrame({
        "person_id": ["q1", "q2", "q3", "p1", "q4"],
        "certificate_type": ["skill_level", "vocational_qualification", "skill_level", "special_ability",
                             "skill_level"],
        "level": pd.array([3, 5, 2, None, 1], dtype="Int64"),
        "issued_on": _d(["2020-01-01", "2019-06-01", "2020-03-01", "2021-01-05", "2019-01-01"]),
        "status": ["valid", "valid", "revoked", "valid", "valid"]})
    plans = pd.DataFrame({"department_code": ["HRSS", "AGRI", "HRSS"],
                          "town_code": pd.Series([None, None, T1], dtype="string"),
                          "year": [2020, 2019, 2021], "planned_person_times": [5, 2, 10],
                          "planned_funds": pd.array([200_000, 100, None], dtype="Int64")})
    return {"training_classes": classes, "class_enrollments": enrollments, "apprenticeships": agreements,
            "social_insurance": insurance, "certificates": certificates, "annual_plans": plans}


@pytest.fixture(scope="module")
def report(drop) -> assessment.Assessment:
    decisions = pd.DataFrame({"department_code": ["HRSS", "HRSS", "AGRI"],
                              "subsidy_type": ["skill_upgrade", "skill_upgrade", "training_subsidy"],
                              "decision": ["approved", "rejected", "approved"],
                              "amount_fen": [150_000, 0, 30_000], "event_date": _d(["2020-05-01", "2020-06-01",
                                                                                    "2019-12-31"])})
    lines = pd.DataFrame({"department_code": ["HRSS", "HRSS"], "subsidy_type": ["skill_upgrade", "skill_upgrade"],
                          "amount_fen": [150_000, -150_000], "posted_on": _d(["2021-01-10", "2021-02-10"])})
    return assessment.assess(drop, decisions, lines, PolicyBook.load().targets, AS_OF, "HRSS")


def test_person_times_count_ended_classes_and_apprenticeship_years_begun(report):
    pt = report.views["person_times"]
    got = {(r.year, r.department_code, None if pd.isna(r.town_code) else r.town_code, r.source): r.person_times
           for r in pt.itertuples()}
    # C1: 3 entries, ended 2020 in T1; C3: 2 in 2019, T2; C2 ends after the as-of date; C9 was never filed.
    # A1 began 2019-03-01, 2020-03-01, 2021-03-01 (ends 2021-09-01), in T3 (the episode with E1 open each day,
    # not the closed 2015-2017 one); A2 began 2021-05-01 with no episode at E2: town unknown.
    assert got == {(2019, "AGRI", T2, "class"): 2, (2020, "HRSS", T1, "class"): 3,
                   (2019, "HRSS", T3, "apprenticeship"): 1, (2020, "HRSS", T3, "apprenticeship"): 1,
                   (2021, "HRSS", T3, "apprenticeship"): 1, (2021, "ECON", None, "apprenticeship"): 1}


def test_the_three_year_target_is_due_pro_rata(report):
    t = report.views["target"].iloc[0]
    # 2019-01-01..2021-12-31 is 1,096 days; by 2021-06-30, 365 + 366 + 181 = 912 have passed
    assert t["target_person_times"] == 30_000 and t["expected_person_times"] == 30_000 * 912 // 1096 == 24_963
    assert t["person_times"] == 9 and t["completion_units"] == 9 * 10_000 // 24_963


def test_years_are_cumulative_against_the_whole_department_plans(report):
    y = report.views["years"].set_index("year")
    assert list(y["person_times"]) == [3, 4, 2] and list(y["cumulative"]) == [3, 7, 9]
    assert y.loc[2019, "planned_person_times"] == 2 and y.loc[2020, "planned_person_times"] == 5
    assert pd.isna(y.loc[2021, "planned_person_times"])  # only a town plan for 2021


def test_each_plan_against_its_figure_and_the_behind_list(report):
    p = report.views["plans"].set_index(["year", "department_code"])
    hrss = p.loc[(2020, "HRSS")]
    assert (hrss["person_times"], hrss["expected_person_times"]) == (4, 5)  # 3 class + 1 apprenticeship year
    assert (hrss["planned_fen"], hrss["expected_fen"], hrss["approved_fen"]) == (200_000, 200_000, 150_000)
    agri = p.loc[(2019, "AGRI")]
    assert (agri["person_times"], agri["expected_person_times"], agri["approved_fen"]) == (2, 2, 30_000)
    town = p.loc[(2021, "HRSS")]
    # a town's plan in the year in progress: 10 x 181 / 365 = 4 (rounded down) due, none done in T1 in 2021
    assert (town["town_code"], town["person_times"], town["expected_person_times"]) == (T1, 0, 4)
    assert pd.isna(town["approved_fen"])  # claims carry no town: money is compared per department only
    b = report.views["behind"]
    got = {(r.year, r.department_code, None if pd.isna(r.town_code) else r.town_code, r.measure):
           (r.expected, r.actual, r.shortfall) for r in b.itertuples()}
    assert got == {(2020, "HRSS", None, "person_times"): (5, 4, 1), (2020, "HRSS", None, "funds_fen"):
                   (200_000, 150_000, 50_000), (2021, "HRSS", T1, "person_times"): (4, 0, 4)}


def test_departments_and_towns(report):
    d = report.views["departments"].set_index(["year", "department_code"])
    assert d.loc[(2020, "HRSS"), "person_times"] == 4 and d.loc[(2020, "HRSS"), "planned_person_times"] == 5
    assert d.loc[(2021, "ECON"), "person_times"] == 1 and pd.isna(d.loc[(2021, "ECON"), "planned_person_times"])
    t = report.views["towns"]
    t1 = t.loc[(t["year"] == 2021) & (t["town_code"] == T1)].iloc[0]
    assert (t1["person_times"], t1["planned_person_times"], t1["expected_person_times"]) == (0, 10, 4)
    assert t.loc[t["town_code"].isna(), "person_times"].sum() == 1  # A2's year: town unknown


def test_certificates_count_valid_ones_by_year_type_and_level(report):
    c = report.views["certificates"]
    got = {(r.year, r.certificate_type, None if pd.isna(r.level) else int(r.level)): r.certificates
           for r in c.itertuples()}
    assert got == {(2019, "skill_level", 1): 1, (2019, "vocational_qualification", 5): 1,
                   (2020, "skill_level", 3): 1, (2021, "special_ability", None): 1}  # q3's is revoked


def test_skilled_and_high_skilled_shares_on_each_31_december_and_the_as_of_date(report):
    s = report.views["shares"].set_index("on")
    assert list(s.index) == ["2018-12-31", "2019-12-31", "2020-12-31", "2021-06-30"]
    # 2019-12-31: q1, q2 employed (q3, q4 start 2020-06-01; p1's 2018 episode open) -> 3 employed; q2 skilled
    # (level 5, not high); q1's level 3 comes 2020-01-01
    assert tuple(s.loc["2019-12-31", ["employed", "skilled", "high_skilled"]]) == (3, 1, 0)
    # 2020-12-31: p1, q1, q2, q3 (q4 left 2020-12-30); q1 (3) and q2 (5) skilled, q3's is revoked
    assert tuple(s.loc["2020-12-31", ["employed", "skilled", "high_skilled"]]) == (4, 2, 1)
    assert s.loc["2020-12-31", "skilled_share_units"] == 5000 and s.loc["2020-12-31", "high_skill_share_units"] == 5000
    # 2021-06-30: p1's special-ability certificate (2021-01-05) makes them skilled, not high-skilled
    assert tuple(s.loc["2021-06-30", ["employed", "skilled", "high_skilled"]]) == (4, 3, 1)
    assert s.loc["2021-06-30", "skilled_share_units"] == 7500 and s.loc["2021-06-30", "high_skill_share_units"] == 3333
    assert set(s["skilled_target_units"]) == {2600} and set(s["high_skill_target_units"]) == {3100}


def test_money_approved_tonight_and_posted_to_date(report):
    m = report.views["money"].set_index(["department_code", "subsidy_type"])
    assert tuple(m.loc[("HRSS", "skill_upgrade")]) == (1, 150_000, 0)  # a payout and its reversal: net 0
    assert tuple(m.loc[("AGRI", "training_subsidy")]) == (1, 30_000, 0)


def test_the_figures_survive_the_warehouse_round_trip(report):
    back = assessment.Assessment.from_records(AS_OF, report.to_records())
    assert set(back.views) == set(assessment.VIEWS)
    for name, frame in report.views.items():
        assert back.views[name].astype(str).values.tolist() == frame.astype(object).where(
            frame.notna(), None).astype(str).values.tolist(), name


def test_year_fraction():
    assert assessment.year_fraction(2020, AS_OF) == (366, 366)
    assert assessment.year_fraction(2021, AS_OF) == (181, 365)
    assert assessment.year_fraction(2022, AS_OF) == (0, 365)


def test_without_annual_plans_the_report_still_stands(drop, tmp_path):
    from subsidy_ledger import assessment_report, export

    no_plans = drop | {"annual_plans": drop["annual_plans"].iloc[0:0]}
    empty = pd.DataFrame({"department_code": pd.Series(dtype="string"), "subsidy_type": pd.Series(dtype="string"),
                          "decision": pd.Series(dtype="string"), "amount_fen": pd.Series(dtype="int64"),
                          "event_date": pd.Series(dtype="datetime64[ns]"), "posted_on": pd.Series(
                              dtype="datetime64[ns]")})
    a = assessment.assess(no_plans, empty, empty, PolicyBook.load().targets, AS_OF, "HRSS")
    assert a.views["plans"].empty and a.views["behind"].empty and a.views["money"].empty
    assert a.views["years"]["planned_person_times"].isna().all() and a.views["target"]["person_times"][0] == 9
    stored = assessment.Assessment.from_records(AS_OF, a.to_records())  # as the page reads it back
    assert assessment_report.write(tmp_path, stored, export.write_csv) == {"behind_plan": 0, "charts": 5}
    assert (tmp_path / "behind_plan.csv").read_text("utf-8-sig").strip() == ",".join(assessment_report.BEHIND_COLUMNS)


def test_the_charts_log_nothing(report, tmp_path, caplog):
    """Years drawn as text would be matplotlib categories, which it logs at INFO on every chart: a dozen lines
    in every night's task log, none of them the operator's business."""
    from subsidy_ledger import assessment_report, export

    stored = assessment.Assessment.from_records(AS_OF, report.to_records())
    with caplog.at_level(logging.INFO):
        assert assessment_report.write(tmp_path, stored, export.write_csv)["charts"] == 5
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("matplotlib")]


def test_a_night_without_certificates_draws_its_level_chart_without_a_warning(report):
    """No certificate yet: the chart says so instead of drawing an empty legend (matplotlib warned)."""
    import warnings

    from subsidy_ledger import assessment_report

    stored = assessment.Assessment.from_records(AS_OF, report.to_records())
    stored.views["certificates"] = stored.views["certificates"].iloc[0:0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = assessment_report.charts(stored)["certificates_by_level"]
    assert png.startswith(b"\x89PNG")
