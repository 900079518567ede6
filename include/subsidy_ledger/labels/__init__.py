"""Chinese labels for the pipeline's codes, and the glossary of reasons (docs/reasons.md is rendered from it)."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import yaml

from ..rules.holds import HOLD_REASONS

SOURCE = Path(__file__).with_name("zh.yaml")
KINDS = ("subsidy_types", "funds", "decisions", "entry_types", "payee_types", "levels", "departments",
         "payment_states", "rules", "rule_clauses", "roles", "instruction_kinds", "certificate_types", "measures",
         "person_time_sources", "assessment_views", "assessment_columns")


@functools.cache
def load() -> dict:
    """The label file, parsed once."""
    return yaml.safe_load(SOURCE.read_text("utf-8"))


def zh(kind: str, code) -> str | None:
    """The Chinese label of one code (None when it has none)."""
    if code is None or code is pd.NA or (isinstance(code, float) and pd.isna(code)):
        return None
    return load()[kind].get(int(code) if kind == "levels" else code)


def series(kind: str, codes: pd.Series) -> pd.Series:
    """Chinese labels of a column of codes; a code without a label stays as it is."""
    table = load()[kind]
    if kind == "levels":
        codes = codes.astype("Int64")
    return codes.map(table).astype("string").fillna(codes.astype("string"))


def _entry(code: str) -> dict | None:
    data = load()
    return data["reasons"].get(code) or data["reversal_reasons"].get(code)


def reason_text(code, rule_id: str | None = None) -> str | None:
    """The sentence for a reason code (rejection, hold or reversal)."""
    if not isinstance(code, str) or not code:
        return None
    e = _entry(code)
    return e["zh"] if e else code


def reason_clause(code, rule_id: str | None = None) -> str | None:
    """The clause of the plan a reason code rests on, for the rule that gave it."""
    if not isinstance(code, str) or not code:
        return None
    e = _entry(code)
    if not e:
        return None
    clause = e["clause"]
    if rule_id in clause:
        return clause[rule_id]
    return clause.get("*") or "；".join(f"{r}: {c}" for r, c in clause.items())


def explain(codes: pd.Series, rule_ids: pd.Series) -> pd.Series:
    """"<sentence> (<clause>)" for each (reason code, rule) pair; missing codes stay missing."""
    pairs = pd.DataFrame({"c": codes.astype("string"), "r": rule_ids.astype("string")})
    # each distinct pair worded once, then matched back to the rows in their order
    uniq = pairs.drop_duplicates()
    uniq = uniq.assign(t=pd.Series([f"{reason_text(c, r)}（{reason_clause(c, r)}）" if isinstance(c, str) else None
                                    for c, r in uniq.itertuples(index=False)], index=uniq.index, dtype="string"))
    return pd.Series(pairs.merge(uniq, on=["c", "r"], how="left")["t"].array, index=codes.index, dtype="string")


def glossary() -> pd.DataFrame:
    """Every reason code: kind (rejected, held, reversal), the sentence and the clause per rule."""
    data = load()
    rows = []
    for code, e in data["reasons"].items():
        kind = "held" if code in HOLD_REASONS else "rejected"
        rows.append({"code": code, "kind": kind, "zh": e["zh"],
                     "clause": "；".join(c if r == "*" else f"{r}: {c}" for r, c in e["clause"].items())})
    for code, e in data["reversal_reasons"].items():
        rows.append({"code": code, "kind": "reversal", "zh": e["zh"], "clause": e["clause"]["*"]})
    return pd.DataFrame(rows, columns=["code", "kind", "zh", "clause"])


def glossary_markdown() -> str:
    """docs/reasons.md: the glossary as a Markdown table."""
    g = glossary()
    kind_zh = {"rejected": "不予补贴 rejected", "held": "暂缓 held", "reversal": "冲销 reversal"}
    out = ["# Reasons (原因说明)", "",
           "Every reason code a decision or a reversal can carry: the sentence clerks, auditors and `trace` show,",
           "and the clause of the plan (南浔区职业技能提升行动实施方案) it rests on. Generated from",
           "`include/subsidy_ledger/labels/zh.yaml` by `subsidy-ledger reasons --markdown`; a test keeps them equal.",
           "", "| code | kind | 说明 | clause (条款) |", "|---|---|---|---|"]
    out += [f"| `{r.code}` | {kind_zh[r.kind]} | {r.zh} | {r.clause} |" for r in g.itertuples()]
    return "\n".join(out) + "\n"
