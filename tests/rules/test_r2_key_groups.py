"""R2: unemployment registration, low-income record or veteran status on the issue date (POLICY.md R2)."""

import pytest

from tests.scenario import PEOPLE, certificate, decide_all, staged

A = PEOPLE[3]


def _decide(**registries):
    return decide_all(staged(certificates=[certificate("C1", A, "2020-06-01")], **registries)).loc["C1"]


@pytest.mark.parametrize("reg_on,ended,ok", [("2020-01-01", None, True), ("2020-01-01", "2020-06-01", True),
                                             ("2020-01-01", "2020-05-31", False), ("2020-06-02", None, False)])
def test_open_unemployment_registration(reg_on, ended, ok):
    row = {"record_id": "U1", "person_id": A, "name": "x", "registered_on": reg_on, "ended_on": ended,
           "area": "rural"}
    d = _decide(unemployment_registrations=[row])
    assert (d["decision"] == "approved") is ok
    if not ok:
        assert d["reason_code"] == "not_eligible_group"


@pytest.mark.parametrize("category", ["low_income_rural_household", "urban_minimum_living",
                                      "zero_employment_family", "employment_difficulty", "disabled"])
def test_any_low_income_category_valid_on_the_date(category):
    row = {"record_id": "L1", "person_id": A, "name": "x", "household_id": "H1", "category": category,
           "valid_from": "2019-01-01", "valid_to": "2020-12-31"}
    assert _decide(low_income=[row])["decision"] == "approved"


def test_expired_low_income_record_does_not_count():
    row = {"record_id": "L1", "person_id": A, "name": "x", "household_id": "H1", "category": "disabled",
           "valid_from": "2019-01-01", "valid_to": "2020-05-31"}
    assert _decide(low_income=[row])["reason_code"] == "not_eligible_group"


@pytest.mark.parametrize("discharged,ok", [("2020-06-01", True), ("2020-06-02", False)])
def test_veteran_discharged_on_or_before(discharged, ok):
    d = _decide(veterans=[{"record_id": "V1", "person_id": A, "name": "x", "discharged_on": discharged}])
    assert (d["decision"] == "approved") is ok
