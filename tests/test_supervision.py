"""Fund supervision signals (资金监管): which rows each signal reports, and the outlier rule."""

import pandas as pd
from subsidy_ledger import supervision


def _classes(n):
    return pd.DataFrame({
        "class_id": [f"K{i}" for i in range(n)], "department_code": "AGRI",
        "institution_credit_code": [f"I{i}" for i in range(n)], "institution_name": [f"机构{i}" for i in range(n)],
        "occupation_code": "5-01-01-01", "filed_on": pd.to_datetime(["2020-04-01"] * n),
        "start_date": pd.to_datetime(["2020-05-01"] * n), "end_date": pd.to_datetime(["2020-05-10"] * n)})


def _roster(passed_by_class):
    rows = [(f"K{i}", f"P{i}-{j}", j < passed) for i, (passed, total) in enumerate(passed_by_class)
            for j in range(total)]
    return pd.DataFrame(rows, columns=["class_id", "person_id", "passed"]).assign(name="学员")


def test_an_institution_far_from_the_others_is_reported_and_ordinary_spread_is_not():
    classes = _classes(6)
    ordinary = _roster([(8, 10), (9, 10), (7, 10), (8, 10), (9, 10), (8, 10)])
    assert supervision.institution_outliers(ordinary, classes).empty
    suspicious = _roster([(8, 10), (9, 10), (7, 10), (8, 10), (9, 10), (60, 60)])  # all pass, six times the size
    hit = supervision.institution_outliers(suspicious, classes)
    assert set(hit["institution_credit_code"]) == {"I5"}
    assert hit["detail"].str.contains("trainees per class 60.0").any()


def test_fewer_than_five_institutions_are_not_compared():
    assert supervision.institution_outliers(_roster([(1, 10), (10, 10), (10, 10), (10, 10)]), _classes(4)).empty


def test_classes_filed_the_day_they_start_and_certificates_of_another_occupation():
    classes = _classes(2)
    classes.loc[1, "filed_on"] = classes.loc[1, "start_date"]
    assert supervision.filed_same_day(classes)["class_id"].tolist() == ["K1"]
    certs = pd.DataFrame({"certificate_no": ["C1", "C2", "C3"], "person_id": ["P1", "P2", "P3"], "name": "持证人",
                          "occupation_code": ["5-01-01-01", "6-18-02-04", "6-18-02-04"],
                          "training_class_id": ["K0", "K0", pd.NA]})
    other = supervision.certificates_of_other_occupations(certs, classes)
    assert other["person_id"].tolist() == ["P2"] and other["detail"].str.contains("6-18-02-04").all()


def test_every_entry_of_an_overlap_is_reported_with_its_class_and_institution():
    classes = _classes(2)
    roster = pd.DataFrame({"class_id": ["K0", "K1"], "person_id": ["P1", "P1"], "name": "学员", "passed": True})
    overlapping = pd.DataFrame({"class_id": ["K0", "K1"], "person_id": ["P1", "P1"]})
    got = supervision.roster_overlaps(roster, classes, overlapping)
    assert got[["class_id", "institution_credit_code"]].values.tolist() == [["K0", "I0"], ["K1", "I1"]]
    assert set(got["detail"]) == {"classes K0;K1 overlap"}
