"""Held decisions end to end (SQLite and PostgreSQL): a claim whose person has a quarantined row waits,
is never rejected for it, keeps a payout it already has, and is decided normally once the row is fixed."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from subsidy_ledger.cli import main
from subsidy_ledger.extract import sniff_encoding
from subsidy_ledger.generate import generate
from subsidy_ledger.rules import holds

NIGHT1, NIGHT2 = "2022-06-30", "2022-07-01"
# ledger semantics, not publicity (tests/test_payments.py): claims are paid the night approved
pytestmark = pytest.mark.usefixtures("immediate_payment")


def test_quarantined_rows_name_the_rows_of_the_claims_person_in_the_registries_its_rule_reads():
    claims = pd.DataFrame({"subsidy_type": ["skill_upgrade", "living_allowance", "skill_upgrade",
                                            "apprentice_student"], "person_id": ["A", "A", "B", "A"],
                           "reference": ["C1", "K1", "C2", "S1#1"]})
    q = pd.DataFrame({"registry": ["social_insurance", "low_income", "veterans", "training_classes"],
                      "row_number": [7, 3, 9, 4], "person_id": ["A", "A", "C", pd.NA],
                      "record_key": ["SI7", "LI3", "V9", "K4"]})
    rows = holds.quarantined_rows(claims, q)
    assert rows.iloc[0] == "low_income:3;social_insurance:7" and rows.iloc[1] == "low_income:3"
    assert rows.iloc[2:].isna().all()  # B has no bad row; R5 does not read low_income or insurance
    held = holds.hold(claims.assign(decision="rejected", reason_code="not_eligible_group", amount_fen=5), rows)
    assert held["decision"].tolist() == ["held", "held", "rejected", "rejected"]
    assert held["reason_code"].tolist()[:2] == [holds.AWAITING_CORRECTION] * 2 and held["amount_fen"].iloc[0] == 0


@pytest.mark.parametrize("subsidy_type,registry,held", [
    ("apprentice_employee", "social_insurance", True),   # R4 reads the employer's episodes (in post a year)
    ("apprentice_student", "social_insurance", False),
    ("living_allowance", "school_leavers", True),        # R6 reads the school leavers' list (两后生)
    ("skill_upgrade", "class_enrollments", False),       # revision 2: R1 reads no roster
    ("skill_upgrade", "city_payouts", True),
])
def test_which_registries_each_rule_waits_for(subsidy_type, registry, held):
    claims = pd.DataFrame({"subsidy_type": [subsidy_type], "person_id": ["A"], "reference": ["X1"]})
    q = pd.DataFrame({"registry": [registry], "row_number": [5], "person_id": ["A"], "record_key": ["R5"]})
    assert holds.quarantined_rows(claims, q).notna().iloc[0] == held


def test_a_claim_on_a_class_waits_for_its_class_project_and_institution_rows():
    claims = pd.DataFrame({"subsidy_type": ["training_subsidy", "living_allowance", "training_subsidy"],
                           "person_id": ["A", "A", "B"], "reference": ["K1", "K1", "K2"]})
    classes = pd.DataFrame({"class_id": ["K1", "K2"], "project_id": ["P1", pd.NA],
                            "institution_credit_code": ["91330503AAAAAAAAAA", "91330503BBBBBBBBBB"]})
    q = pd.DataFrame({"registry": ["training_projects", "training_institutions", "training_institutions"],
                      "row_number": [2, 3, 4], "person_id": [pd.NA] * 3,
                      "record_key": ["P1", "91330503AAAAAAAAAA+2019-01-01", "91330503CCCCCCCCCC+2019-01-01"]})
    rows = holds.quarantined_rows(claims, q, classes)
    assert rows.iloc[0] == "training_institutions:3;training_projects:2"
    assert pd.isna(rows.iloc[1]) and pd.isna(rows.iloc[2])  # R6 does not read projects; K2's institution is fine
    q = pd.DataFrame({"registry": ["training_classes"], "row_number": [8], "person_id": [pd.NA],
                      "record_key": ["K2"]})
    assert holds.quarantined_rows(claims, q, classes).tolist()[2] == "training_classes:8"


def _rows(path: Path) -> tuple[list[list[str]], str]:
    enc, _ = sniff_encoding(path)
    with open(path, encoding=enc, newline="") as fh:
        return list(csv.reader(fh)), enc


def _write(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


@pytest.fixture(scope="module")
def drops(tmp_path_factory, immediate_policy, suite_env):
    """A clean drop and a copy in which one paid person's insurance record id appears twice."""
    root = tmp_path_factory.mktemp("holds")
    clean = root / "clean"
    generate(300, 47, clean)
    out, url = root / "out", f"sqlite:///{root / 'probe.sqlite'}"
    with pytest.MonkeyPatch.context() as mp:
        suite_env(mp, root / "work")
        mp.setenv("SUBSIDY_LEDGER_POLICY_DIR", str(immediate_policy))
        assert main(["run", "--sources", str(clean), "--as-of", NIGHT1, "--warehouse", url, "--out", str(out)]) == 0
    si, _ = _rows(clean / "social_insurance.csv")
    pid = si[0].index("person_id")
    insured = {r[pid] for r in si[1:]}
    engine = sa.create_engine(url)
    with engine.connect() as c:
        claims = c.execute(sa.text("select reference, person_id from decisions where decision = 'approved' "
                                   "and subsidy_type = 'skill_upgrade' order by reference")).all()
    engine.dispose()
    reference, person = next((r, p) for r, p in claims if p in insured)
    broken = root / "broken"
    shutil.copytree(clean, broken)
    row = next(r for r in si[1:] if r[pid] == person)
    _write(broken / "social_insurance.csv", [*si, list(row)])  # the same record id twice: both quarantined
    return clean, broken, reference, person


def _run(drop, url, out, as_of):
    assert main(["run", "--sources", str(drop), "--as-of", as_of, "--warehouse", url, "--out", str(out)]) == 0


def _claim(url, reference, person, run):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        decision = c.execute(sa.text("select decision, reason_code, held_rows from decisions where run_id = :r "
                                     "and reference = :ref and person_id = :p"),
                             {"r": run, "ref": reference, "p": person}).one()
        lines = c.execute(sa.text("select entry_type, amount_fen from ledger_lines where reference = :ref and "
                                  "person_id = :p order by seq"), {"ref": reference, "p": person}).all()
    engine.dispose()
    return tuple(decision), [tuple(x) for x in lines]


def _decisions_csv(out, as_of, reference):
    rows = []
    for path in sorted((out / as_of).glob("*/decisions.csv")):
        with open(path, encoding="utf-8-sig") as fh:
            rows += [r for r in csv.DictReader(fh) if r["reference"] == reference]
    assert len(rows) == 1, rows
    return rows[0]


def test_held_on_night_one_then_approved_when_the_registry_corrects_the_row(drops, warehouse_url, tmp_path):
    clean, broken, reference, person = drops
    out = tmp_path / "out"
    _run(broken, warehouse_url, out, NIGHT1)
    (decision, reason, rows), lines = _claim(warehouse_url, reference, person, f"cli__{NIGHT1}")
    assert (decision, reason) == ("held", "awaiting_registry_correction") and lines == []
    assert rows.count("social_insurance:") == 2
    row = _decisions_csv(out, NIGHT1, reference)
    assert (row["decision"], row["held_rows"], row["amount"]) == ("held", rows, "0.00")
    _run(clean, warehouse_url, out, NIGHT2)
    (decision, reason, rows), lines = _claim(warehouse_url, reference, person, f"cli__{NIGHT2}")
    assert (decision, reason, rows) == ("approved", None, None)
    assert [e for e, _ in lines] == ["payout"]  # never a rejection or a reversal on the way


def test_a_payout_the_ledger_holds_stands_while_its_claim_is_held(drops, warehouse_url, tmp_path):
    clean, broken, reference, person = drops
    out = tmp_path / "out"
    _run(clean, warehouse_url, out, NIGHT1)
    paid = _claim(warehouse_url, reference, person, f"cli__{NIGHT1}")[1]
    assert [e for e, _ in paid] == ["payout"]
    _run(broken, warehouse_url, out, NIGHT2)
    (decision, _, _), lines = _claim(warehouse_url, reference, person, f"cli__{NIGHT2}")
    assert decision == "held" and lines == paid  # no reversal on uncertainty
    certificates, _ = _rows(clean / "certificates.csv")
    gone = tmp_path / "gone"  # now the certificate row itself is unreadable: the claim is not in the drop
    shutil.copytree(broken, gone)
    no = certificates[0].index("certificate_no")
    bad = [r if r[no] != reference else [*r[:no], reference, *r[no + 1:]] for r in certificates]
    bad.append(next(list(r) for r in certificates if r[no] == reference))  # a duplicate key: both rows out
    _write(gone / "certificates.csv", bad)
    _run(gone, warehouse_url, out, "2022-07-02")
    (decision, reason, rows), lines = _claim(warehouse_url, reference, person, "cli__2022-07-02")
    assert (decision, reason) == ("held", "awaiting_registry_correction") and "certificates:" in rows
    assert lines == paid
