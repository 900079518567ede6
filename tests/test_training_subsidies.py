"""R7 end to end (SQLite and PostgreSQL): an over-budget project's excess entry is held, then released when an
amended filing raises the budget; a certificate whose occupation and level was paid as a training subsidy is
rejected paid_as_training_subsidy; the funding request, supervision report and lineage show them."""

from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa
from subsidy_ledger.cli import main
from subsidy_ledger.registries import REGISTRIES

from tests.scenario import PEOPLE, certificate, enrolled, institution, insured, low_income, project, training_class

# ledger semantics, not publicity (tests/test_payments.py): claims are paid the night approved
pytestmark = pytest.mark.usefixtures("immediate_payment")

NIGHT1, NIGHT2 = "2022-06-30", "2022-07-01"
TRAINEES = sorted(PEOPLE[:3])  # entries are approved in person order within a class: the last one waits


def _write_drop(folder, budget):
    rows = {
        "social_insurance": [insured(p) for p in TRAINEES],
        "unemployment_registrations": [{"record_id": "UR1", "person_id": PEOPLE[11], "name": "登记",
                                        "registered_on": "2019-01-01", "area": "urban"}],
        "veterans": [{"record_id": "V1", "person_id": PEOPLE[11], "name": "退役", "discharged_on": "2010-01-01"}],
        "low_income": [low_income(PEOPLE[11], "disabled")],
        "certificates": [certificate("C1", TRAINEES[0], "2020-06-01", level="5", occupation="5-01-02-01"),
                         certificate("C2", PEOPLE[11], "2020-06-01")],
        "training_classes": [training_class("K1", "2020-05-01", "2020-05-20", project_id="P1")],
        "class_enrollments": [enrolled("K1", p) for p in TRAINEES],
        "training_projects": [project("P1", budget=budget)],
        "training_institutions": [institution()],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in rows.items():
        cols = REGISTRIES[name].columns
        with open(folder / f"{name}.csv", "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.DictWriter(fh, cols, lineterminator="\n")
            w.writeheader()
            w.writerows([{c: (r.get(c) or "") for c in cols} for r in records])
    return folder


def _read(path):
    with open(path, encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _run(drop, url, out, as_of):
    assert main(["run", "--sources", str(drop), "--as-of", as_of, "--warehouse", url, "--out", str(out)]) == 0


def test_over_budget_entries_wait_for_an_amended_filing(warehouse_url, tmp_path, capsys):
    out = tmp_path / "out"
    _run(_write_drop(tmp_path / "n1", "2400.00"), warehouse_url, out, NIGHT1)
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as c:
        night1 = dict(c.execute(sa.text("select person_id, decision || ':' || coalesce(reason_code, '') from decisions "
                                        "where run_id = :r and subsidy_type = 'training_subsidy'"),
                                {"r": f"cli__{NIGHT1}"}).all())
        cert = c.execute(sa.text("select decision, reason_code from decisions where run_id = :r and reference = 'C1'"),
                         {"r": f"cli__{NIGHT1}"}).one()
        lines1 = c.execute(sa.text("select person_id, amount_fen, department_code from ledger_lines "
                                   "where subsidy_type = 'training_subsidy' order by person_id")).all()
        roles = set(c.execute(sa.text("select role from claim_sources where subsidy_type = 'training_subsidy' "
                                      "and run_id = :r"), {"r": f"cli__{NIGHT1}"}).scalars())
    engine.dispose()
    assert night1 == {TRAINEES[0]: "approved:", TRAINEES[1]: "approved:", TRAINEES[2]: "held:over_filed_budget"}
    assert tuple(cert) == ("rejected", "paid_as_training_subsidy")  # 同一职业同一等级: training or certificate
    assert [tuple(x) for x in lines1] == [(TRAINEES[0], 120000, "AGRI"), (TRAINEES[1], 120000, "AGRI")]
    assert {"roster_entry", "training_class", "project_filing", "institution_qualification"} <= roles
    root = out / NIGHT1
    funding = {(r["department_code"], r["fund"], r["year"]): r for r in _read(root / "funding.csv")}
    agri = funding[("AGRI", "skills_upgrade_account", "2020")]
    assert (agri["approved_claims"], agri["approved"], agri["held_over_budget"], agri["posted"]) == (
        "2", "2400.00", "1", "2400.00")
    assert funding[("AGRI", "skills_upgrade_account", "2018")]["filed_budget"] == "2400.00"  # filed in 2018
    ledger = _read(root / "AGRI" / "ledger.csv")
    assert {r["payee_type"] for r in ledger} == {"institution"}
    summary = {r["subsidy_type"]: r for r in _read(root / "summary.csv") if r["department_code"] == "AGRI"}
    assert summary["training_subsidy"]["trainees"] == "2"

    with engine.connect() as c:
        payout = c.execute(sa.text("select payout_id from ledger_lines where subsidy_type = 'training_subsidy' "
                                   "order by seq limit 1")).scalar()
    engine.dispose()
    capsys.readouterr()
    assert main(["trace", "--warehouse", warehouse_url, payout]) == 0
    shown = capsys.readouterr().out
    for role, registry in (("project_filing", "training_projects.csv"), ("training_class", "training_classes.csv"),
                           ("institution_qualification", "training_institutions.csv"),
                           ("roster_entry", "class_enrollments.csv")):
        assert role in shown and registry in shown, (role, shown)
    assert "accepted by GX suite training_projects" in shown and "rule R7" in shown

    # night 2: AGRI files an amended project with a larger budget; the waiting entry is approved and paid
    _run(_write_drop(tmp_path / "n2", "3600.00"), warehouse_url, out, NIGHT2)
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as c:
        lines2 = c.execute(sa.text("select person_id, entry_type, amount_fen from ledger_lines "
                                   "where subsidy_type = 'training_subsidy' order by seq")).all()
    engine.dispose()
    assert [tuple(x) for x in lines2] == [*[(p, "payout", 120000) for p, _, _ in lines1],
                                          (TRAINEES[2], "payout", 120000)]  # nothing reversed on the way
