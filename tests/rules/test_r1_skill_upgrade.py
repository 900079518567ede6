"""R1 scenarios: each reason code, the amounts, the check order, the cap and slot order (POLICY.md R1)."""

import pandas as pd
import pytest

from tests.scenario import PEOPLE, certificate, decide_all, insured, staged

A, B, C = PEOPLE[0], PEOPLE[1], PEOPLE[2]


def verdict(d, no):
    row = d.loc[no]
    return (row["decision"], row["reason_code"] if row["decision"] == "rejected" else None, int(row["amount_fen"]))


@pytest.mark.parametrize("level,yuan", [("5", 1000), ("4", 1500), ("3", 2000), ("2", 4000), ("1", 6000)])
def test_level_amounts(level, yuan):
    d = decide_all(staged(social_insurance=[insured(A)],
                          certificates=[certificate("C1", A, "2020-05-01", level=level)]))
    assert verdict(d, "C1") == ("approved", None, yuan * 100)
    assert d.loc["C1", "rule_id"] == "R1" and d.loc["C1", "policy_version"] == "nanxun-2019"
    assert d.loc["C1", "subsidy_type"] == "skill_upgrade" and d.loc["C1", "department_code"] == "HRSS"


def test_special_ability_pays_the_cap():
    d = decide_all(staged(social_insurance=[insured(A)], certificates=[
        certificate("S1", A, "2020-05-01", level=None, occupation="ZJ-NX-001", kind="special_ability")]))
    assert verdict(d, "S1") == ("approved", None, 80000)
    assert d.loc["S1", "subsidy_type"] == "special_ability"


def test_revoked_is_checked_first():
    # revoked AND outside the window AND nobody insured: the first check wins
    d = decide_all(staged(certificates=[certificate("C1", A, "2018-03-01", status="revoked")]))
    assert verdict(d, "C1") == ("rejected", "certificate_revoked", 0)


@pytest.mark.parametrize("issued,inside", [("2018-12-31", False), ("2019-01-01", True), ("2021-12-31", True),
                                           ("2022-01-01", False)])
def test_policy_window_edges(issued, inside):
    d = decide_all(staged(social_insurance=[insured(A)], certificates=[certificate("C1", A, issued)]))
    assert d.loc["C1", "decision"] == ("approved" if inside else "rejected")
    if not inside:
        assert d.loc["C1", "reason_code"] == "outside_policy_window"


def test_staffed_civil_servant_excluded_only_while_staffed():
    stg = staged(social_insurance=[
        insured(A, "2010-01-01", "2019-12-31", category="public_institution_staffed"),
        insured(A, "2020-01-01", employer=1)],
        certificates=[certificate("C1", A, "2019-06-01"), certificate("C2", A, "2020-06-01", occupation="6-31-01-03")])
    d = decide_all(stg)
    assert verdict(d, "C1") == ("rejected", "civil_servant_excluded", 0)
    assert verdict(d, "C2") == ("approved", None, 150000)


def test_contract_staff_of_public_institutions_are_eligible():
    d = decide_all(staged(social_insurance=[insured(A, category="public_institution_contract")],
                          certificates=[certificate("C1", A, "2020-06-01")]))
    assert d.loc["C1", "decision"] == "approved"


def test_not_eligible_without_open_episode_or_key_group():
    d = decide_all(staged(social_insurance=[insured(A, "2010-01-01", "2019-12-31")],
                          certificates=[certificate("C1", A, "2020-01-01"), certificate("C2", A, "2019-12-31")]))
    assert verdict(d, "C1") == ("rejected", "not_eligible_group", 0)
    assert d.loc["C2", "decision"] == "approved"  # the episode's end date is still inside it


@pytest.mark.parametrize("klass,roster", [("NOPE", None), ("K1", None), ("K1", "false"), ("K1", "true")])
def test_the_training_route_does_not_matter(klass, roster):
    """Revision 2: "凭证书" — an unfiled class, a late filing or a missing roster entry is R7's business."""
    late = {"class_id": "K1", "department_code": "AGRI", "filed_on": "2020-03-01", "start_date": "2020-03-01",
            "end_date": "2020-03-20", "occupation_code": "6-18-01-01", "level": "4"}
    rows = [] if roster is None else [{"class_id": "K1", "person_id": A, "name": "学员", "attendance_days": "15",
                                       "passed": roster}]
    d = decide_all(staged(social_insurance=[insured(A)], training_classes=[late], class_enrollments=rows,
                          certificates=[certificate("C1", A, "2020-04-01", klass=klass)]))
    assert verdict(d, "C1") == ("approved", None, 150000)
    assert d.loc["C1", "department_code"] == "HRSS"  # R1 is always HRSS's, whoever ran the class


def _zhejiang_book(tmp_path):
    import shutil
    from pathlib import Path

    from subsidy_ledger.policy import PolicyBook

    example = Path(__file__).parents[2] / "docs/examples/policies/zhejiang-2020-07.yaml"
    shutil.copy(example, tmp_path / example.name)
    return PolicyBook.load(tmp_path)


@pytest.mark.parametrize("issued,months_needed", [("2020-06-30", 0), ("2020-07-01", 12)])
def test_insufficient_insurance_months_switches_on_with_a_later_version(tmp_path, issued, months_needed):
    """A mid-window version (docs/examples/policies/zhejiang-2020-07.yaml) amends nanxun-2019: 12 months of
    insurance from 2020-07-01; a claim on each side of the change date."""
    book = _zhejiang_book(tmp_path)
    start = "2019-10-01"  # 8 full months on 2020-06-30, 9 on 2020-07-01
    d = decide_all(staged(social_insurance=[insured(A, start)], certificates=[certificate("C1", A, issued)]),
                   book=book)
    version = "nanxun-2019" if months_needed == 0 else "zhejiang-2020-07"
    assert d.loc["C1", "policy_version"] == version
    if months_needed:
        assert verdict(d, "C1") == ("rejected", "insufficient_insurance_months", 0)
    else:
        assert verdict(d, "C1") == ("approved", None, 150000)


def test_insured_months_add_up_episodes_and_key_groups_need_none(tmp_path):
    book = _zhejiang_book(tmp_path)
    episodes = [insured(A, "2019-01-01", "2019-06-30", employer=1), insured(A, "2020-01-01", employer=2)]
    vet = [{"record_id": "V1", "person_id": B, "name": "退役", "discharged_on": "2010-01-01"}]
    d = decide_all(staged(social_insurance=[*episodes, insured(B, "2020-09-01")], veterans=vet,
                          certificates=[certificate("C1", A, "2020-07-01"), certificate("C2", A, "2020-08-01",
                                                                                       occupation="1-01-01-01"),
                                        certificate("B1", B, "2020-10-01")]), book=book)
    # 5 months (Jan-Jun 2019: 2019-01-01 -> 2019-06-30 holds five whole months) + 6 = 11 on 2020-07-01: one short
    assert verdict(d, "C1") == ("rejected", "insufficient_insurance_months", 0)
    assert verdict(d, "C2") == ("approved", None, 150000)  # 5 + 7 = 12
    assert verdict(d, "B1") == ("approved", None, 150000)  # a veteran qualifies as a key group, not by insurance


def test_the_cap_and_check_order_put_insufficient_months_after_the_group_check(tmp_path):
    book = _zhejiang_book(tmp_path)
    d = decide_all(staged(social_insurance=[insured(A, "2020-06-01", "2020-07-31")],
                          certificates=[certificate("C1", A, "2020-08-01")]), book=book)
    assert verdict(d, "C1") == ("rejected", "not_eligible_group", 0)


def test_paid_by_city_by_number_or_by_occupation_and_level():
    city = [{"person_id": A, "occupation_code": "X-1", "level": "5", "certificate_no": "C1", "paid_on": "2020-06-01",
             "amount": "1000.00"},
            {"person_id": A, "occupation_code": "6-18-01-01", "level": "3", "certificate_no": "CITY9",
             "paid_on": "2020-06-01", "amount": "2000.00"}]
    d = decide_all(staged(social_insurance=[insured(A)], city_payouts=city, certificates=[
        certificate("C1", A, "2020-05-01"), certificate("C2", A, "2021-05-01", level="3"),
        certificate("C3", A, "2021-06-01", level="2")]))
    assert verdict(d, "C1") == ("rejected", "paid_by_city", 0)
    assert verdict(d, "C2") == ("rejected", "paid_by_city", 0)
    assert verdict(d, "C3") == ("approved", None, 400000)


def test_a_city_payout_after_the_run_date_is_not_known_yet():
    city = [{"person_id": A, "occupation_code": "X-1", "level": "5", "certificate_no": "C1", "paid_on": "2020-09-01",
             "amount": "1000.00"}]
    stg = staged(social_insurance=[insured(A)], city_payouts=city, certificates=[certificate("C1", A, "2020-05-01")])
    assert verdict(decide_all(stg, as_of="2020-08-31"), "C1") == ("approved", None, 150000)
    assert verdict(decide_all(stg, as_of="2020-09-01"), "C1") == ("rejected", "paid_by_city", 0)


def test_a_city_payout_recorded_after_the_districts_does_not_reverse_it():
    """市、区政策不重复享受, but the district's payout stands: the pair goes to city_overlaps.csv for HRSS."""
    city = [{"person_id": A, "occupation_code": "6-18-01-01", "level": "4", "certificate_no": "C1",
             "paid_on": "2020-09-01", "amount": "1500.00"}]
    stg = staged(social_insurance=[insured(A)], city_payouts=city, certificates=[certificate("C1", A, "2020-05-01")])
    d = decide_all(stg, paid=[("skill_upgrade", "C1", A)])
    assert verdict(d, "C1") == ("approved", None, 150000)


def test_city_payouts_take_places_under_the_annual_cap():
    city = [{"person_id": A, "occupation_code": f"9-0{i}", "level": "5", "certificate_no": f"HZ{i}",
             "paid_on": f"2020-0{i + 1}-15", "amount": "1000.00"} for i in range(2)]
    # a third city payout paid in 2021 for a certificate issued in 2020 counts in 2020 (its certificate's year)
    city.append({"person_id": A, "occupation_code": "9-09", "level": "5", "certificate_no": "CC",
                 "paid_on": "2021-02-01", "amount": "1000.00"})
    certs = [certificate("CC", A, "2020-12-01", level="5", occupation="9-09"),
             certificate("C1", A, "2020-05-01", occupation="1-01-01-01"),
             certificate("C2", A, "2021-05-01", occupation="1-01-01-02")]
    d = decide_all(staged(social_insurance=[insured(A)], city_payouts=city, certificates=certs))
    assert verdict(d, "CC") == ("rejected", "paid_by_city", 0)
    assert verdict(d, "C1") == ("rejected", "annual_cap_reached", 0)  # 3 city payouts in 2020 already
    assert verdict(d, "C2") == ("approved", None, 150000)


def test_paid_as_training_subsidy_for_the_same_occupation_and_level():
    import datetime as dt

    from subsidy_ledger import contract, decide, eligibility
    from subsidy_ledger.policy import PolicyBook

    book = PolicyBook.load()
    stg = staged(social_insurance=[insured(A)], certificates=[
        certificate("C1", A, "2020-05-01", level="4"), certificate("C2", A, "2020-06-01", level="3"),
        certificate("S1", A, "2020-07-01", level=None, occupation="ZJ-NX-001", kind="special_ability")])
    e = eligibility.build_certificate_eligibility(stg, dt.date(2022, 6, 30), book)
    training = pd.DataFrame({"person_id": [A, A], "occupation_code": ["6-18-01-01", "ZJ-NX-001"],
                             "level": pd.array([4, pd.NA], dtype="Int64")})
    d = decide.decide_certificates(e, book, pd.DataFrame(columns=contract.CLAIM_KEY),
                                   training_approved=training).set_index("reference")
    assert verdict(d, "C1") == ("rejected", "paid_as_training_subsidy", 0)
    assert verdict(d, "S1") == ("rejected", "paid_as_training_subsidy", 0)
    assert verdict(d, "C2") == ("approved", None, 200000)


def test_one_subsidy_per_occupation_and_level_across_qualification_and_skill_level():
    d = decide_all(staged(social_insurance=[insured(A)], certificates=[
        certificate("C1", A, "2019-05-01", kind="vocational_qualification"),
        certificate("C2", A, "2020-05-01", kind="skill_level"),
        certificate("C3", A, "2020-06-01", level="3"),
        certificate("S1", A, "2020-07-01", level=None, occupation="ZJ-1", kind="special_ability"),
        certificate("S2", A, "2021-07-01", level=None, occupation="ZJ-1", kind="special_ability")]))
    assert verdict(d, "C1")[0] == "approved"
    assert verdict(d, "C2") == ("rejected", "duplicate_occupation_level", 0)
    assert verdict(d, "C3")[0] == "approved"
    assert verdict(d, "S1")[0] == "approved"
    assert verdict(d, "S2") == ("rejected", "duplicate_occupation_level", 0)


def test_annual_cap_in_issue_order_and_rejected_claims_use_no_place():
    occs = ["1-01-01-01", "1-01-01-02", "1-01-01-03", "1-01-01-04"]
    certs = [certificate("R0", A, "2020-01-05", occupation="9-99-99-99", status="revoked")]
    certs += [certificate(f"C{i}", A, f"2020-0{i + 2}-01", occupation=o) for i, o in enumerate(occs)]
    certs.append(certificate("N1", A, "2021-01-10", occupation=occs[3]))  # same slot as the capped C3
    d = decide_all(staged(social_insurance=[insured(A)], certificates=certs))
    assert [d.loc[f"C{i}", "decision"] for i in range(4)] == ["approved"] * 3 + ["rejected"]
    assert d.loc["C3", "reason_code"] == "annual_cap_reached"
    assert d.loc["R0", "reason_code"] == "certificate_revoked"
    assert list(d.loc[["C0", "C1", "C2"], "cap_place"]) == [1, 2, 3]
    # C3 was rejected, so it took neither a cap place nor the occupation-level slot
    assert verdict(d, "N1") == ("approved", None, 150000)


def test_same_day_certificates_are_ordered_by_number():
    certs = [certificate(f"C{i}", A, "2020-03-01", occupation=f"1-01-01-0{i}") for i in (4, 2, 3, 1)]
    d = decide_all(staged(social_insurance=[insured(A)], certificates=certs))
    assert d.loc["C4", "reason_code"] == "annual_cap_reached"
    assert (d.loc[["C1", "C2", "C3"], "decision"] == "approved").all()


def test_a_paid_claim_keeps_its_cap_place_when_an_earlier_certificate_arrives_late():
    occs = ["1-01-01-01", "1-01-01-02", "1-01-01-03"]
    paid = [certificate(f"P{i}", A, f"2020-0{i + 5}-01", occupation=o) for i, o in enumerate(occs)]
    late = certificate("L1", A, "2020-02-01", occupation="1-01-01-09")
    stg = staged(social_insurance=[insured(A)], certificates=[*paid, late])
    fresh = decide_all(stg)
    assert fresh.loc["L1", "decision"] == "approved" and fresh.loc["P2", "reason_code"] == "annual_cap_reached"
    kept = decide_all(stg, paid=[("skill_upgrade", f"P{i}", A) for i in range(3)])
    assert (kept.loc[["P0", "P1", "P2"], "decision"] == "approved").all()
    assert verdict(kept, "L1") == ("rejected", "annual_cap_reached", 0)


def test_a_paid_claim_whose_own_records_fail_loses_its_place():
    stg = staged(social_insurance=[insured(A)], certificates=[
        certificate("P1", A, "2020-05-01", status="revoked"), certificate("L1", A, "2020-02-01")])
    d = decide_all(stg, paid=[("skill_upgrade", "P1", A)])
    assert d.loc["P1", "reason_code"] == "certificate_revoked"
    assert d.loc["L1", "decision"] == "approved"


def test_certificates_after_the_as_of_date_are_not_decided_yet():
    d = decide_all(staged(social_insurance=[insured(A)], certificates=[
        certificate("C1", A, "2020-05-01"), certificate("C2", A, "2020-07-01", level="3")]), as_of="2020-06-01")
    assert list(d.index) == ["C1"]


def test_people_are_decided_independently():
    certs = [certificate(f"A{i}", A, "2020-03-01", occupation=f"1-01-01-0{i}") for i in range(4)]
    certs += [certificate("B1", B, "2020-03-01", occupation="1-01-01-01")]
    d = decide_all(staged(social_insurance=[insured(A), insured(B)], certificates=certs))
    assert d.loc["B1", "decision"] == "approved"
    assert (d["reason_code"] == "annual_cap_reached").sum() == 1
