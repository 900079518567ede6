"""The contract module: one home for the names every stage shares, importable without GX or the workbooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from subsidy_ledger import contract
from subsidy_ledger.registries import REGISTRIES

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("great_expectations", "subsidy_ledger.validate", "subsidy_ledger.export", "xlsxwriter", "matplotlib")


def test_trace_lineage_the_access_log_and_the_rule_tests_load_neither_gx_nor_the_extracts():
    modules = ["subsidy_ledger.trace", "subsidy_ledger.lineage", "subsidy_ledger.access",
               *(f"tests.rules.{p.stem}" for p in sorted((REPO / "tests" / "rules").glob("test_*.py")))]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "", f"loaded: {proc.stdout.strip()}"


def test_record_keys_join_compound_keys_and_show_nul():
    reg = REGISTRIES["class_enrollments"]
    frame = pd.DataFrame({c: pd.array([None, None], dtype="string") for c in reg.columns})
    frame["class_id"] = pd.array(["K1", "K\x002"], dtype="string")
    frame["person_id"] = pd.array(["330503198302253716", None], dtype="string")
    assert reg.key == ("class_id", "person_id")
    assert list(contract.record_keys(frame, reg)) == ["K1+330503198302253716", "K\\x002+"]
    assert list(contract.mask_ids_in_text(contract.record_keys(frame, reg))) == ["K1+330503********3716", "K\\x002+"]


def test_typed_rows_keep_money_and_rates_exact():
    reg = REGISTRIES["city_payouts"]
    frame = pd.DataFrame({c: pd.array(["x"], dtype="string") for c in reg.columns})
    for c in reg.dates:
        frame[c] = "2020-02-29"
    for c in reg.integers:
        frame[c] = "3"
    for c in reg.money:
        frame[c] = "1234.5"
    typed = contract.type_frame(frame, reg)
    assert reg.money and all(typed[c].iloc[0] == 123450 for c in reg.money)
    assert all(typed[c].iloc[0] == 3 for c in reg.integers)
    assert all(str(typed[c].dtype) == "datetime64[s]" for c in reg.dates)


def test_an_empty_copy_keeps_the_types_and_none_of_the_rows_memory():
    import pyarrow as pa

    base = pa.total_allocated_bytes()
    big = pd.DataFrame({"person_id": pd.Series([f"33050319800101{i:04d}" for i in range(200_000)], dtype="string"),
                        "n": pd.Series(range(200_000), dtype="Int64")})
    assert pa.total_allocated_bytes() - base > 3_000_000  # the text column lives in Arrow's memory
    empty = contract.empty_like(big)
    sliced = big.iloc[:0]
    del big
    assert pa.total_allocated_bytes() - base > 3_000_000  # an empty slice holds on to every row's text
    del sliced
    assert pa.total_allocated_bytes() - base < 100_000  # the empty copy does not
    assert len(empty) == 0 and list(empty.columns) == ["person_id", "n"]
    assert [str(t) for t in empty.dtypes] == ["string", "Int64"]
