"""Eligibility: join the staged registries into one row of facts per certificate claim (intermediate layer).

Each fact is what R1's checks ask about the issue date; the decision itself is made in decide.py.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .intervals import covering
from .policy import PolicyBook
from .rules import r2_key_groups, r3_uplift

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
