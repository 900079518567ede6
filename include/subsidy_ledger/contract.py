"""The contract's fixed names in one module (CONTRACT.md): the columns extract adds to every row, each
registry's record key as text, the typed form of accepted rows, the claim key and subsidy types, the funds,
and the masking of identity and account numbers wherever a value is shown. Lineage, trace and the access log
read these from here rather than from the validation or export stages (which would load GX or the workbooks)."""

from __future__ import annotations

import pandas as pd

from .identifiers import mask_account_no, mask_name, mask_resident_id, masks_by_column, person_codes
from .registries import Registry
from .rules import r4_employee_apprentice as r4
from .rules import r5_student_apprentice as r5
from .rules import r6_living_allowance as r6
from .rules import r7_training_subsidy as r7

__all__ = ["CLAIM_KEY", "EMPLOYMENT_FUND", "HASH_COL", "PARSE_ERROR_COL", "ROW_COL", "SKILLS_ACCOUNT",
           "SUBSIDY_TYPES", "empty_like", "mask_account_no", "mask_ids_in_text", "mask_name", "mask_resident_id",
           "masks_by_column", "person_codes", "record_keys", "type_frame"]

ROW_COL = "__row"          # CSV record number, header = 1, so the first data row is 2 (as Excel shows it)
PARSE_ERROR_COL = "__parse_error"
HASH_COL = "__hash"        # content hash of the row: lineage names the exact row a decision rests on

# Funds named in CONTRACT.md: the skills-upgrade account pays all but R6 (就业补助资金).
SKILLS_ACCOUNT = "skills_upgrade_account"
EMPLOYMENT_FUND = "employment_subsidy_fund"
SUBSIDY_TYPES = ["skill_upgrade", "special_ability", r4.SUBSIDY_TYPE, r5.SUBSIDY_TYPE, r6.SUBSIDY_TYPE,
                 r7.SUBSIDY_TYPE]
CLAIM_KEY = ["subsidy_type", "reference", "person_id"]  # one claim, one decision, one payout at a time


def empty_like(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's columns and types without its rows, sharing none of its memory (frame.iloc[:0] of an
    Arrow-backed text column keeps the whole column's buffers alive)."""
    return pd.DataFrame({c: pd.array([], dtype=t) for c, t in frame.dtypes.items()}, columns=frame.columns)


def record_keys(frame: pd.DataFrame, registry: Registry) -> pd.Series:
    """The registry key of each row as text ('A+B' for compound keys); a NUL shows as \\x00."""
    parts = [frame[c].astype("string").fillna("") for c in registry.key]
    key = parts[0]
    for p in parts[1:]:
        key = key + "+" + p
    # PostgreSQL text cannot hold NUL, SQLite can: show it the same visible way in both
    return key.str.replace("\x00", "\\x00", regex=False)


def mask_ids_in_text(text: pd.Series) -> pd.Series:
    """Mask anything shaped like an 18-character identity number inside free text (record keys)."""
    return text.astype("string").str.replace(r"(?<![0-9])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9])",
                                             r"\1********\2", regex=True)


def _decimal_units(text: pd.Series, places: int) -> pd.Series:
    """Exact 'W.FF' decimal strings to integer units of 10**-places (NA stays NA)."""
    parts = text.astype("string").str.extract(rf"^([0-9]+)(?:\.([0-9]{{1,{places}}}))?$")
    whole = parts[0].astype("Int64")
    frac = parts[1].fillna("0").str.ljust(places, "0").astype("Int64")
    return (whole * 10**places + frac).astype("Int64")


def type_frame(frame: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """Convert validated string columns to dates, integers and fen."""
    out = frame.copy()
    for c in registry.dates:
        out[c] = pd.to_datetime(out[c], format="%Y-%m-%d", errors="raise").astype("datetime64[s]")
    for c in registry.integers:
        out[c] = out[c].astype("Int64")
    for c in registry.money:
        out[c] = _decimal_units(out[c], 2)
    if "attendance_days" in out:
        out["attendance_days"] = out["attendance_days"].astype("Int64")
    if "passed" in out:
        out["passed"] = out["passed"].eq("true").astype(bool)
    if "uplift_rate" in out:
        out["uplift_rate"] = _decimal_units(out["uplift_rate"], 4)
    return out
