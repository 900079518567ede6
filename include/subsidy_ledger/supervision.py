"""Fund supervision signals (资金监管, 四(三) "加强资金监管力度，确保资金使用安全") for auditors: a report, never a
rejection (R7's checks reject; these point at what deserves a look).

Signals, one row each:
- `roster_overlap`: a person on the rosters of two classes whose date ranges overlap (R6/R7 hold both);
- `certificate_other_occupation`: a certificate naming a class whose occupation code differs from the class's;
- `institution_outlier`: an institution whose pass rate, or mean trainees per class, lies far from the others:
  a modified z-score |0.6745 (x - median) / MAD| above 3.5 (Iglewicz and Hoaglin; with MAD 0, the mean absolute
  deviation × 1.2533 instead), with at least five institutions to compare (decided here: robust to the outliers
  it looks for, unlike a percentile of few);
- `filed_same_day`: a class filed on the day it started (not in advance: R6/R7 reject its trainees).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SUPERVISION_COLUMNS = ["signal", "department_code", "class_id", "institution_credit_code", "institution_name",
                       "person_id", "name", "detail"]
# what signals reads of each accepted registry, overlapping_entries' columns included (export reads no more)
READS = {"training_classes": ("class_id", "department_code", "institution_credit_code", "institution_name",
                              "occupation_code", "filed_on", "start_date", "end_date"),
         "class_enrollments": ("class_id", "person_id", "name", "passed"),
         "certificates": ("certificate_no", "person_id", "name", "occupation_code", "training_class_id")}
OUTLIER_Z = 3.5
MIN_INSTITUTIONS = 5


def _frame(rows: pd.DataFrame, signal: str, detail: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame({c: rows.get(c, pd.NA) for c in SUPERVISION_COLUMNS}, index=rows.index)
    out["signal"] = signal
    out["detail"] = detail.astype("string")
    return out[SUPERVISION_COLUMNS]


def roster_overlaps(enrollments: pd.DataFrame, classes: pd.DataFrame, overlapping: pd.DataFrame) -> pd.DataFrame:
    """One row per roster entry on a class that overlaps another of the same person."""
    rows = overlapping.merge(enrollments[["class_id", "person_id", "name"]], on=["class_id", "person_id"]).merge(
        classes[["class_id", "department_code", "institution_credit_code", "institution_name", "start_date",
                 "end_date"]], on="class_id")
    others = rows.groupby("person_id")["class_id"].agg(lambda s: ";".join(sorted(s)))
    detail = ("classes " + rows["person_id"].map(others) + " overlap")
    return _frame(rows, "roster_overlap", detail)


def certificates_of_other_occupations(certificates: pd.DataFrame, classes: pd.DataFrame) -> pd.DataFrame:
    """Certificates whose class trained another occupation (a trainee certified in what the class did not
    teach)."""
    c = certificates.loc[certificates["training_class_id"].notna(),
                         ["certificate_no", "person_id", "name", "occupation_code", "training_class_id"]]
    rows = c.merge(classes[["class_id", "department_code", "institution_credit_code", "institution_name",
                            "occupation_code"]], left_on="training_class_id", right_on="class_id",
                   suffixes=("", "_class"))
    rows = rows.loc[rows["occupation_code"] != rows["occupation_code_class"]]
    detail = ("certificate " + rows["certificate_no"] + " is for " + rows["occupation_code"] + ", the class trained "
              + rows["occupation_code_class"])
    return _frame(rows, "certificate_other_occupation", detail)


def _robust_z(x: pd.Series) -> pd.Series:
    """Modified z-score; when more than half the values are equal (MAD 0), the mean absolute deviation
    scaled by 1.2533 stands in for it (as IBM's and NIST's descriptions of the score do)."""
    median = x.median()
    mad = (x - median).abs().median()
    if np.isfinite(mad) and mad > 0:
        return 0.6745 * (x - median) / mad
    mean_ad = (x - median).abs().mean()
    if not np.isfinite(mean_ad) or mean_ad == 0:
        return pd.Series(0.0, index=x.index)
    return (x - median) / (1.253314 * mean_ad)


def institution_outliers(enrollments: pd.DataFrame, classes: pd.DataFrame) -> pd.DataFrame:
    """Institutions whose pass rate or mean trainees per class stands far from the others."""
    r = enrollments[["class_id", "passed"]].merge(
        classes[["class_id", "institution_credit_code", "institution_name", "department_code"]], on="class_id")
    g = r.groupby("institution_credit_code")
    stats = pd.DataFrame({"pass_rate": g["passed"].mean(), "per_class": g.size() / g["class_id"].nunique(),
                          "institution_name": g["institution_name"].first(),
                          "department_code": g["department_code"].agg(lambda s: ";".join(sorted(s.dropna().unique())))})
    if len(stats) < MIN_INSTITUTIONS:
        return pd.DataFrame(columns=SUPERVISION_COLUMNS)
    parts = []
    for col, label, fmt in (("pass_rate", "pass rate", "{:.0%}"), ("per_class", "trainees per class", "{:.1f}")):
        z = _robust_z(stats[col].astype(float))
        hit = stats.loc[z.abs() > OUTLIER_Z].reset_index()
        median = fmt.format(stats[col].median())
        detail = hit[col].map(lambda v, f=fmt: f.format(v)).astype("string")
        parts.append(_frame(hit, "institution_outlier", f"{label} " + detail + f" (median of institutions {median})"))
    return pd.concat(parts, ignore_index=True)


def filed_same_day(classes: pd.DataFrame) -> pd.DataFrame:
    """Classes filed on the day they started."""
    rows = classes.loc[(classes["filed_on"] == classes["start_date"]).fillna(False)]
    return _frame(rows, "filed_same_day", "filed and started " + rows["start_date"].dt.strftime("%Y-%m-%d"))


def signals(stg: dict[str, pd.DataFrame], overlapping: pd.DataFrame) -> pd.DataFrame:
    """Every supervision signal of the night's registries."""
    classes, roster = stg["training_classes"], stg["class_enrollments"]
    parts = [roster_overlaps(roster, classes, overlapping),
             certificates_of_other_occupations(stg["certificates"], classes),
             institution_outliers(roster, classes), filed_same_day(classes)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=SUPERVISION_COLUMNS)
    return pd.concat(parts, ignore_index=True).sort_values(["signal", "department_code", "class_id", "person_id"],
                                                           kind="stable").reset_index(drop=True)
