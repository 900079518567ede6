"""Scope of an incremental run: the persons whose certificate claims (R1) must be decided again.

A person's R1 decisions depend only on rows carrying that person's id, on the classes their certificates
or roster entries name, on the affected-enterprise list for their employers, on the catalog for their
occupations, and on which certificates are due by the as-of date. Everyone else keeps the decisions of
the previous run, which the ledger already reflects.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from .extract import HASH_COL
from .fastops import isin

# Columns of the previous snapshot an incremental run needs to see what a removed row touched.
LINK_COLUMNS = ("person_id", "class_id", "employer_credit_code", "occupation_code", "certificate_no")


def _diff(now: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """Rows that are new or changed now, plus rows of before that are gone (as they were)."""
    added = now.loc[~isin(now[HASH_COL], before["row_hash"])].rename(columns={HASH_COL: "row_hash"})
    removed = before.loc[~isin(before["row_hash"].astype("string"), now[HASH_COL])]
    return pd.concat([added, removed], ignore_index=True)


def changed_persons(now: dict[str, pd.DataFrame], before: dict[str, pd.DataFrame], before_as_of: dt.date,
                    as_of: dt.date) -> set[str]:
    """Persons whose R1 claims may have a different decision now than in the run `before` comes from."""
    diffs = {name: _diff(now[name], before[name]) for name in now}
    persons: set[str] = set()
    for d in diffs.values():
        if "person_id" in d:
            persons.update(d["person_id"].dropna())
    certs = now["certificates"]
    classes = set(diffs["training_classes"]["class_id"].dropna())
    if classes:
        roster = now["class_enrollments"]
        persons.update(roster.loc[roster["class_id"].isin(classes), "person_id"])
        persons.update(certs.loc[certs["training_class_id"].isin(classes), "person_id"])
    # a city payout names a certificate number, which may be another person's certificate
    numbers = set(diffs["city_payouts"]["certificate_no"].dropna())
    if numbers:
        persons.update(certs.loc[certs["certificate_no"].isin(numbers), "person_id"])
    employers = set(diffs["affected_enterprises"]["employer_credit_code"].dropna())
    if employers:
        ins = now["social_insurance"]
        persons.update(ins.loc[ins["employer_credit_code"].isin(employers), "person_id"])
    occupations = set(diffs["subsidy_catalog"]["occupation_code"].dropna())
    if occupations:
        persons.update(certs.loc[certs["occupation_code"].isin(occupations), "person_id"])
    # certificates that became due since the earlier run's as-of date
    due = (certs["issued_on"] > pd.Timestamp(before_as_of)) & (certs["issued_on"] <= pd.Timestamp(as_of))
    persons.update(certs.loc[due, "person_id"])
    return persons
