"""A1 (六(三) 强化考核机制): measure the plan against its targets and the annual plans.

Pure functions over the night's accepted registries, its decisions and the ledger; no I/O. The figures are
views (one frame each) that the report (assessment_report.py), the warehouse's `assessment` table and the
leading group's page all show unchanged. Counting rules (docs/policy.md, "A1"):

* a training person-time is one roster entry of a filed class that ended on or before the as-of date, counted
  in the year, department and town of the class; and one per apprenticeship year begun (the agreement's start
  and each anniversary before its end, up to the as-of date), in the agreement's department and the town of the
  apprentice's insurance episode with the agreement's employer on that day (none: town unknown);
* the employed on a day are the people with an insurance episode open that day; the skilled among them hold a
  certificate of status `valid` issued by then; the high-skilled hold one of the targets' levels (1-3);
* a figure due by a plan is its planned value pro rata for the year in progress (elapsed days / days of the
  year, rounded down); a department or town is behind when its figure is below that.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .intervals import OPEN_END, add_months
from .policy import Targets

RATE_SCALE = 10_000
NEVER = np.iinfo(np.int64).max  # a first certificate's day (as int64 ns) for a person who holds none
# what assess reads: of each accepted registry these columns, of the decisions these (export reads no more of
# the large ones, so that its process holds no column nobody uses)
READS = {"training_classes": ("class_id", "department_code", "end_date", "town_code"),
         "class_enrollments": ("class_id",),
         "apprenticeships": ("agreement_id", "person_id", "employer_credit_code", "department_code", "start_date",
                             "end_date"),
         "social_insurance": ("person_id", "employer_credit_code", "start_date", "end_date", "town_code"),
         "certificates": ("person_id", "certificate_type", "level", "issued_on", "status"),
         "annual_plans": ("department_code", "town_code", "year", "planned_person_times", "planned_funds")}
DECISION_READS = ("decision", "event_date", "department_code", "subsidy_type", "amount_fen")
VIEWS = ("target", "years", "departments", "towns", "plans", "behind", "certificates", "shares", "money",
         "person_times")


@dataclass
class Assessment:
    """The night's A1 figures: one frame per view (VIEWS), money in integer fen, shares in parts per 10,000."""

    as_of: dt.date
    views: dict[str, pd.DataFrame]

    def to_records(self) -> dict[str, str]:
        """view -> JSON records, as the warehouse keeps them."""
        out = {}
        for name, frame in self.views.items():
            doc = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
            doc["integers"] = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])]
            out[name] = json.dumps(doc, ensure_ascii=False)
        return out

    @classmethod
    def from_records(cls, as_of: dt.date, records: dict[str, str]) -> Assessment:
        """The figures as a night stored them."""
        views = {}
        for name, text in records.items():
            doc = json.loads(text)
            frame = pd.DataFrame(doc["data"], columns=doc["columns"], dtype=object)
            for c in frame.columns:  # integers stay integers (nullable); the rest is text
                frame[c] = frame[c].astype("Int64") if c in doc.get("integers", ()) else frame[c].astype("string")
            views[name] = frame
        return cls(as_of, views)


def year_fraction(year: int, as_of: dt.date) -> tuple[int, int]:
    """(elapsed days, days) of a year at as_of: the whole year before, none after, pro rata in it."""
    days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
    if year < as_of.year:
        return days, days
    if year > as_of.year:
        return 0, days
    return as_of.timetuple().tm_yday, days


def due(planned: pd.Series, years: pd.Series, as_of: dt.date) -> pd.Series:
    """A1: a plan's figure due by as_of: planned x elapsed days / days of its year, rounded down (integers)."""
    frac = years.astype("int64").map(lambda y: year_fraction(int(y), as_of))
    elapsed = frac.map(lambda f: f[0]).astype("int64")
    days = frac.map(lambda f: f[1]).astype("int64")
    return (planned.astype("Int64") * elapsed) // days


def class_person_times(classes: pd.DataFrame, enrollments: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """A1: one person-time per roster entry of a filed class that ended by as_of (year of its end)."""
    cls = classes.loc[classes["end_date"] <= pd.Timestamp(as_of), ["class_id", "department_code", "end_date",
                                                                    "town_code"]]
    rows = enrollments[["class_id"]].merge(cls, on="class_id")
    return pd.DataFrame({"year": rows["end_date"].dt.year.astype("int64"),
                         "department_code": rows["department_code"].astype("string"),
                         "town_code": rows["town_code"].astype("string"), "source": "class"})


def apprentice_years(agreements: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """A1: every apprenticeship year begun by as_of and before the agreement's end (the start, then yearly)."""
    a = agreements[["agreement_id", "person_id", "employer_credit_code", "department_code", "start_date",
                    "end_date"]].loc[agreements["start_date"] <= pd.Timestamp(as_of)]
    if a.empty:
        return a.assign(began=pd.Series(dtype="datetime64[ns]"))
    most = int((pd.Timestamp(as_of) - a["start_date"].min()).days // 365) + 2
    out = []
    for k in range(most):
        began = add_months(a["start_date"], 12 * k)
        ok = (began <= pd.Timestamp(as_of)) & (began < a["end_date"].fillna(OPEN_END))
        out.append(a.loc[ok].assign(began=began[ok]))
    return pd.concat(out, ignore_index=True)


def apprentice_person_times(agreements: pd.DataFrame, insurance: pd.DataFrame, as_of: dt.date,
                            default_department: str) -> pd.DataFrame:
    """A1: one person-time per apprenticeship year begun, in the town of the insurance episode with the
    agreement's employer open on the day the year began (the latest-starting one; none: town unknown)."""
    years = apprentice_years(agreements, as_of).reset_index(names="event")
    ep = insurance[["person_id", "employer_credit_code", "start_date", "end_date", "town_code"]]
    pairs = years[["event", "person_id", "employer_credit_code", "began"]].merge(
        ep, on=["person_id", "employer_credit_code"])
    pairs = pairs.loc[(pairs["start_date"] <= pairs["began"]) & (pairs["began"] <= pairs["end_date"].fillna(OPEN_END))]
    # a tie on the start goes to a known town (missing towns sort first), as the SQL check in the tests orders it
    town = pairs.sort_values(["event", "start_date", "town_code"], na_position="first").drop_duplicates(
        "event", keep="last")
    town = town.set_index("event")["town_code"]
    return pd.DataFrame({"year": years["began"].dt.year.astype("int64"),
                         "department_code": years["department_code"].fillna(default_department).astype("string"),
                         "town_code": years["event"].map(town).astype("string"), "source": "apprenticeship"})


def person_times(stg: dict[str, pd.DataFrame], as_of: dt.date, default_department: str) -> pd.DataFrame:
    """A1: training person-times by year, department, town and source (class, apprenticeship)."""
    rows = pd.concat([class_person_times(stg["training_classes"], stg["class_enrollments"], as_of),
                      apprentice_person_times(stg["apprenticeships"], stg["social_insurance"], as_of,
                                              default_department)], ignore_index=True)
    keys = ["year", "department_code", "town_code", "source"]
    out = rows.groupby(keys, dropna=False).size().reset_index(name="person_times")
    return out.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def target_view(pt: pd.DataFrame, targets: Targets, as_of: dt.date) -> pd.DataFrame:
    """The three-year target against the person-times of the period so far, and what was due by as_of."""
    start, end = targets.period_from, targets.period_to
    days = (end - start).days + 1
    elapsed = min(max((as_of - start).days + 1, 0), days)
    in_period = pt["year"].between(start.year, end.year)
    actual = int(pt.loc[in_period, "person_times"].sum())
    expected = targets.person_times * elapsed // days
    out = pd.DataFrame([{"period_from": start.isoformat(), "period_to": end.isoformat(),
                         "target_person_times": targets.person_times, "expected_person_times": expected,
                         "person_times": actual, "completion_units": _units(actual, expected)}])
    out["completion_units"] = out["completion_units"].astype("Int64")
    return out


def _units(actual, expected):
    """actual / expected in parts per 10,000 (None when nothing was due)."""
    if isinstance(actual, pd.Series):
        exp = expected.astype("Int64")
        return ((actual.astype("Int64") * RATE_SCALE) // exp.where(exp > 0)).astype("Int64")
    return None if not expected else int(actual * RATE_SCALE // expected)


def plans_view(pt: pd.DataFrame, plans: pd.DataFrame, approved: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Each annual plan against its department's (and town's) person-times and the money approved for the claims
    of its year (the year of the certificate, class or apprenticeship year: payment lags the training).

    Money is compared for whole-department plans only: claims carry no town."""
    p = plans[["department_code", "town_code", "year", "planned_person_times", "planned_funds"]].copy()
    p["year"] = p["year"].astype("int64")
    by_dept = pt.groupby(["year", "department_code"])["person_times"].sum()
    by_town = pt.groupby(["year", "department_code", "town_code"])["person_times"].sum()
    whole = p["town_code"].isna()
    dept_key = pd.MultiIndex.from_frame(p[["year", "department_code"]])
    town_key = pd.MultiIndex.from_frame(p[["year", "department_code", "town_code"]])
    p["person_times"] = np.where(whole, by_dept.reindex(dept_key).fillna(0).to_numpy(),
                                 by_town.reindex(town_key).fillna(0).to_numpy()).astype("int64")
    p["expected_person_times"] = due(p["planned_person_times"], p["year"], as_of)
    spent = approved.groupby(["year", "department_code"])["amount_fen"].sum()
    p["approved_fen"] = pd.array(spent.reindex(dept_key).fillna(0).astype("int64").to_numpy(), dtype="Int64")
    p["approved_fen"] = p["approved_fen"].where(whole)
    p["planned_fen"] = p.pop("planned_funds").astype("Int64").where(whole)
    p["expected_fen"] = due(p["planned_fen"].fillna(0), p["year"], as_of).where(p["planned_fen"].notna())
    p["completion_units"] = _units(p["person_times"], p["expected_person_times"])
    cols = ["year", "department_code", "town_code", "planned_person_times", "expected_person_times", "person_times",
            "completion_units", "planned_fen", "expected_fen", "approved_fen"]
    return p[cols].sort_values(["year", "department_code", "town_code"], na_position="first",
                               kind="stable").reset_index(drop=True)


def behind_view(plans: pd.DataFrame) -> pd.DataFrame:
    """通报: every plan whose person-times or approved money is below what was due by the as-of date."""
    base = ["year", "department_code", "town_code"]
    pt = plans.loc[plans["person_times"] < plans["expected_person_times"].fillna(0)]
    pt = pt.assign(measure="person_times", planned=pt["planned_person_times"], expected=pt["expected_person_times"],
                   actual=pt["person_times"])
    money = plans.loc[(plans["approved_fen"] < plans["expected_fen"]).fillna(False)]
    money = money.assign(measure="funds_fen", planned=money["planned_fen"], expected=money["expected_fen"],
                         actual=money["approved_fen"])
    out = pd.concat([pt, money], ignore_index=True)[[*base, "measure", "planned", "expected", "actual"]]
    for c in ("planned", "expected", "actual"):
        out[c] = out[c].astype("Int64")
    out["shortfall"] = out["expected"] - out["actual"]
    out["completion_units"] = _units(out["actual"], out["expected"])
    return out.sort_values([*base, "measure"], na_position="first", kind="stable").reset_index(drop=True)


def years_view(pt: pd.DataFrame, plans: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Person-times per year, cumulative, against the sum of the departments' whole-department plans."""
    y = pt.groupby("year")["person_times"].sum().rename("person_times").reset_index()
    whole = plans.loc[plans["town_code"].isna()]
    planned = whole.groupby("year")["planned_person_times"].sum()
    y = y.merge(planned.rename("planned_person_times").reset_index(), on="year", how="outer").sort_values("year")
    y["person_times"] = y["person_times"].fillna(0).astype("int64")
    y["cumulative"] = y["person_times"].cumsum()
    y["planned_person_times"] = y["planned_person_times"].astype("Int64")
    y["expected_person_times"] = due(y["planned_person_times"], y["year"], as_of) if len(y) else pd.Series(
        dtype="Int64")
    y["year"] = y["year"].astype("int64")
    return y.reset_index(drop=True)


def _against_plans(pt: pd.DataFrame, plans: pd.DataFrame, key: str, as_of: dt.date) -> pd.DataFrame:
    got = pt.groupby(["year", key], dropna=False)["person_times"].sum().rename("person_times").reset_index()
    mine = plans.loc[plans["town_code"].isna()] if key == "department_code" else plans.loc[plans["town_code"].notna()]
    planned = mine.groupby(["year", key])[["planned_person_times", "expected_person_times"]].sum().reset_index()
    out = got.merge(planned, on=["year", key], how="outer")
    out["person_times"] = out["person_times"].fillna(0).astype("int64")
    for c in ("planned_person_times", "expected_person_times"):
        out[c] = out[c].astype("Int64")
    out["completion_units"] = _units(out["person_times"], out["expected_person_times"])
    return out.sort_values(["year", key], na_position="last", kind="stable").reset_index(drop=True)


def money_view(decisions: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per department and subsidy type: the claims approved tonight and their amount, and the net posted to date."""
    keys = ["department_code", "subsidy_type"]
    ok = decisions.loc[decisions["decision"] == "approved", [*keys, "amount_fen"]]
    approved = ok.groupby(keys).agg(approved_claims=("amount_fen", "size"), approved_fen=("amount_fen", "sum"))
    posted = lines.groupby(keys).agg(posted_fen=("amount_fen", "sum"))
    out = approved.join(posted, how="outer").reset_index()
    for c in ("approved_claims", "approved_fen", "posted_fen"):
        out[c] = out[c].fillna(0).astype("int64")
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def certificates_view(certificates: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Valid certificates issued by as_of, by year of issue, type and level (special-ability: no level)."""
    c = certificates.loc[(certificates["status"] == "valid") & (certificates["issued_on"] <= pd.Timestamp(as_of)),
                         ["issued_on", "certificate_type", "level"]]
    out = pd.DataFrame({"year": c["issued_on"].dt.year.astype("int64"),
                        "certificate_type": c["certificate_type"].astype("string"),
                        "level": c["level"].astype("Int64")})
    keys = ["year", "certificate_type", "level"]
    return out.groupby(keys, dropna=False).size().reset_index(name="certificates").sort_values(
        keys, na_position="last", kind="stable").reset_index(drop=True)


def share_dates(targets: Targets, as_of: dt.date) -> list[dt.date]:
    """31 December of each year from the one before the plan to the last full year, then the as-of date."""
    out = [dt.date(y, 12, 31) for y in range(targets.period_from.year - 1, as_of.year + 1)]
    out = [d for d in out if d <= as_of]
    return out if out and out[-1] == as_of else [*out, as_of]


def shares_view(insurance: pd.DataFrame, certificates: pd.DataFrame, targets: Targets,
                as_of: dt.date) -> pd.DataFrame:
    """On each date: the employed, the skilled among them and the high-skilled among those, with the shares."""
    # people as integer codes, once: each date is then a few array operations, not a unique and two reindexes
    # of a million identity numbers; a holder's first certificate by a minimum over those codes, not a groupby
    # of identity numbers (at 1,000,000 persons its peak above its inputs went from about 300 to 200 MiB)
    who, people = pd.factorize(insurance["person_id"], use_na_sentinel=False)
    valid = certificates.loc[certificates["status"] == "valid", ["person_id", "issued_on", "level"]]
    holder = people.get_indexer(valid["person_id"])  # -1: never insured, so never among the employed
    issued = valid["issued_on"].to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
    ok = (holder >= 0) & valid["person_id"].notna().to_numpy() & ~np.isnat(issued)
    high = ok & valid["level"].isin(targets.high_skill_levels).to_numpy(dtype=bool, na_value=False)
    firsts = []
    for mine in (ok, high):
        first = np.full(len(people), NEVER, dtype=np.int64)
        np.minimum.at(first, holder[mine], issued.view("int64")[mine])
        firsts.append(first)
    start = insurance["start_date"].to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
    end = insurance["end_date"].fillna(OPEN_END).to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
    rows = []
    for day in share_dates(targets, as_of):
        t = np.datetime64(day, "ns")
        employed = np.zeros(len(people), dtype=bool)
        employed[who[(start <= t) & (t <= end)]] = True
        n = int(employed.sum())
        skilled, high_n = (int((employed & (first <= t.view("int64"))).sum()) for first in firsts)
        rows.append({"on": day.isoformat(), "employed": n, "skilled": skilled, "high_skilled": high_n,
                     "skilled_share_units": _units(skilled, n),
                     "high_skill_share_units": _units(high_n, skilled),
                     "skilled_target_units": targets.skilled_share_units,
                     "high_skill_target_units": targets.high_skill_share_units})
    out = pd.DataFrame(rows)
    for c in out.columns.drop("on"):
        out[c] = out[c].astype("Int64")  # a share with nothing to divide by is missing, not 0
    return out


def assess(stg: dict[str, pd.DataFrame], decisions: pd.DataFrame, lines: pd.DataFrame, targets: Targets,
           as_of: dt.date, default_department: str) -> Assessment:
    """Every A1 view for a night: stg the accepted registries, decisions this night's, lines the ledger posted up
    to as_of."""
    pt = person_times(stg, as_of, default_department)
    ok = decisions.loc[decisions["decision"] == "approved", ["event_date", "department_code", "amount_fen"]]
    approved = pd.DataFrame({"year": pd.to_datetime(ok["event_date"]).dt.year, "department_code":
                             ok["department_code"], "amount_fen": ok["amount_fen"].astype("int64")})
    plans = plans_view(pt, stg["annual_plans"], approved, as_of)
    return Assessment(as_of, {
        "target": target_view(pt, targets, as_of),
        "years": years_view(pt, stg["annual_plans"], as_of),
        "departments": _against_plans(pt, plans, "department_code", as_of),
        "towns": _against_plans(pt, plans, "town_code", as_of),
        "plans": plans,
        "behind": behind_view(plans),
        "certificates": certificates_view(stg["certificates"], as_of),
        "shares": shares_view(stg["social_insurance"], stg["certificates"], targets, as_of),
        "money": money_view(decisions, lines),
        "person_times": pt,
    })
