"""Eligibility: join the staged registries into one row of facts per certificate claim (intermediate layer).

Each fact is what R1's checks ask about the issue date; the decision itself is made in decide.py.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .intervals import add_months, covering, full_months
from .policy import PolicyBook
from .rules import r2_key_groups, r3_uplift
from .rules import r4_employee_apprentice as r4
from .rules import r5_student_apprentice as r5

ELIGIBILITY_COLUMNS = [
    "certificate_no", "person_id", "name", "certificate_type", "occupation_code", "level", "issued_on",
    "training_class_id", "status", "policy_version", "civil_servant", "insured", "key_group",
    "class_filed_in_advance", "on_roster", "paid_by_city", "uplift_units", "catalog_amount_fen",
    "department_code",
]


def claims_due(certificates: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Certificates issued on or before the as-of date: the claims this run decides."""
    due = certificates.loc[certificates["issued_on"] <= pd.Timestamp(as_of)]
    return due.reset_index(drop=True)


def _civil_servant(certs, insurance, book: PolicyBook) -> pd.Series:
    pairs = covering(certs, "issued_on", insurance, "start_date", "end_date", keep=("employer_category",))
    excluded = pd.DataFrame([(v.version, c) for v in book.versions for c in v.civil_servant_categories],
                            columns=["policy_version", "employer_category"])
    pairs = pairs.assign(policy_version=certs["policy_version"].reindex(pairs["event"]).to_numpy())
    hit = pairs.merge(excluded, on=["policy_version", "employer_category"])["event"].unique()
    return pd.Series(certs.index.isin(hit), index=certs.index)


def _class_facts(certs, classes, enrollments, book: PolicyBook) -> pd.DataFrame:
    named = certs["training_class_id"]
    cls = classes.set_index("class_id")
    known = named.isin(cls.index)
    filed = cls["filed_on"].reindex(named).to_numpy()
    start = cls["start_date"].reindex(named).to_numpy()
    in_advance = pd.Series(np.where(known, filed < start, False), index=certs.index).astype("boolean")
    in_advance[named.isna()] = pd.NA
    passed = enrollments.loc[enrollments["passed"], ["class_id", "person_id"]].assign(_ok=True)
    roster = certs[["training_class_id", "person_id"]].merge(
        passed, left_on=["training_class_id", "person_id"], right_on=["class_id", "person_id"], how="left")
    on_roster = pd.Series(roster["_ok"].fillna(False).to_numpy(dtype=bool), index=certs.index).astype("boolean")
    on_roster[named.isna()] = pd.NA
    fallback = book.versions[0].department_without_class
    by_version = certs["policy_version"].map({v.version: v.department_without_class for v in book.versions})
    dept = cls["department_code"].reindex(named).to_numpy()
    dept = pd.Series(dept, index=certs.index, dtype="string").fillna(by_version).fillna(fallback)
    return pd.DataFrame({"class_filed_in_advance": in_advance, "on_roster": on_roster, "department_code": dept})


def _paid_by_city(certs, city) -> pd.Series:
    by_no = certs["certificate_no"].isin(city["certificate_no"])
    keys = city[["person_id", "occupation_code", "level"]].drop_duplicates().assign(_hit=True)
    same = certs[["person_id", "occupation_code", "level"]].merge(keys, how="left",
                                                                 on=["person_id", "occupation_code", "level"])
    return by_no | pd.Series(same["_hit"].fillna(False).to_numpy(dtype=bool), index=certs.index)


def _catalog_amount(certs, catalog) -> pd.Series:
    if catalog.empty:
        return pd.Series(pd.NA, index=certs.index, dtype="Int64")
    left = certs[["certificate_type", "occupation_code", "level", "issued_on"]].reset_index(names="event")
    rows = left.merge(catalog, on=["certificate_type", "occupation_code", "level"], how="inner")
    rows = rows.loc[(rows["effective_from"] <= rows["issued_on"])
                    & (rows["issued_on"] <= rows["effective_to"].fillna(pd.Timestamp.max))]
    latest = rows.sort_values("effective_from").groupby("event")["amount"].last()
    return latest.reindex(certs.index).astype("Int64")


def build_certificate_eligibility(stg: dict[str, pd.DataFrame], as_of: dt.date, book: PolicyBook) -> pd.DataFrame:
    """One row of R1-R3 facts per certificate issued on or before as_of."""
    certs = claims_due(stg["certificates"], as_of)
    certs["policy_version"] = book.version_of(certs["issued_on"])
    versions = certs["policy_version"]
    fallback = book.versions[-1]
    default_units = book.per_version(versions, lambda v: v.default_uplift_units).fillna(
        fallback.default_uplift_units)
    last_uplift = pd.to_datetime(book.per_version(versions, lambda v: v.uplift_last_issue_date))
    out = certs.assign(
        civil_servant=_civil_servant(certs, stg["social_insurance"], book),
        insured=pd.Series(certs.index.isin(covering(certs, "issued_on", stg["social_insurance"],
                                                    "start_date", "end_date")["event"]), index=certs.index),
        key_group=r2_key_groups.in_key_group(certs, "issued_on", stg["unemployment_registrations"],
                                             stg["low_income"], stg["veterans"]),
        paid_by_city=_paid_by_city(certs, stg["city_payouts"]),
        uplift_units=r3_uplift.uplift_units(certs, stg["social_insurance"], stg["affected_enterprises"],
                                            default_units, last_uplift),
        catalog_amount_fen=_catalog_amount(certs, stg["subsidy_catalog"]),
    )
    out = pd.concat([out, _class_facts(certs, stg["training_classes"], stg["class_enrollments"], book)], axis=1)
    return out[ELIGIBILITY_COLUMNS]


APPRENTICE_COLUMNS = [
    "subsidy_type", "reference", "agreement_id", "year", "person_id", "name", "period_start", "period_end",
    "agreement_end", "policy_version", "months_served", "monthly_allowance_fen", "department_code",
]


def _employee_years(agreements: pd.DataFrame, as_of: pd.Timestamp, book: PolicyBook) -> pd.DataFrame:
    """R4: one row per agreement year that has begun by as_of and before the agreement ended."""
    emp = agreements.loc[agreements["apprentice_kind"] == r4.KIND]
    most = max(v.apprentice_max_years for v in book.versions)
    years = []
    for k in range(1, most + 1):
        start = add_months(emp["start_date"], 12 * (k - 1))
        years.append(emp.assign(year=k, period_start=start, period_end=add_months(emp["start_date"], 12 * k)))
    y = pd.concat(years, ignore_index=True)
    begun = (y["period_start"] <= as_of) & ~(y["period_start"] >= y["end_date"]).fillna(False)
    y = y.loc[begun].reset_index(drop=True)
    return y.assign(subsidy_type=r4.SUBSIDY_TYPE, reference=r4.reference(y["agreement_id"], y["year"]),
                    policy_version=book.version_of(y["period_start"]), months_served=pd.NA)


def _student_agreements(agreements: pd.DataFrame, as_of: pd.Timestamp, book: PolicyBook) -> pd.DataFrame:
    """R5: one row per student agreement begun by as_of, with its counted period and months served."""
    st = agreements.loc[(agreements["apprentice_kind"] == r5.KIND) & (agreements["start_date"] <= as_of)]
    st = st.reset_index(drop=True)
    version = book.version_of(st["start_date"])
    # The counted period's length comes from the version pricing the agreement (the latest one outside it).
    months = book.per_version(version, lambda v: v.student_months_counted).fillna(
        book.versions[-1].student_months_counted).astype("int64")
    counted_end = add_months(st["start_date"], months)
    end = counted_end.where(~(st["end_date"] < counted_end).fillna(False), st["end_date"])
    return st.assign(subsidy_type=r5.SUBSIDY_TYPE, reference=st["agreement_id"] + "#1", year=1,
                     period_start=st["start_date"], period_end=end, policy_version=version,
                     months_served=full_months(st["start_date"], end))


def build_apprentice_eligibility(stg: dict[str, pd.DataFrame], as_of: dt.date, book: PolicyBook) -> pd.DataFrame:
    """One row of R4/R5 facts per apprentice claim (employee agreement year, or student agreement)."""
    a = stg["apprenticeships"]
    when = pd.Timestamp(as_of)
    out = pd.concat([_employee_years(a, when, book), _student_agreements(a, when, book)], ignore_index=True)
    out = out.rename(columns={"end_date": "agreement_end", "monthly_allowance": "monthly_allowance_fen"})
    out["year"] = out["year"].astype("int64")
    out["months_served"] = out["months_served"].astype("Int64")
    return out[APPRENTICE_COLUMNS]


LIVING_COLUMNS = [
    "class_id", "person_id", "name", "department_code", "occupation_code", "level", "filed_in_advance",
    "start_date", "end_date", "policy_version", "attendance_days", "class_days", "qualifying_group",
    "overlapping_attendance",
]


def overlapping_entries(enrollments: pd.DataFrame, classes: pd.DataFrame) -> pd.DataFrame:
    """(class_id, person_id) roster entries of a person who is on the rosters of two classes whose date
    ranges overlap (资金监管: one person cannot attend both; both entries wait for a corrected roster)."""
    r = enrollments[["class_id", "person_id"]].merge(classes[["class_id", "start_date", "end_date"]],
                                                     on="class_id", how="inner")
    r = r.loc[r["person_id"].duplicated(keep=False) & r["start_date"].notna()]
    end = r["end_date"].fillna(r["start_date"])
    r = r.assign(end_date=end)
    pairs = r.merge(r, on="person_id", suffixes=("", "_other"))
    hit = pairs.loc[(pairs["class_id"] != pairs["class_id_other"])
                    & (pairs["start_date"] <= pairs["end_date_other"])
                    & (pairs["start_date_other"] <= pairs["end_date"])]
    return hit[["class_id", "person_id"]].drop_duplicates().reset_index(drop=True)


def build_living_allowance_eligibility(stg: dict[str, pd.DataFrame], as_of: dt.date,
                                       book: PolicyBook) -> pd.DataFrame:
    """One row of R6 facts per roster entry whose person has ever had a qualifying low_income record.

    Other trainees make no living-allowance claim at all (decided here: they would only add noise).
    """
    categories = sorted({c for v in book.versions for c in v.living_allowance_categories})
    low = stg["low_income"]
    low = low.loc[low["category"].isin(categories)]
    roster = stg["class_enrollments"]
    roster = roster.loc[roster["person_id"].isin(low["person_id"])]
    cls = stg["training_classes"].drop(columns=["run_id", "source_row", "town_code"], errors="ignore")
    f = roster[["class_id", "person_id", "name", "attendance_days"]].merge(cls, on="class_id", how="left")
    f = f.loc[~(f["start_date"] > pd.Timestamp(as_of)).fillna(False)].reset_index(drop=True)
    f["policy_version"] = book.version_of(f["start_date"])
    f["filed_in_advance"] = (f["filed_on"] < f["start_date"]).fillna(False).astype(bool)
    f["class_days"] = ((f["end_date"] - f["start_date"]).dt.days + 1).astype("Int64")
    # the categories that qualify are those of the version in force on the class start date
    pairs = covering(f, "start_date", low, "valid_from", "valid_to", keep=("category",))
    pairs = pairs.assign(policy_version=f["policy_version"].reindex(pairs["event"]).to_numpy())
    allowed = pd.DataFrame([(v.version, c) for v in book.versions for c in v.living_allowance_categories],
                           columns=["policy_version", "category"])
    hit = pairs.merge(allowed, on=["policy_version", "category"])["event"].unique()
    f["qualifying_group"] = f.index.isin(hit)
    overlap = overlapping_entries(stg["class_enrollments"], stg["training_classes"]).assign(_o=True)
    f["overlapping_attendance"] = f[["class_id", "person_id"]].merge(
        overlap, on=["class_id", "person_id"], how="left")["_o"].fillna(False).astype(bool).to_numpy()
    fallback = book.versions[0].department_without_class
    f["department_code"] = f["department_code"].fillna(
        f["policy_version"].map({v.version: v.department_without_class for v in book.versions})).fillna(fallback)
    return f[LIVING_COLUMNS]
