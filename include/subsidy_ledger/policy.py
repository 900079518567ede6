"""Dated policy versions: the parameters of POLICY.md, read from YAML files, chosen by event date.

Versions may overlap: on a date, the version in force is the one with the latest `effective_from` among
those whose range holds the date (a later rule supersedes an earlier one from its start, "国家和省、市有新规定的
按新规定执行"). A version may `amend` another: it then states only the parameters it changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .money import rate_to_units, yuan_to_fen

POLICY_DIR_ENV = "SUBSIDY_LEDGER_POLICY_DIR"


class PolicyError(ValueError):
    """A policy file is malformed, amends an unknown version, or two versions start on the same day."""


@dataclass(frozen=True)
class Targets:
    """A1: the plan's targets (一 目标任务) that the assessment measures against."""

    person_times: int                 # training person-times over the period
    period_from: dt.date
    period_to: dt.date
    skilled_share_units: int          # skilled workers among the employed, parts per 10,000
    high_skill_share_units: int       # high-skilled among the skilled, parts per 10,000
    high_skill_levels: tuple[int, ...]


def _targets(version: str, doc: Any) -> Targets | None:
    if not doc:
        return None
    try:
        t = Targets(int(doc["person_times"]), _as_date(doc["period_from"]), _as_date(doc["period_to"]),
                    rate_to_units(doc["skilled_share"]), rate_to_units(doc["high_skill_share"]),
                    tuple(sorted(int(v) for v in doc["high_skill_levels"])))
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise PolicyError(f"policy {version}: targets are malformed: {exc!r}") from exc
    if t.person_times < 0 or t.period_to < t.period_from or not set(t.high_skill_levels) <= {1, 2, 3, 4, 5}:
        raise PolicyError(f"policy {version}: targets need person_times >= 0, period_from <= period_to and "
                          "high_skill_levels among 1-5")
    return t


@dataclass(frozen=True)
class PolicyVersion:
    """One dated version of the policy parameters."""

    version: str
    effective_from: dt.date
    effective_to: dt.date
    params: dict[str, Any] = field(repr=False)
    departments: dict[str, str] = field(default_factory=dict, repr=False)
    amends: tuple[str, ...] = ()  # the versions it amends, nearest first
    targets: Targets | None = field(default=None, repr=False)  # A1 (an amendment keeps its base's)

    def level_amount_fen(self, level: int) -> int:
        """R1: skill-upgrade amount for a certificate level (1-5), in fen."""
        return yuan_to_fen(self.params["skill_upgrade_amount_by_level"][int(level)])

    @property
    def special_ability_cap_fen(self) -> int:
        """R1: the most a special-ability certificate can earn, in fen."""
        return yuan_to_fen(self.params["special_ability_cap"])

    @property
    def annual_cap(self) -> int:
        """R1 check 9: certificate subsidies per person per calendar year."""
        return int(self.params["certificates_per_person_per_year"])

    @property
    def default_uplift_units(self) -> int:
        """R3: uplift rate used where the affected-enterprise list leaves it blank."""
        return rate_to_units(self.params["uplift"]["default_rate"])

    @property
    def uplift_last_issue_date(self) -> dt.date:
        """R3: certificates issued after this date get no uplift."""
        return _as_date(self.params["uplift"]["last_issue_date"])

    @property
    def civil_servant_categories(self) -> list[str]:
        """R1 check 3: employer categories that exclude a person."""
        return list(self.params["civil_servant_categories"])

    @property
    def training_annual_cap(self) -> int:
        """R7: training subsidies per person per calendar year of class end."""
        return int(self.params["training_subsidies_per_person_per_year"])

    @property
    def minimum_insured_months(self) -> int:
        """R1 check 5: months of insurance a person qualifying through insurance alone needs (0 = off)."""
        return int(self.params.get("minimum_insured_months", 0))

    @property
    def apprentice_year_amount_fen(self) -> int:
        """R4: amount per completed employee-apprentice agreement year, in fen."""
        return yuan_to_fen(self.params["employee_apprentice"]["amount_per_year"])

    @property
    def apprentice_max_years(self) -> int:
        """R4: employee-apprentice years paid per person at most, across agreements."""
        return int(self.params["employee_apprentice"]["max_years"])

    @property
    def student_cap_fen(self) -> int:
        """R5: the most a student apprentice is paid, in fen."""
        return yuan_to_fen(self.params["student_apprentice"]["cap"])

    @property
    def student_months_counted(self) -> int:
        """R5: the served months counted run from the start for this many months."""
        return int(self.params["student_apprentice"]["months_counted"])

    @property
    def living_allowance_per_day_fen(self) -> int:
        """R6: allowance per attended training day, in fen."""
        return yuan_to_fen(self.params["living_allowance"]["per_day"])

    @property
    def living_allowance_categories(self) -> list[str]:
        """R6: low_income categories that qualify a trainee of their own."""
        return list(self.params["living_allowance"]["categories"])

    @property
    def school_leaver_hukou(self) -> list[str]:
        """R6: school leavers (两后生) qualify with this hukou."""
        return list(self.params["living_allowance"]["school_leavers"]["hukou"])

    @property
    def school_leaver_household_categories(self) -> list[str]:
        """R6: school leavers also qualify when their household has a low_income record of these categories."""
        return list(self.params["living_allowance"]["school_leavers"]["household_categories"])

    @property
    def publicity_working_days(self) -> int:
        """P1: how many working days of the PRC calendar a claim is publicised before it is payable."""
        return int(self.params["publicity_working_days"])

    @property
    def certificate_department(self) -> str:
        """R1 is this department's (and a roster naming an unfiled class is charged to it)."""
        return str(self.params["certificate_department"])


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _check_params(version: str, params: dict[str, Any]) -> None:
    levels = params.get("skill_upgrade_amount_by_level") or {}
    if sorted(int(k) for k in levels) != [1, 2, 3, 4, 5]:
        raise PolicyError(f"policy {version}: skill_upgrade_amount_by_level must give levels 1-5")
    for amount in levels.values():
        yuan_to_fen(amount)
    yuan_to_fen(params["special_ability_cap"])
    rate_to_units(params["uplift"]["default_rate"])
    int(params["certificates_per_person_per_year"])
    int(params["training_subsidies_per_person_per_year"])
    yuan_to_fen(params["employee_apprentice"]["amount_per_year"])
    yuan_to_fen(params["student_apprentice"]["cap"])
    yuan_to_fen(params["living_allowance"]["per_day"])
    if int(params.get("minimum_insured_months", 0)) < 0:
        raise PolicyError(f"policy {version}: minimum_insured_months cannot be negative")
    leavers = params["living_allowance"]["school_leavers"]
    for key in ("hukou", "household_categories"):
        if not isinstance(leavers[key], list):
            raise PolicyError(f"policy {version}: living_allowance.school_leavers.{key} must be a list")
    if int(params["publicity_working_days"]) < 0:
        raise PolicyError(f"policy {version}: publicity_working_days cannot be negative")
    if not params["certificate_department"]:
        raise PolicyError(f"policy {version}: certificate_department is empty")
    for section, key in (("employee_apprentice", "max_years"), ("student_apprentice", "months_counted")):
        if int(params[section][key]) < 1:
            raise PolicyError(f"policy {version}: {section}.{key} must be at least 1")
    if not list(params["living_allowance"]["categories"]):
        raise PolicyError(f"policy {version}: living_allowance.categories is empty")


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """base with changes laid over it, section by section (a list or a value replaces the base's)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return out


def _read(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict) or "version" not in doc:
        raise PolicyError(f"policy file {path.name} is malformed: no version")
    return {**doc, "_file": path.name}


def _build(doc: dict[str, Any], base: PolicyVersion | None) -> PolicyVersion:
    """One version from its file, laid over the version it amends (if any)."""
    name = doc["_file"]
    try:
        version = str(doc["version"])
        start, end = _as_date(doc["effective_from"]), _as_date(doc["effective_to"])
        params = dict(doc["parameters"] or {})
        if base is not None:
            params = _merged(base.params, params)
        _check_params(version, params)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        if isinstance(exc, PolicyError):
            raise
        raise PolicyError(f"policy file {name} is malformed: {exc!r}") from exc
    if end < start:
        raise PolicyError(f"policy {version}: effective_to is before effective_from")
    departments = dict(doc.get("departments") or (base.departments if base else {}))
    chain = (base.version, *base.amends) if base else ()
    targets = _targets(version, doc.get("targets")) or (base.targets if base else None)
    return PolicyVersion(version, start, end, params, departments, chain, targets)


def _resolve(docs: list[dict[str, Any]]) -> list[PolicyVersion]:
    """Build every version, each amending one after the version it names."""
    by_name: dict[str, dict[str, Any]] = {}
    for doc in docs:
        name = str(doc["version"])
        if name in by_name:
            raise PolicyError(f"policy version {name} is defined twice ({by_name[name]['_file']}, {doc['_file']})")
        by_name[name] = doc
    built: dict[str, PolicyVersion] = {}

    def build(name: str, seen: tuple[str, ...]) -> PolicyVersion:
        if name in built:
            return built[name]
        doc = by_name[name]
        base_name = doc.get("amends")
        base = None
        if base_name is not None:
            if str(base_name) not in by_name:
                raise PolicyError(f"policy {name} amends {base_name}, which no policy file defines")
            if str(base_name) in seen:
                raise PolicyError(f"policy {name} amends itself through {' -> '.join(seen)}")
            base = build(str(base_name), (*seen, name))
        built[name] = _build(doc, base)
        return built[name]

    return [build(n, ()) for n in by_name]


class PolicyBook:
    """All policy versions, ordered by start date; on a date the latest-starting one in force wins, and of two
    starting the same day the one that amends the other (an amendment from the base's first day)."""

    def __init__(self, versions: list[PolicyVersion]):
        if not versions:
            raise PolicyError("no policy version found")
        self.versions = sorted(versions, key=lambda v: (v.effective_from, len(v.amends)))
        for a, b in zip(self.versions, self.versions[1:], strict=False):
            if b.effective_from == a.effective_from and a.version not in b.amends:
                raise PolicyError(f"policy versions {a.version} and {b.version} start on the same day "
                                  f"({a.effective_from}): which one supersedes the other is undecided")
        self.by_name = {v.version: v for v in self.versions}

    @classmethod
    def load(cls, extra_dir: str | Path | None = None) -> PolicyBook:
        """Load the packaged versions plus any in extra_dir (or $SUBSIDY_LEDGER_POLICY_DIR)."""
        paths = sorted(Path(str(p)) for p in resources.files(__package__).joinpath("policies").iterdir()
                       if str(p).endswith(".yaml"))
        extra = extra_dir or os.environ.get(POLICY_DIR_ENV)
        if extra:
            paths += sorted(Path(extra).glob("*.yaml"))
        return cls(_resolve([_read(p) for p in paths]))

    @property
    def fingerprint(self) -> str:
        """SHA-256 over every version's dates and parameters: decisions can be reused only under the same."""
        doc = [(v.version, str(v.effective_from), str(v.effective_to), v.params, v.departments) for v in self.versions]
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def targets(self) -> Targets:
        """A1's targets: those of the latest-starting version that states them."""
        for v in reversed(self.versions):
            if v.targets is not None:
                return v.targets
        raise PolicyError("no policy version states the plan's targets (A1)")

    @property
    def departments(self) -> list[str]:
        """Every department code any version names, in a stable order."""
        return sorted({d for v in self.versions for d in v.departments})

    def version_of(self, dates: pd.Series) -> pd.Series:
        """Name of the version in force on each date (NA where none is: outside the policy window).

        Of the versions whose range holds the date, the one that started last supersedes the others."""
        d = dates.to_numpy(dtype="datetime64[D]")
        out = np.full(len(d), None, dtype=object)
        for v in self.versions:  # in start order: a later start overwrites
            inside = (d >= np.datetime64(v.effective_from, "D")) & (d <= np.datetime64(v.effective_to, "D"))
            out[inside] = v.version
        return pd.Series(out, index=dates.index, dtype="string")

    def per_version(self, versions: pd.Series, getter) -> pd.Series:
        """Map each row's version name to a parameter value (getter(version) -> value)."""
        table = {name: getter(v) for name, v in self.by_name.items()}
        # mapped once per distinct name, then spread by position: Series.map of a whole Arrow text column goes
        # through Python objects (250,000 rows: 55 ms; dozens of calls a partition). A missing name is mapped
        # too, so that the values take the dtype map gives the whole column
        codes, names = pd.factorize(versions)
        distinct = pd.Series(names)
        if (codes < 0).any():
            distinct = pd.concat([distinct, pd.Series([None], dtype=distinct.dtype)], ignore_index=True)
            codes = np.where(codes < 0, len(distinct) - 1, codes)
        return distinct.map(table).take(codes).set_axis(versions.index).rename(versions.name)
