"""Small literal registries for rule scenarios: write what a clerk would write, get decisions back."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from subsidy_ledger import decide, eligibility
from subsidy_ledger.extract import ROW_COL
from subsidy_ledger.generate import credit_codes, resident_ids
from subsidy_ledger.policy import PolicyBook
from subsidy_ledger.registries import REGISTRIES
from subsidy_ledger.validate import type_frame

_rng = np.random.default_rng(11)
PEOPLE = list(resident_ids(_rng, 12))
EMPLOYERS = list(credit_codes(_rng, 4))


def registry(name: str, rows: list[dict]) -> pd.DataFrame:
    """A staged (typed) registry from dicts of strings; unspecified columns are empty."""
    reg = REGISTRIES[name]
    frame = pd.DataFrame([{c: r.get(c) for c in reg.columns} for r in rows], columns=list(reg.columns),
                         dtype="string")
    frame[ROW_COL] = range(2, len(frame) + 2)
    out = type_frame(frame, reg)
    if "passed" in out:
        out["passed"] = out["passed"].astype(bool)
    return out


def staged(**registries: list[dict]) -> dict[str, pd.DataFrame]:
    """Every registry staged, empty unless given."""
    return {name: registry(name, registries.get(name, [])) for name in REGISTRIES}


def insured(person: str, start: str = "2015-01-01", end: str | None = None, employer: int = 0,
            category: str = "enterprise", record: str | None = None) -> dict:
    """An unemployment-insurance episode."""
    return {"record_id": record or f"SI-{person[-6:]}-{start}", "person_id": person, "name": "参保人",
            "employer_credit_code": EMPLOYERS[employer], "employer_name": "某公司",
            "employer_category": category, "start_date": start, "end_date": end}


def certificate(no: str, person: str, issued: str, level: str | None = "4", occupation: str = "6-18-01-01",
                kind: str = "skill_level", status: str = "valid", klass: str | None = None) -> dict:
    """A certificate row."""
    return {"certificate_no": no, "person_id": person, "name": "持证人", "certificate_type": kind,
            "occupation_code": occupation, "occupation_name": "车工", "level": level, "issued_on": issued,
            "issuer": "湖州市职业技能鉴定中心", "training_class_id": klass, "status": status}


def decide_all(stg: dict[str, pd.DataFrame], as_of: str = "2022-06-30", paid: list[tuple] = (),
               book: PolicyBook | None = None) -> pd.DataFrame:
    """Run eligibility and R1-R3 on staged registries; decisions indexed by certificate number."""
    book = book or PolicyBook.load()
    elig = eligibility.build_certificate_eligibility(stg, dt.date.fromisoformat(as_of), book)
    already = pd.DataFrame(list(paid), columns=decide.CLAIM_KEY)
    return decide.decide_certificates(elig, book, already).set_index("reference", drop=False)
