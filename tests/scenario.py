"""Small literal registries for rule scenarios: write what a clerk would write, get decisions back."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from subsidy_ledger import contract, decide, eligibility
from subsidy_ledger.contract import ROW_COL, type_frame
from subsidy_ledger.generate import credit_codes, resident_ids
from subsidy_ledger.policy import PolicyBook
from subsidy_ledger.registries import REGISTRIES

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
    already = pd.DataFrame(list(paid), columns=contract.CLAIM_KEY)
    city = eligibility.city_paid_by(stg["city_payouts"], dt.date.fromisoformat(as_of))
    return decide.decide_certificates(elig, book, already, city).set_index("reference", drop=False)


def agreement(aid: str, person: str, kind: str, start: str, end: str | None = None, allowance: str | None = None,
              dept: str = "ECON") -> dict:
    """An apprenticeship agreement row."""
    return {"agreement_id": aid, "person_id": person, "name": "学徒", "employer_credit_code": EMPLOYERS[0],
            "school_name": "湖州南浔技工学校", "apprentice_kind": kind, "start_date": start, "end_date": end,
            "monthly_allowance": allowance, "department_code": dept}


def training_class(cid: str, start: str, end: str, filed: str | None = None, dept: str = "AGRI",
                   project_id: str | None = None, occupation: str = "5-01-02-01", level: str | None = "5") -> dict:
    """A filed training class (filed ten days before it starts unless told), run by INSTITUTION."""
    filed = filed or (dt.date.fromisoformat(start) - dt.timedelta(days=10)).isoformat()
    return {"class_id": cid, "department_code": dept, "project_id": project_id,
            "institution_name": "南浔区农民田间学校", "institution_credit_code": INSTITUTION,
            "occupation_code": occupation, "level": level,
            "training_kind": "employment_skill", "filed_on": filed, "start_date": start, "end_date": end}


INSTITUTION = EMPLOYERS[3]


def project(pid: str, dept: str = "AGRI", standard: str = "1200.00", budget: str = "100000.00",
            filed: str = "2018-06-01", occupation: str = "5-01-02-01", level: str | None = "5") -> dict:
    """A training project filed with HRSS."""
    return {"project_id": pid, "department_code": dept, "title": "培训项目", "occupation_code": occupation,
            "level": level, "standard_per_trainee": standard, "planned_trainees": "100", "budget": budget,
            "filed_on": filed}


def institution(code: str = INSTITUTION, start: str = "2015-01-01", end: str | None = None) -> dict:
    """A qualification of a training institution."""
    return {"institution_credit_code": code, "institution_name": "南浔区农民田间学校", "qualified_from": start,
            "qualified_to": end, "bank_name": "浙江南浔农村商业银行", "account_no": "6228480012345678"}


def decide_training(stg, as_of: str = "2022-06-30", paid: list[tuple] = (), book: PolicyBook | None = None,
                    held_rows: pd.Series | None = None) -> pd.DataFrame:
    """Eligibility and R7 on staged registries; decisions indexed by (class id, person)."""
    book = book or PolicyBook.load()
    elig = eligibility.build_training_eligibility(stg, dt.date.fromisoformat(as_of), book)
    already = pd.DataFrame(list(paid), columns=contract.CLAIM_KEY)
    return decide.decide_training_subsidies(elig, book, already, held_rows).set_index(["reference", "person_id"],
                                                                                      drop=False)


def enrolled(cid: str, person: str, days: str = "10", passed: str = "true") -> dict:
    """A roster entry."""
    return {"class_id": cid, "person_id": person, "name": "学员", "attendance_days": days, "passed": passed}


def low_income(person: str, category: str = "low_income_rural_household", start: str = "2015-01-01",
               end: str | None = None) -> dict:
    """A low-income / hardship record."""
    return {"record_id": f"LI-{person[-6:]}-{category}-{start}", "person_id": person, "name": "困难人员",
            "household_id": "HH1", "category": category, "valid_from": start, "valid_to": end}


def school_leaver(person: str, hukou: str = "rural", graduated: str = "2019-07-01") -> dict:
    """A school leaver (两后生) row."""
    return {"record_id": f"SL-{person[-6:]}", "person_id": person, "name": "两后生", "school_name": "南浔某中学",
            "education_level": "junior_secondary", "graduated_on": graduated, "hukou": hukou}


def decide_apprentices(stg, as_of: str = "2022-06-30", book: PolicyBook | None = None) -> pd.DataFrame:
    """Eligibility and R4/R5 on staged registries; decisions indexed by reference."""
    book = book or PolicyBook.load()
    when = dt.date.fromisoformat(as_of)
    elig = eligibility.build_apprentice_eligibility(stg, when, book)
    return decide.decide_apprentices(elig, book, when).set_index("reference", drop=False)


def decide_living(stg, as_of: str = "2022-06-30", book: PolicyBook | None = None) -> pd.DataFrame:
    """Eligibility and R6 on staged registries; decisions indexed by (class id, person)."""
    book = book or PolicyBook.load()
    when = dt.date.fromisoformat(as_of)
    elig = eligibility.build_living_allowance_eligibility(stg, when, book)
    return decide.decide_living_allowances(elig, book, when).set_index(["reference", "person_id"], drop=False)


def write_drop(folder, **registries: list[dict]):
    """Write a drop folder of CSV files (UTF-8) from dicts of strings; a required registry given no rows gets
    one row of a bystander (PEOPLE[-1]), since a required registry may not be empty."""
    import csv
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bystander = PEOPLE[-1]
    filler = {
        "social_insurance": [insured(bystander, record="SI-BYSTANDER")],
        "unemployment_registrations": [{"record_id": "UR-BYSTANDER", "person_id": bystander, "name": "旁人",
                                        "registered_on": "2016-01-01", "ended_on": "2016-06-01", "area": "urban"}],
        "certificates": [certificate("C-BYSTANDER", bystander, "2016-01-01")],
        "veterans": [{"record_id": "VT-BYSTANDER", "person_id": bystander, "name": "旁人",
                      "discharged_on": "2010-01-01"}],
        "low_income": [low_income(bystander, "disabled", "2016-01-01")],
    }
    for name, reg in REGISTRIES.items():
        rows = registries.get(name) or (filler.get(name, []) if reg.required else [])
        if name not in registries and not reg.required:
            continue
        with open(folder / reg.filename, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(reg.columns))
            w.writeheader()
            for r in rows:
                w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in reg.columns})
    return folder


def account(person: str, number: str, start: str = "2015-01-01", end: str | None = None,
            bank: str = "中国工商银行湖州南浔支行") -> dict:
    """A person's payee account (社保卡金融账户)."""
    return {"person_id": person, "name": "持证人", "bank_name": bank, "account_no": number, "valid_from": start,
            "valid_to": end}
