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


def test_a_later_version_supersedes_from_its_start_and_the_earlier_resumes_after_its_end(tmp_path):
    _write(tmp_path, "interim", "2020-07-01", "2020-12-31", amount="1100.00")
    book = PolicyBook.load(tmp_path)
    got = book.version_of(pd.Series(pd.to_datetime(["2020-06-30", "2020-07-01", "2020-12-31", "2021-01-01"])))
    assert got.tolist() == ["nanxun-2019", "interim", "interim", "nanxun-2019"]


@pytest.mark.parametrize("dtype", ["string", "str", object])
def test_per_version_gives_what_mapping_each_row_gives(tmp_path, dtype):
    """per_version maps each distinct name once; its values, dtype, index and name are Series.map's, missing
    and unknown names included."""
    _write(tmp_path, "nanxun-2022", "2022-01-01", "2022-12-31", amount="1200.00")
    book = PolicyBook.load(tmp_path)
    getters = (lambda v: v.level_amount_fen(5), lambda v: v.annual_cap, lambda v: v.uplift_last_issue_date,
               lambda v: v.certificate_department)
    for names in (["nanxun-2022", None, "nanxun-2019", "unknown", "nanxun-2022"], ["nanxun-2019"], [None], []):
        versions = pd.Series(names, dtype=dtype, index=range(10, 10 + len(names)), name="policy_version")
        for getter in getters:
            expected = versions.map({n: getter(v) for n, v in book.by_name.items()})
            pd.testing.assert_series_equal(book.per_version(versions, getter), expected)
    assert book.per_version(pd.Series(["nanxun-2022", "nanxun-2019"]), getters[0]).tolist() == [120000, 100000]


def test_versions_starting_on_the_same_day_are_refused(tmp_path):
    _write(tmp_path, "twin", "2019-01-01", "2020-12-31")
    with pytest.raises(PolicyError, match="same day"):
        PolicyBook.load(tmp_path)


def test_an_amending_version_states_only_what_changes(tmp_path):
    (tmp_path / "z.yaml").write_text((EXAMPLE / "zhejiang-2020-07.yaml").read_text("utf-8"), "utf-8")
    book = PolicyBook.load(tmp_path)
    base, new = book.by_name["nanxun-2019"], book.by_name["zhejiang-2020-07"]
    assert (base.minimum_insured_months, new.minimum_insured_months) == (0, 12)
    assert new.level_amount_fen(5) == base.level_amount_fen(5) and new.departments == base.departments
    assert new.living_allowance_categories == base.living_allowance_categories


@pytest.mark.parametrize("text,message", [
    ("version: x\namends: nowhere\neffective_from: 2020-01-01\neffective_to: 2020-12-31\nparameters: {}\n",
     "no policy file defines"),
    ("version: x\namends: nanxun-2019\neffective_from: 2020-01-01\neffective_to: 2020-12-31\n"
     "parameters: {minimum_insured_months: -1}\n", "cannot be negative"),
    ("version: nanxun-2019\neffective_from: 2020-01-01\neffective_to: 2020-12-31\nparameters: {}\n",
     "defined twice"),
])
def test_bad_amendments_are_refused(tmp_path, text, message):
    (tmp_path / "x.yaml").write_text(text, "utf-8")
    with pytest.raises(PolicyError, match=message):
        PolicyBook.load(tmp_path)


def test_sub_fen_amounts_are_refused(tmp_path):
    _write(tmp_path, "bad", "2023-01-01", "2023-12-31", amount="1000.005")
    with pytest.raises(PolicyError, match="malformed"):
        PolicyBook.load(tmp_path)


EXAMPLE = Path(__file__).parents[1] / "docs/examples/policies"


def _only(tmp_path, name):
    (tmp_path / name).write_text((EXAMPLE / name).read_text("utf-8"), "utf-8")
    return tmp_path


def test_the_documented_example_version_prices_every_rule_from_its_start_date(tmp_path):
    from tests.scenario import (
        PEOPLE,
        agreement,
        certificate,
        decide_all,
        decide_apprentices,
        decide_living,
        enrolled,
        insured,
        low_income,
        staged,
        training_class,
    )

    book = PolicyBook.load(_only(tmp_path, "nanxun-2022.yaml"))
    # b takes the second class (one person on two overlapping classes is held) and the second employee
    # agreement (three apprentice years per person across agreements)
    a, b = PEOPLE[5], PEOPLE[6]
    stg = staged(
        social_insurance=[insured(a), insured(b)], low_income=[low_income(a), low_income(b)],
        certificates=[certificate("C1", a, "2021-12-31", level="5"),
                      certificate("C2", a, "2022-01-01", level="5", occupation="6-31-01-03")],
        apprenticeships=[agreement("E1", a, "employee", "2020-12-20"), agreement("E2", b, "employee", "2021-01-05"),
                         agreement("S1", a, "student", "2022-01-01", allowance="400.00")],
        training_classes=[training_class("K1", "2021-12-31", "2022-01-09"),
                          training_class("K2", "2022-01-01", "2022-01-10")],
        class_enrollments=[enrolled("K1", a, "5"), enrolled("K2", b, "5")])
    certs = decide_all(stg, as_of="2023-06-30", book=book)
    assert certs.loc["C1", ["amount_fen", "policy_version"]].tolist() == [100000, "nanxun-2019"]
    assert certs.loc["C2", ["amount_fen", "policy_version"]].tolist() == [120000, "nanxun-2022"]
    ap = decide_apprentices(stg, as_of="2023-06-30", book=book)
    # year 2 of E1 begins 2021-12-20 (old price); year 2 of E2 begins 2022-01-05 (new price)
    assert ap.loc["E1#2", ["amount_fen", "policy_version"]].tolist() == [400000, "nanxun-2019"]
    assert ap.loc["E2#2", ["amount_fen", "policy_version"]].tolist() == [500000, "nanxun-2022"]
    assert ap.loc["E2#3", "reason_code"] == "outside_policy_window"  # begins 2023-01-05: no version then
    assert ap.loc["S1#1", ["amount_fen", "policy_version"]].tolist() == [360000, "nanxun-2022"]  # 12 x 400 capped
    la = decide_living(stg, as_of="2023-06-30", book=book)
    assert la.loc[("K1", a), "amount_fen"] == 15000 and la.loc[("K2", b), "amount_fen"] == 20000
    assert la.loc[("K2", b), "policy_version"] == "nanxun-2022"


@pytest.mark.parametrize("key", ["max_years", "months_counted"])
def test_counts_below_one_are_refused(tmp_path, key):
    text = (EXAMPLE / "nanxun-2022.yaml").read_text("utf-8")
    (tmp_path / "v.yaml").write_text(text.replace(f"{key}: 3", f"{key}: 0").replace(f"{key}: 12", f"{key}: 0"),
                                     "utf-8")
    with pytest.raises(PolicyError, match=key):
        PolicyBook.load(tmp_path)


def test_an_amendment_from_its_bases_first_day_supersedes_it(tmp_path):
    (tmp_path / "a.yaml").write_text("version: nanxun-2019-corrected\namends: nanxun-2019\neffective_from: 2019-01-01\n"
                                     "effective_to: 2021-12-31\nparameters: {publicity_working_days: 3}\n", "utf-8")
    book = PolicyBook.load(tmp_path)
    got = book.version_of(pd.Series(pd.to_datetime(["2019-01-01", "2021-12-31"])))
    assert got.tolist() == ["nanxun-2019-corrected"] * 2
    assert book.by_name["nanxun-2019-corrected"].publicity_working_days == 3


def test_the_plans_targets_are_read_from_the_policy_file():
    t = PolicyBook.load().targets
    assert (t.person_times, str(t.period_from), str(t.period_to)) == (30_000, "2019-01-01", "2021-12-31")
    assert (t.skilled_share_units, t.high_skill_share_units, t.high_skill_levels) == (2600, 3100, (1, 2, 3))


def test_an_amendment_keeps_its_bases_targets_and_targets_do_not_change_the_fingerprint(tmp_path):
    (tmp_path / "amend.yaml").write_text("version: amend\namends: nanxun-2019\neffective_from: 2021-01-01\n"
                                         "effective_to: 2021-12-31\nparameters: {}\n", "utf-8")
    book = PolicyBook.load(tmp_path)
    assert book.by_name["amend"].targets == book.by_name["nanxun-2019"].targets == book.targets
    _write(tmp_path, "later", "2022-01-01", "2022-12-31")
    text = (tmp_path / "later.yaml").read_text("utf-8").replace("person_times: 30000", "person_times: 40000")
    (tmp_path / "later.yaml").write_text(text, "utf-8")
    moved = PolicyBook.load(tmp_path)
    assert moved.targets.person_times == 40_000  # the latest-starting version that states targets
    (tmp_path / "later.yaml").write_text(text.replace("person_times: 40000", "person_times: 30000"), "utf-8")
    assert PolicyBook.load(tmp_path).fingerprint == moved.fingerprint


@pytest.mark.parametrize("change, message", [
    ('skilled_share: "0.26"', 'skilled_share: "0.26x"'), ("period_to: 2021-12-31", "period_to: 2018-12-31"),
    ("high_skill_levels: [1, 2, 3]", "high_skill_levels: [0, 3]")])
def test_malformed_targets_are_refused(tmp_path, change, message):
    _write(tmp_path, "bad", "2022-01-01", "2022-12-31")
    path = tmp_path / "bad.yaml"
    path.write_text(path.read_text("utf-8").replace(change, message), "utf-8")
    with pytest.raises(PolicyError, match="targets"):
        PolicyBook.load(tmp_path)
