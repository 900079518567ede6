"""GX validation: every row accepted or quarantined with reasons (CONTRACT.md, quarantine)."""

import dataclasses
import datetime as dt
import gc
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from stdnum.cn import ric
from subsidy_ledger.contract import ROW_COL
from subsidy_ledger.extract import extract_drop, iter_drop, read_registry
from subsidy_ledger.registries import REGISTRIES
from subsidy_ledger.validate import default_expectations_dir, validate_drop, validate_each

AS_OF = dt.date(2022, 6, 30)


@pytest.fixture(scope="module")
def validated(small_drop):
    return validate_drop(extract_drop(small_drop), AS_OF)


def test_rows_in_equal_accepted_plus_quarantined(validated):
    for v in validated.values():
        assert v.rows_in == len(v.accepted) + len(v.quarantine), v.registry.name
    # the generator injects defects, so every populated required registry quarantines something
    assert all(len(validated[n].quarantine) > 0 for n in ("social_insurance", "certificates", "low_income"))


def _same(a, b) -> bool:
    return (a.reconciliation == b.reconciliation and a.accepted.equals(b.accepted)
            and a.quarantine.reset_index(drop=True).equals(b.quarantine.reset_index(drop=True)))


def test_verdicts_come_as_soon_as_the_registries_their_checks_read_came_whatever_the_order(small_drop, validated):
    # rosters before their classes, classes before their projects: each check still reads the final verdicts
    first = ["class_enrollments", "training_classes", "social_insurance", "training_projects"]
    raws = dict(iter_drop(small_drop))
    stream = [(n, raws[n]) for n in first] + [(n, r) for n, r in raws.items() if n not in first]
    came = []
    for name, v in validate_each(iter(stream), AS_OF):
        came.append(name)
        assert _same(v, validated[name]), name
    assert came[:4] == ["social_insurance", "training_projects", "training_classes", "class_enrollments"]
    assert sorted(came) == sorted(REGISTRIES)


def test_checks_without_the_registry_they_read_run_when_the_drop_ends(small_drop, validated):
    raws = {n: r for n, r in iter_drop(small_drop) if n != "training_projects"}
    alone = validate_drop(raws, AS_OF)
    # no project filing accepted: every class naming a project is quarantined for it, once the drop ended
    classes = alone["training_classes"]
    unknown = classes.quarantine["reasons"].str.contains("unknown_project").sum()
    assert classes.accepted["project_id"].isna().all()
    assert unknown > validated["training_classes"].quarantine["reasons"].str.contains("unknown_project").sum()
    assert "class_enrollments" in alone


def test_a_caller_storing_each_verdict_as_it_comes_holds_no_registry_rows_after(small_drop):
    def frames() -> set[int]:
        gc.collect()
        return {id(o) for o in gc.get_objects() if isinstance(o, pd.DataFrame) and len(o) >= 50}

    before = frames()
    kept = {name: v.without_rows() for name, v in validate_each(iter_drop(small_drop), AS_OF)}
    assert frames() - before == set()  # neither GX's engines nor the raw rows were kept
    assert sum(v.reconciliation["accepted"] for v in kept.values()) > 1000
    assert all(len(v.accepted) == 0 for v in kept.values())


@pytest.mark.parametrize("collect_rows, freed_at_once", [(1, True), (10**9, False)])
def test_what_gx_left_in_cycles_is_freed_as_a_large_registrys_verdict_comes(small_drop, monkeypatch, collect_rows,
                                                                             freed_at_once):
    from subsidy_ledger import validate

    def frames() -> int:  # frames of rows, reachable or garbage in a cycle not yet collected
        return sum(1 for o in gc.get_objects() if isinstance(o, pd.DataFrame) and len(o) >= 50)

    monkeypatch.setattr(validate, "COLLECT_ROWS", collect_rows)
    # GX itself, not the suite's memo of its verdicts (conftest): a verdict given again leaves nothing behind
    monkeypatch.setattr(validate, "_run_suite", getattr(validate._run_suite, "__wrapped__", validate._run_suite))
    raws = dict(iter_drop(small_drop))
    held_on = []
    gc.disable()  # as at 10,000,000 persons, where few Python objects are made for the rows validated
    try:
        for _, v in validate_each(iter([("certificates", raws.pop("certificates"))]), AS_OF):
            del v  # the caller stored the verdict and let go of it
            before = frames()
            gc.collect()
            held_on.append(before - frames())  # frames only a collection could free
    finally:
        gc.enable()
    assert (held_on == [0]) is freed_at_once, held_on


def test_every_suite_covers_every_contract_column():
    for name, reg in REGISTRIES.items():
        doc = json.loads((default_expectations_dir() / f"{name}.json").read_text("utf-8"))
        covered = {e["kwargs"].get("column") for e in doc["expectations"]}
        covered |= {c for e in doc["expectations"] for c in e["kwargs"].get("column_list", [])}
        covered |= {e["kwargs"].get(k) for e in doc["expectations"] for k in ("column_A", "column_B")}
        assert set(reg.columns) <= covered, (name, set(reg.columns) - covered)
        assert all(e["meta"].get("reason") for e in doc["expectations"])


def _one(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    reg = REGISTRIES[name]
    return validate_drop({name: read_registry(path, reg)}, AS_OF)[name]


def test_quarantine_reasons_for_typical_defects(tmp_path):
    good = "33050319800101123"
    from stdnum.cn import ric
    pid = good + ric.calc_check_digit(good + "0")
    bad_check = pid[:17] + ("0" if pid[17] != "0" else "1")
    text = ("record_id,person_id,name,household_id,category,valid_from,valid_to\n"
            f"L1,{pid},甲,H1,disabled,2020-01-01,\n"
            f"L2,{bad_check},乙,H2,disabled,2020-01-01,\n"
            f"L3,{pid},丙,H3,rich,2020-01-01,\n"
            f"L4,{pid},丁,H4,disabled,2021-02-30,\n"
            f"L4,{pid},戊,H5,disabled,2020-01-01,2019-01-01\n")
    v = _one(tmp_path, "low_income", text)
    reasons = dict(zip(v.quarantine["row_number"], v.quarantine["reasons"], strict=True))
    assert list(v.accepted["record_id"]) == ["L1"]
    assert reasons[3] == "invalid_person_id"
    assert reasons[4] == "unknown_category"
    assert set(reasons[5].split(";")) == {"duplicate_key", "invalid_valid_from"}
    assert set(reasons[6].split(";")) == {"duplicate_key", "valid_to_after_valid_from"}
    assert v.quarantine["record_key"].tolist() == ["L2", "L3", "L4", "L4"]


def test_a_row_failing_several_checks_has_one_quarantine_row_naming_each(tmp_path):
    from stdnum.cn import ric
    good = "33050319800101123"
    pid = good + ric.calc_check_digit(good + "0")
    text = ("record_id,person_id,name,household_id,category,valid_from,valid_to\n"
            f"L1,{pid},甲,H1,rich,2021-02-30,\n"
            f"L1,{pid[:17]}X,乙,H2,disabled,2020-01-01,\n")
    v = _one(tmp_path, "low_income", text)
    q = v.quarantine.set_index("row_number")
    assert set(q.loc[2, "reasons"].split(";")) == {"duplicate_key", "unknown_category", "invalid_valid_from"}
    assert q.loc[2, "columns"] == "category;record_id;valid_from"  # each failing check's column, sorted, once
    assert q.loc[2, "values_masked"] == "category=rich; record_id=L1; valid_from=2021-02-30"
    assert set(q.loc[3, "reasons"].split(";")) == {"duplicate_key", "invalid_person_id"}
    assert q.loc[3, "columns"] == "person_id;record_id"
    assert q.loc[3, "values_masked"].startswith("person_id=330503********") and q.loc[3, "values_masked"].endswith(
        "; record_id=L1")


def test_joined_keeps_each_rows_texts_in_order_and_leaves_out_missing_ones():
    from subsidy_ledger.validate import joined

    rows = pd.Series([9, 9, 4, 7, 7, 7, 2], name="__row")
    texts = pd.Series(["b", "a", "c", pd.NA, "d", "e", pd.NA], dtype="string")
    out = joined(rows, texts, "; ")
    assert out.to_dict() == {2: "", 4: "c", 7: "d; e", 9: "b; a"}
    assert out.index.name == "__row" and out.index.is_monotonic_increasing
    assert joined(rows.iloc[:0], texts.iloc[:0], ";").empty


def test_special_ability_level_rules(tmp_path):
    good = "33050319800101123"
    from stdnum.cn import ric
    pid = good + ric.calc_check_digit(good + "0")
    head = "certificate_no,person_id,name,certificate_type,occupation_code,occupation_name,level,issued_on,issuer," \
           "training_class_id,status\n"
    text = head + (f"C1,{pid},甲,special_ability,ZJ-1,湖羊,,2020-01-01,局,,valid\n"
                   f"C2,{pid},甲,special_ability,ZJ-2,湖羊,3,2020-01-01,局,,valid\n"
                   f"C3,{pid},甲,skill_level,6-18-01-01,车工,,2020-01-01,局,,valid\n"
                   f"C4,{pid},甲,skill_level,ZJ-1,车工,4,2020-01-01,局,,valid\n")
    v = _one(tmp_path, "certificates", text)
    assert list(v.accepted["certificate_no"]) == ["C1"]
    reasons = dict(zip(v.quarantine["record_key"], v.quarantine["reasons"], strict=True))
    assert reasons == {"C2": "level_on_special_ability", "C3": "missing_level", "C4": "invalid_occupation_code"}


def test_birth_date_after_the_as_of_date_is_quarantined(tmp_path):
    from stdnum.cn import ric
    body = "33050320230101123"  # born 2023, after the 2022-06-30 run
    pid = body + ric.calc_check_digit(body + "0")
    v = _one(tmp_path, "veterans", f"record_id,person_id,name,discharged_on,town_code\nV1,{pid},甲,2020-01-01,\n")
    assert v.quarantine["reasons"].tolist() == ["invalid_person_id"]


def test_school_leavers_suite(tmp_path):
    """两后生: known education levels and hukou, a real graduation date, unique record ids."""
    good = "33050320020101123"
    from stdnum.cn import ric
    pid = good + ric.calc_check_digit(good + "0")
    text = ("record_id,person_id,name,school_name,education_level,graduated_on,hukou\n"
            f"S1,{pid},甲,南浔区菱湖中学,junior_secondary,2017-07-01,rural\n"
            f"S2,{pid},乙,南浔区菱湖中学,primary,2017-07-01,rural\n"
            f"S3,{pid},丙,南浔区菱湖中学,senior_secondary,2017-02-30,urban\n"
            f"S4,{pid},丁,南浔区菱湖中学,senior_secondary,2017-07-01,城镇\n"
            f"S5,{pid},戊,南浔区菱湖中学,senior_secondary,2017-07-01,\n")
    v = _one(tmp_path, "school_leavers", text)
    assert list(v.accepted["record_id"]) == ["S1"]
    reasons = dict(zip(v.quarantine["record_key"], v.quarantine["reasons"], strict=True))
    assert reasons == {"S2": "unknown_education_level", "S3": "invalid_graduated_on", "S4": "unknown_hukou",
                       "S5": "missing_hukou"}
    assert v.rows_in == 5 and v.quarantine["person_id"].eq(pid).all()


def test_the_suites_regexes_capture_no_groups():
    """GX matches a regex with pandas' str.contains, which warns on every batch when the pattern has capturing
    groups ("This pattern … has match groups"): noise in every night's log. Alternatives go in (?:…)."""
    found = []
    for path in sorted(default_expectations_dir().glob("*.json")):
        for e in json.loads(path.read_text("utf-8"))["expectations"]:
            regex = e.get("kwargs", {}).get("regex")
            if regex is not None:
                found.append(regex)
                assert re.compile(regex).groups == 0, (path.name, regex)
    assert len(found) >= 10  # the suites do match identifiers, years and amounts by pattern


def test_an_identity_number_born_between_two_nights_is_invalid_on_the_first_only(small_drop):
    """The one check that reads the night's date. Tests validate through conftest's memo of GX's verdicts, which
    may give a night the verdict of another night with no birth date between them; here the nights either side
    of one must still differ."""
    raw = read_registry(small_drop / REGISTRIES["veterans"].filename, REGISTRIES["veterans"])
    body = "330503" + "20220715" + "001"
    frame = raw.frame.copy()
    frame.loc[0, "person_id"] = body + ric.calc_check_digit(body + "0")
    raw = dataclasses.replace(raw, frame=frame)

    def reasons(day: dt.date) -> str:
        q = validate_drop({"veterans": raw}, day)["veterans"].quarantine
        return ";".join(q.loc[q["row_number"] == int(frame.loc[0, ROW_COL]), "reasons"])

    assert "invalid_person_id" in reasons(dt.date(2022, 7, 14))
    assert "invalid_person_id" not in reasons(dt.date(2022, 7, 15))  # born that day
    assert "invalid_person_id" not in reasons(dt.date(2022, 7, 16))
    assert "invalid_person_id" in reasons(dt.date(2022, 7, 13))
