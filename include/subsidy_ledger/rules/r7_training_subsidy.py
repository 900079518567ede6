"""R7 Training subsidy (职业培训补贴), subsidy type training_subsidy, paid to the institution.

Seed 四(三): "各行业部门开展的职业技能培训列入职业技能提升行动范畴，对需资金支持的培训项目，行业部门须将培训计划、
补贴标准和培训经费数额报区人力社保局备案 … 职业培训补贴原则上每人每年可享受不超过3次，但同一职业（项目）同一等级
不可重复享受。按照"资金跟着任务走"，"谁主管、谁培训、谁负责"的原则，各行业部门负责组织开展的培训由行业部门按相关
标准给予补贴"; 二 "政府补贴的职业技能培训项目全部向具备资质的社会职业培训机构开放"; 五 "开展职业资格补贴培训应依据
我区发布的职业技能培训补贴目录清单，组织培训的机构或院校应提前申请培训开班备案，学员培训应实行实名制管理 … 培训结束后
经考核鉴定合格的认定等级，公示结果并发放培训补贴".
One claim per roster entry of a finished class. Amount: the filed project's standard per trainee, else the
catalog amount for the class's occupation and level on the class start; R3 applies. Reference `<class_id>`;
the class's department pays, from the skills-upgrade account, to the institution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .claim_order import first_come

RULE_ID = "R7"
SUBSIDY_TYPE = "training_subsidy"
# Checks in POLICY.md's order; the first that fails is the reason code.
RECORD_CHECKS = (
    "outside_policy_window",       # the class started outside every policy version's range
    "class_not_filed_in_advance",  # the class is unknown, or filed_on is not before start_date (五 提前申请开班备案)
    "project_not_filed",           # a non-HRSS class names no project, or one not filed before the class (四(三))
    "institution_not_qualified",   # the institution's qualification does not cover the class start (二 具备资质)
    "assessment_not_passed",       # passed is false (五 考核鉴定合格)
    "not_in_catalog",              # no project standard and no catalog amount (五 补贴目录清单)
)
DUPLICATE = "duplicate_occupation_level"  # an approved R7 for the same occupation and level (同一职业同一等级)
CAP = "annual_cap_reached"                # 3 approved R7 claims per person per calendar year of class end
REASON_CODES = (*RECORD_CHECKS, DUPLICATE, CAP)
OVER_BUDGET = "over_filed_budget"         # held: paying would take the project above its filed budget


def record_check_failures(f: pd.DataFrame) -> pd.Series:
    """First failing check among the roster entry's own ones (NA when they all pass).

    An unknown class is `class_not_filed_in_advance` (it was never filed), not outside the window: the window
    check applies to classes whose start is known.
    """
    known = f["start_date"].notna()
    failed = [
        known & f["policy_version"].isna(),
        ~f["filed_in_advance"].fillna(False).astype(bool),
        ~f["project_filed"].fillna(False).astype(bool),
        ~f["institution_qualified"].fillna(False).astype(bool),
        ~f["passed"].fillna(False).astype(bool),
        f["base_amount_fen"].isna(),
    ]
    reason = np.select([np.asarray(c, dtype=bool) for c in failed], RECORD_CHECKS, default="")
    return pd.Series(reason, index=f.index, dtype="string").replace("", pd.NA)


def base_amount_fen(project_standard_fen: pd.Series, catalog_amount_fen: pd.Series) -> pd.Series:
    """The filed project's standard per trainee where the class belongs to a project, else the catalog's."""
    return project_standard_fen.astype("Int64").fillna(catalog_amount_fen.astype("Int64"))


def slot_key(f: pd.DataFrame) -> pd.Series:
    """One training subsidy per person, occupation code and level (a class without a level keys on the code)."""
    return (f["person_id"] + "|" + f["occupation_code"].astype("string").fillna("") + "|"
            + f["level"].astype("string").fillna(""))


def apply_order_checks(cands: pd.DataFrame, annual_cap: pd.Series, already_paid: pd.Series) -> pd.DataFrame:
    """duplicate_occupation_level and annual_cap_reached in claim order (class end date, class id); returns
    reason (NA = approved) and cap place per candidate."""
    return first_come(cands["person_id"], slot_key(cands), cands["end_date"].dt.year, annual_cap, already_paid,
                      cands[["end_date", "class_id"]], DUPLICATE, CAP)


def budget_holds(f: pd.DataFrame, approved: pd.Series, amount_fen: pd.Series, already_paid: pd.Series) -> pd.Series:
    """True for approved entries that would take their project above its filed budget.

    A project's entries are approved in order of class end date, class id and person id (those the ledger
    already pays first: a payment that stands keeps its place) until the budget is used; the entry that
    would cross it and every later one wait (`over_filed_budget`) until an amended filing raises it.
    """
    has_budget = f["project_id"].notna() & f["budget_fen"].notna()
    c = pd.DataFrame({"project_id": f["project_id"], "prio": np.where(already_paid.to_numpy(dtype=bool), 0, 1),
                      "end_date": f["end_date"], "class_id": f["class_id"], "person_id": f["person_id"],
                      "amount": amount_fen.astype("int64"), "budget": f["budget_fen"]}, index=f.index)
    c = c.loc[approved.to_numpy(dtype=bool) & has_budget.to_numpy(dtype=bool)]
    c = c.sort_values(["project_id", "prio", "end_date", "class_id", "person_id"], kind="stable")
    spent = c.groupby("project_id", sort=False)["amount"].cumsum()
    over = spent > c["budget"].astype("int64")
    # once one entry does not fit, the later ones wait too: the budget is used in order
    over = over.groupby(c["project_id"], sort=False).cummax()
    return over.reindex(f.index, fill_value=False).astype(bool)
