"""The glossary of reasons and the Chinese labels (labels/zh.yaml, docs/reasons.md)."""

from pathlib import Path

import pandas as pd
import pytest
from subsidy_ledger import labels
from subsidy_ledger.rules import (
    holds,
    p2_objections,
    r1_skill_upgrade,
    r4_employee_apprentice,
    r5_student_apprentice,
    r6_living_allowance,
    r7_training_subsidy,
)

RULES = {"R1": r1_skill_upgrade, "R4": r4_employee_apprentice, "R5": r5_student_apprentice,
         "R6": r6_living_allowance, "R7": r7_training_subsidy}


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rejection_of_every_rule_has_a_sentence_and_its_clause(rule_id):
    for code in RULES[rule_id].REASON_CODES:
        assert labels.reason_text(code, rule_id) != code, f"{rule_id} {code} has no sentence"
        clause = labels.reason_clause(code, rule_id)
        assert clause and clause[0] in "一二三四五六", f"{rule_id} {code}: clause {clause!r}"


def test_holds_objections_and_reversals_are_explained():
    for code in (*holds.HOLD_REASONS, p2_objections.OBJECTION_UPHELD, "repriced", "claim_gone"):
        assert labels.reason_text(code) != code and labels.reason_clause(code)
    g = labels.glossary().set_index("code")
    assert set(g.loc[list(holds.HOLD_REASONS), "kind"]) == {"held"}
    assert g.loc["annual_cap_reached", "zh"].startswith("本年度已享受3次")
    # one code, two rules, two clauses: the rule that gave it decides which is shown
    assert labels.reason_clause("annual_cap_reached", "R1") == "四(一)1"
    assert labels.reason_clause("annual_cap_reached", "R7") == "四(三)"


def test_docs_reasons_md_is_the_glossary():
    doc = Path(__file__).resolve().parents[1] / "docs" / "reasons.md"
    assert doc.read_text("utf-8") == labels.glossary_markdown(), \
        "regenerate it: subsidy-ledger reasons --markdown > docs/reasons.md"


def test_labels_keep_unknown_codes_and_missing_values():
    got = labels.series("subsidy_types", pd.Series(["skill_upgrade", "something_new", None], dtype="string"))
    assert got.tolist()[:2] == ["技能提升补贴", "something_new"] and pd.isna(got[2])
    assert labels.series("levels", pd.Series([3, 5])).tolist() == ["三级/高级工", "五级/初级工"]
    text = labels.explain(pd.Series(["annual_cap_reached", None]), pd.Series(["R7", "R1"]))
    assert text[0] == "本年度已享受3次，达到每人每年次数上限（四(三)）" and pd.isna(text[1])
