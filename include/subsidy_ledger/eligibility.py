"""Eligibility: join the staged registries into one row of facts per claim (intermediate layer).

Each fact is what a rule's checks ask about the claim's event date; the decision itself is made in decide.py.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from . import contract
from .intervals import add_months, covering, full_months
from .policy import PolicyBook
from .rules import r2_key_groups, r3_uplift
from .rules import r4_employee_apprentice as r4
from .rules import r5_student_apprentice as r5

ELIGIBILITY_COLUMNS = [
    "certificate_no", "person_id", "name", "certificate_type", "occupation_code", "level", "issued_on",
    "training_class_id", "status", "policy_version", "civil_servant", "insured", "key_group", "insured_months",
    "paid_by_city", "uplift_units", "catalog_amount_fen", "department_code",
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


def insured_months(events: pd.DataFrame, date_col: str, insurance: pd.DataFrame) -> pd.Series:
    """Full calendar months of the person's insurance episodes up to each event date, summed over episodes
    (decided here: the registry holds one episode per employer and period; they do not overlap)."""
    pairs = events[["person_id", date_col]].reset_index(names="event").merge(
        insurance[["person_id", "start_date", "end_date"]], on="person_id")
    pairs = pairs.loc[pairs["start_date"] <= pairs[date_col]]
    until = pairs["end_date"].where(pairs["end_date"] < pairs[date_col], pairs[date_col])
    months = full_months(pairs["start_date"], until).fillna(0).astype("int64")
    return months.groupby(pairs["event"]).sum().reindex(events.index, fill_value=0).astype("int64")


def city_matches(certs: pd.DataFrame, city: pd.DataFrame) -> pd.DataFrame:
    """(event, city payout) pairs: the city paid the person for the same certificate number, or for the same
    occupation code and level (R1 check 6, 市、区政策不重复享受)."""
    left = certs[["certificate_no", "person_id", "occupation_code", "level"]].reset_index(names="event")
    cols = ["person_id", "occupation_code", "level", "certificate_no", "paid_on", "amount"]
    by_no = left[["event", "certificate_no"]].merge(city[cols], on="certificate_no")
    by_slot = left[["event", "person_id", "occupation_code", "level"]].merge(
        city[cols], on=["person_id", "occupation_code", "level"])
    out = pd.concat([by_no[["event", "certificate_no", "paid_on", "amount"]],
                     by_slot[["event", "certificate_no", "paid_on", "amount"]]], ignore_index=True)
    return out.drop_duplicates(["event", "certificate_no"]).rename(columns={
        "certificate_no": "city_certificate_no", "paid_on": "city_paid_on", "amount": "city_amount_fen"})


def city_paid_by(city: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """City payouts made on or before the run's date (a later one is not known to have happened yet)."""
    return city.loc[~(city["paid_on"] > pd.Timestamp(as_of)).fillna(False)]


def _catalog_amount(certs, catalog) -> pd.Series:
    """R1: the special-ability catalog row effective on the issue date (the latest-starting one)."""
    catalog = catalog.loc[catalog["certificate_type"] == "special_ability"]
    if catalog.empty:
        return pd.Series(pd.NA, index=certs.index, dtype="Int64")
    left = certs[["certificate_type", "occupation_code", "issued_on"]].reset_index(names="event")
    rows = left.merge(catalog.drop(columns=["level"]), on=["certificate_type", "occupation_code"], how="inner")
    rows = rows.loc[(rows["effective_from"] <= rows["issued_on"])
                    & (rows["issued_on"] <= rows["effective_to"].fillna(pd.Timestamp.max))]
    latest = rows.sort_values("effective_from").groupby("event")["amount"].last()
    return latest.reindex(certs.index).astype("Int64")


def _uplift_units(events: pd.DataFrame, date_col: str, stg: dict[str, pd.DataFrame], book: PolicyBook) -> pd.Series:
    """R3 on each event's date (R1: issue date; R7: class start), with the rates of the version in force then (an
    event outside every version takes the latest version's default)."""
    versions = events["policy_version"]
    default_units = book.per_version(versions, lambda v: v.default_uplift_units).fillna(
        book.versions[-1].default_uplift_units)
    # a Timestamp per version: an Arrow date column takes 0.2 s per 250,000 rows to become datetime64
    last_uplift = pd.to_datetime(book.per_version(versions, lambda v: pd.Timestamp(v.uplift_last_issue_date)))
    return r3_uplift.uplift_units(events, stg["social_insurance"], stg["affected_enterprises"], default_units,
                                  last_uplift, date_col=date_col)


def build_certificate_eligibility(stg: dict[str, pd.DataFrame], as_of: dt.date, book: PolicyBook) -> pd.DataFrame:
    """One row of R1-R3 facts per certificate issued on or before as_of (the certificate alone: no class)."""
    certs = claims_due(stg["certificates"], as_of)
    certs["policy_version"] = book.version_of(certs["issued_on"])
    versions = certs["policy_version"]
    out = certs.assign(
        civil_servant=_civil_servant(certs, stg["social_insurance"], book),
        insured=pd.Series(certs.index.isin(covering(certs, "issued_on", stg["social_insurance"],
                                                    "start_date", "end_date")["event"]), index=certs.index),
        key_group=r2_key_groups.in_key_group(certs, "issued_on", stg["unemployment_registrations"],
                                             stg["low_income"], stg["veterans"]),
        insured_months=insured_months(certs, "issued_on", stg["social_insurance"]),
        paid_by_city=certs.index.isin(city_matches(certs, city_paid_by(stg["city_payouts"], as_of))["event"]),
        uplift_units=_uplift_units(certs, "issued_on", stg, book),
        catalog_amount_fen=_catalog_amount(certs, stg["subsidy_catalog"]),
        department_code=book.per_version(versions, lambda v: v.certificate_department).fillna(
            book.versions[0].certificate_department).astype("string"),
    )
    return out[ELIGIBILITY_COLUMNS]


APPRENTICE_COLUMNS = [
    "subsidy_type", "reference", "agreement_id", "year", "person_id", "name", "period_start", "period_end",
    "agreement_start", "agreement_end", "policy_version", "months_served", "monthly_allowance_fen",
    "department_code", "school_partner", "in_post_one_year",
]


def in_post_one_year(agreements: pd.DataFrame, insurance: pd.DataFrame) -> pd.Series:
    """R4: on the agreement's start the person has been insured with the agreement's employer for the whole
    preceding year (已在岗满一年): one episode with that employer covering [start - 12 months, start - 1 day]."""
    a = agreements[["person_id", "employer_credit_code", "start_date"]].reset_index(names="event")
    a["since"] = add_months(a["start_date"], -12)
    pairs = a.merge(insurance[["person_id", "employer_credit_code", "start_date", "end_date"]],
                    on=["person_id", "employer_credit_code"], suffixes=("", "_ep"))
    day_before = pairs["start_date"] - pd.Timedelta(days=1)
    ok = (pairs["start_date_ep"] <= pairs["since"]) & ~(pairs["end_date"] < day_before).fillna(False)
    return pd.Series(agreements.index.isin(pairs.loc[ok, "event"]), index=agreements.index)


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
    a = a.assign(school_partner=a["school_name"].fillna("").str.strip().ne(""),
                 in_post_one_year=in_post_one_year(a, stg["social_insurance"]))
    when = pd.Timestamp(as_of)
    out = pd.concat([_employee_years(a, when, book), _student_agreements(a, when, book)], ignore_index=True)
    out = out.rename(columns={"start_date": "agreement_start", "end_date": "agreement_end",
                              "monthly_allowance": "monthly_allowance_fen"})
    out["year"] = out["year"].astype("int64")
    out["months_served"] = out["months_served"].astype("Int64")
    return out[APPRENTICE_COLUMNS]


LIVING_COLUMNS = [
    "class_id", "person_id", "name", "department_code", "occupation_code", "level", "filed_in_advance",
    "start_date", "end_date", "policy_version", "attendance_days", "class_days", "qualifying_group",
    "group_basis", "overlapping_attendance",
]


def _allowed(book: PolicyBook, getter, column: str) -> pd.DataFrame:
    return pd.DataFrame([(v.version, c) for v in book.versions for c in getter(v)], columns=["policy_version", column])


def living_allowance_group(f: pd.DataFrame, low: pd.DataFrame, leavers: pd.DataFrame, book: PolicyBook) -> pd.Series:
    """R6: on the class start date, why the trainee is in one of the plan's groups (NA: in none).

    Their own low_income record of a qualifying category (its category is the basis); else a school leaver
    (两后生, graduated by the class start) with a qualifying hukou (`school_leaver_rural`), or whose household
    (the household_id of any of their own low_income records) has a qualifying record valid on the class
    start (`school_leaver_urban_minimum_living`). The categories are those of the version in force then.
    """
    events = f[["person_id", "start_date", "policy_version"]]
    own = covering(events, "start_date", low, "valid_from", "valid_to", keep=("category",))
    own = own.assign(policy_version=events["policy_version"].reindex(own["event"]).to_numpy()).merge(
        _allowed(book, lambda v: v.living_allowance_categories, "category"))
    own = own.assign(basis=own["category"], rank=0)
    left = events.reset_index(names="event")
    grads = left.merge(leavers[["person_id", "graduated_on", "hukou"]], on="person_id")
    grads = grads.loc[grads["graduated_on"] <= grads["start_date"]]
    rural = grads.merge(_allowed(book, lambda v: v.school_leaver_hukou, "hukou"))
    rural = rural.assign(basis="school_leaver_" + rural["hukou"].astype("string"), rank=1)
    households = low[["person_id", "household_id"]].dropna().drop_duplicates()
    home = grads[["event", "person_id", "start_date", "policy_version"]].drop_duplicates("event").merge(
        households, on="person_id").merge(low[["household_id", "category", "valid_from", "valid_to"]],
                                          on="household_id")
    home = home.loc[(home["valid_from"] <= home["start_date"])
                    & ~(home["valid_to"] < home["start_date"]).fillna(False)]
    home = home.merge(_allowed(book, lambda v: v.school_leaver_household_categories, "category"))
    home = home.assign(basis="school_leaver_" + home["category"].astype("string"), rank=2)
    found = pd.concat([x[["event", "basis", "rank"]] for x in (own, rural, home)], ignore_index=True)
    first = found.sort_values(["event", "rank", "basis"]).drop_duplicates("event").set_index("event")["basis"]
    return first.reindex(f.index).astype("string")


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


def _roster_entry_facts(f: pd.DataFrame, stg: dict[str, pd.DataFrame], book: PolicyBook) -> pd.DataFrame:
    """Facts R6 and R7 share about a roster entry: overlapping attendance, and the department (the class's, else
    the certificate department for a class that was never filed)."""
    overlap = overlapping_entries(stg["class_enrollments"], stg["training_classes"]).assign(_o=True)
    f["overlapping_attendance"] = f[["class_id", "person_id"]].merge(
        overlap, on=["class_id", "person_id"], how="left")["_o"].fillna(False).astype(bool).to_numpy()
    fallback = book.versions[0].certificate_department
    f["department_code"] = f["department_code"].fillna(
        f["policy_version"].map({v.version: v.certificate_department for v in book.versions})).fillna(fallback)
    return f


def build_living_allowance_eligibility(stg: dict[str, pd.DataFrame], as_of: dt.date,
                                       book: PolicyBook) -> pd.DataFrame:
    """One row of R6 facts per roster entry whose person is in the low_income registry or on the school
    leavers' list (两后生) at any time.

    Other trainees make no living-allowance claim at all (decided here: they would only add noise); those
    listed but in none of the plan's groups on the class start are told so (`not_eligible_group`).
    """
    low, leavers = stg["low_income"], stg["school_leavers"]
    roster = stg["class_enrollments"]
    roster = roster.loc[roster["person_id"].isin(low["person_id"]) | roster["person_id"].isin(leavers["person_id"])]
    cls = stg["training_classes"].drop(columns=["run_id", "source_row", "town_code"], errors="ignore")
    f = roster[["class_id", "person_id", "name", "attendance_days"]].merge(cls, on="class_id", how="left")
    f = f.loc[~(f["start_date"] > pd.Timestamp(as_of)).fillna(False)].reset_index(drop=True)
    f["policy_version"] = book.version_of(f["start_date"])
    f["filed_in_advance"] = (f["filed_on"] < f["start_date"]).fillna(False).astype(bool)
    f["class_days"] = ((f["end_date"] - f["start_date"]).dt.days + 1).astype("Int64")
    f["group_basis"] = living_allowance_group(f, low, leavers, book)
    f["qualifying_group"] = f["group_basis"].notna()
    f = _roster_entry_facts(f, stg, book)
    return f[LIVING_COLUMNS]


TRAINING_COLUMNS = [
    "class_id", "person_id", "name", "department_code", "project_id", "institution_credit_code", "institution_name",
    "occupation_code", "level", "filed_in_advance", "start_date", "end_date", "policy_version", "passed",
    "project_filed", "institution_qualified", "project_standard_fen", "catalog_amount_fen", "budget_fen",
    "uplift_units", "overlapping_attendance",
]


def training_catalog_amount(f: pd.DataFrame, catalog: pd.DataFrame) -> pd.Series:
    """R7: the catalog amount for the class's occupation and level in force on its start (a levelled class
    matches skill_level and vocational_qualification rows alike, one without a level special_ability rows);
    the latest effective_from wins, and of two rows starting the same day the higher (decided here)."""
    if catalog.empty or f.empty:
        return pd.Series(pd.NA, index=f.index, dtype="Int64")
    cat = catalog.assign(level_key=catalog["level"].astype("string").fillna(""),
                         kind=np.where(catalog["certificate_type"] == "special_ability", "S", "Q"))
    left = f[["occupation_code", "start_date"]].reset_index(names="event").assign(
        level_key=f["level"].astype("string").fillna("").to_numpy(),
        kind=np.where(f["level"].isna(), "S", "Q"))
    rows = left.merge(cat[["occupation_code", "level_key", "kind", "amount", "effective_from", "effective_to"]],
                      on=["occupation_code", "level_key", "kind"])
    rows = rows.loc[(rows["effective_from"] <= rows["start_date"])
                    & ~(rows["effective_to"] < rows["start_date"]).fillna(False)]
    best = rows.sort_values(["event", "effective_from", "amount"]).groupby("event")["amount"].last()
    return best.reindex(f.index).astype("Int64")


def _project_facts(f: pd.DataFrame, projects: pd.DataFrame) -> pd.DataFrame:
    """R7 check 3: a non-HRSS class must name a project of its department filed with HRSS on or before the
    class's own filing (decided here: the same day counts); an HRSS class may run without one."""
    p = projects[["project_id", "department_code", "filed_on", "standard_per_trainee", "budget"]].rename(
        columns={"department_code": "project_department", "filed_on": "project_filed_on"})
    m = f[["project_id", "department_code", "filed_on"]].merge(p, on="project_id", how="left")
    no_project = f["project_id"].isna().to_numpy()
    in_time = (m["project_filed_on"] <= m["filed_on"]).fillna(False).to_numpy()
    same_dept = (m["project_department"] == m["department_code"]).fillna(False).to_numpy()
    hrss_own = (f["department_code"] == "HRSS").fillna(False).to_numpy()
    return pd.DataFrame({"project_filed": np.where(no_project, hrss_own, in_time & same_dept),
                         "project_standard_fen": m["standard_per_trainee"].astype("Int64").to_numpy(),
                         "budget_fen": m["budget"].astype("Int64").to_numpy()}, index=f.index)


def _institution_qualified(f: pd.DataFrame, institutions: pd.DataFrame) -> pd.Series:
    """R7 check 4: a qualification of the class's institution covers the class start (二 具备资质)."""
    q = institutions[["institution_credit_code", "qualified_from", "qualified_to"]]
    m = f[["institution_credit_code", "start_date"]].reset_index(names="event").merge(q, on="institution_credit_code")
    ok = (m["qualified_from"] <= m["start_date"]) & ~(m["qualified_to"] < m["start_date"]).fillna(False)
    return pd.Series(f.index.isin(m.loc[ok, "event"]), index=f.index)


def build_training_eligibility(stg: dict[str, pd.DataFrame], as_of: dt.date, book: PolicyBook) -> pd.DataFrame:
    """One row of R7 facts per roster entry of a class that ended on or before as_of (or of a class that was
    never filed: rejected `class_not_filed_in_advance`, as R6 does)."""
    cls = stg["training_classes"].drop(columns=["run_id", "source_row", "town_code", contract.HASH_COL,
                                                contract.ROW_COL, "validated_run"], errors="ignore")
    roster = stg["class_enrollments"][["class_id", "person_id", "name", "passed"]]
    f = roster.merge(cls, on="class_id", how="left")
    f = f.loc[~(f["end_date"] > pd.Timestamp(as_of)).fillna(False)].reset_index(drop=True)
    f["policy_version"] = book.version_of(f["start_date"])
    f["filed_in_advance"] = (f["filed_on"] < f["start_date"]).fillna(False).astype(bool)
    f["passed"] = f["passed"].fillna(False).astype(bool)
    f = pd.concat([f, _project_facts(f, stg["training_projects"])], axis=1)
    f["institution_qualified"] = _institution_qualified(f, stg["training_institutions"])
    f["catalog_amount_fen"] = training_catalog_amount(f, stg["subsidy_catalog"])
    f["uplift_units"] = _uplift_units(f, "start_date", stg, book)
    f = _roster_entry_facts(f, stg, book)
    return f[TRAINING_COLUMNS]
