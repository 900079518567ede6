"""R3: trade-friction uplift, its default rate, its end date and its half-up rounding (POLICY.md R3)."""

from pathlib import Path

import pytest
from subsidy_ledger.money import apply_uplift
from subsidy_ledger.policy import PolicyBook

from tests.scenario import EMPLOYERS, PEOPLE, certificate, decide_all, insured, staged

A = PEOPLE[4]


def affected(employer=0, listed="2019-01-01", rate="0.15"):
    return {"employer_credit_code": EMPLOYERS[employer], "employer_name": "受影响企业", "listed_on": listed,
            "uplift_rate": rate}


def test_listed_employer_raises_the_amount():
    d = decide_all(staged(social_insurance=[insured(A)], affected_enterprises=[affected()],
                          certificates=[certificate("C1", A, "2020-05-01")]))
    assert d.loc["C1", "amount_fen"] == 172500 and d.loc["C1", "uplift_units"] == 1500
    assert d.loc["C1", "rule_id"] == "R1"


def test_blank_rate_uses_the_policy_default():
    d = decide_all(staged(social_insurance=[insured(A)], affected_enterprises=[affected(rate=None)],
                          certificates=[certificate("C1", A, "2020-05-01")]))
    assert d.loc["C1", "amount_fen"] == 180000


def test_listing_after_the_issue_date_gives_nothing():
    d = decide_all(staged(social_insurance=[insured(A)], affected_enterprises=[affected(listed="2020-05-02")],
                          certificates=[certificate("C1", A, "2020-05-01")]))
    assert d.loc["C1", "amount_fen"] == 150000 and d.loc["C1", "uplift_units"] == 0


def test_only_the_episode_open_on_the_issue_date_counts():
    stg = staged(social_insurance=[insured(A, "2015-01-01", "2019-12-31", employer=0),
                                   insured(A, "2020-01-01", employer=1)],
                 affected_enterprises=[affected(employer=0)], certificates=[certificate("C1", A, "2020-05-01")])
    assert decide_all(stg).loc["C1", "amount_fen"] == 150000


def test_highest_rate_when_two_open_episodes_qualify():
    stg = staged(social_insurance=[insured(A, employer=0), insured(A, employer=1, start="2016-01-01")],
                 affected_enterprises=[affected(0, rate="0.10"), affected(1, rate="0.30")],
                 certificates=[certificate("C1", A, "2020-05-01")])
    assert decide_all(stg).loc["C1", "amount_fen"] == 195000


def test_uplift_applies_after_the_special_ability_cap():
    catalog = [{"occupation_code": "ZJ-1", "certificate_type": "special_ability", "level": None, "amount": "900.00",
                "effective_from": "2019-01-01"}]
    d = decide_all(staged(social_insurance=[insured(A)], affected_enterprises=[affected(rate="0.20")],
                          subsidy_catalog=catalog, certificates=[
                              certificate("S1", A, "2020-05-01", level=None, occupation="ZJ-1",
                                          kind="special_ability")]))
    assert d.loc["S1", "base_amount_fen"] == 80000 and d.loc["S1", "amount_fen"] == 96000


def test_rounding_is_half_up_to_the_fen():
    # special-ability catalog 123.55 yuan x 1.10 = 135.905 yuan: half up gives 135.91 (banker's gives 135.90)
    catalog = [{"occupation_code": "ZJ-NX-001", "certificate_type": "special_ability", "level": None,
                "amount": "123.55", "effective_from": "2019-01-01"}]
    d = decide_all(staged(social_insurance=[insured(A)], affected_enterprises=[affected(rate="0.10")],
                          subsidy_catalog=catalog, certificates=[
                              certificate("C1", A, "2020-05-01", level=None, occupation="ZJ-NX-001",
                                          kind="special_ability")]))
    assert d.loc["C1", "amount_fen"] == 13591


def test_apply_uplift_arithmetic():
    import pandas as pd

    got = apply_uplift(pd.Series([12355, 100000, 1]), pd.Series([1000, 1250, 5000]))
    assert got.tolist() == [13591, 112500, 2]


def test_no_uplift_for_certificates_issued_after_2021(tmp_path: Path):
    # a 2022 extension of the window (a new dated version) keeps R3's end date of 2021-12-31
    src = (Path(__file__).parents[2] / "include/subsidy_ledger/policies/nanxun-2019.yaml").read_text("utf-8")
    ext = src.replace("version: nanxun-2019", "version: nanxun-2022").replace(
        "effective_from: 2019-01-01", "effective_from: 2022-01-01").replace(
        "effective_to: 2021-12-31      #", "effective_to: 2022-12-31      #")
    (tmp_path / "nanxun-2022.yaml").write_text(ext, "utf-8")
    book = PolicyBook.load(tmp_path)
    stg = staged(social_insurance=[insured(A)], affected_enterprises=[affected()],
                 certificates=[certificate("C1", A, "2021-12-31"),
                               certificate("C2", A, "2022-01-01", occupation="6-31-01-03")])
    d = decide_all(stg, book=book)
    assert d.loc["C1", "amount_fen"] == 172500
    assert d.loc["C2", "amount_fen"] == 150000 and d.loc["C2", "policy_version"] == "nanxun-2022"


@pytest.mark.parametrize("rate", ["0.125", "0.3"])
def test_rates_with_few_or_many_decimals(rate):
    d = decide_all(staged(social_insurance=[insured(A)], affected_enterprises=[affected(rate=rate)],
                          certificates=[certificate("C1", A, "2020-05-01", level="5")]))
    assert d.loc["C1", "amount_fen"] == {"0.125": 112500, "0.3": 130000}[rate]
