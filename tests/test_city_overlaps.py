"""R1 check 6 end to end (SQLite and PostgreSQL): a city payout recorded after the district's payout does not
reverse it; the pair goes to city_overlaps.csv for HRSS to settle. One the district has not paid yet is
rejected paid_by_city."""

from __future__ import annotations

import csv
import shutil

import pytest
import sqlalchemy as sa
from subsidy_ledger.cli import main
from subsidy_ledger.extract import sniff_encoding
from subsidy_ledger.generate import generate

# ledger semantics, not publicity (tests/test_payments.py): claims are paid the night approved
pytestmark = pytest.mark.usefixtures("immediate_payment")

NIGHT1, NIGHT2 = "2022-06-30", "2022-07-01"


def _read(path):
    enc, _ = sniff_encoding(path)
    with open(path, encoding=enc, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    root = tmp_path_factory.mktemp("city")
    generate(300, 53, root / "drop")
    return root / "drop"


def _write(path, rows):
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _run(drop, url, out, as_of):
    assert main(["run", "--sources", str(drop), "--as-of", as_of, "--warehouse", url, "--out", str(out)]) == 0


def test_a_later_city_payout_is_listed_not_reversed(drop, warehouse_url, tmp_path):
    out = tmp_path / "out"
    _run(drop, warehouse_url, out, NIGHT1)
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as c:
        paid = c.execute(sa.text("select l.reference, l.person_id, l.occupation_code, l.level, l.amount_fen, "
                                 "d.event_date from ledger_lines l join decisions d on d.reference = l.reference "
                                 "and d.person_id = l.person_id where l.subsidy_type = 'skill_upgrade' "
                                 "order by l.reference limit 1")).one()
    engine.dispose()
    assert (out / NIGHT1 / "city_overlaps.csv").read_text("utf-8-sig").count("\n") == 1  # header only

    # night 2: the city reports paying the certificate the district paid last night, and a late-arriving
    # certificate of the same person the district never paid
    night2 = tmp_path / "night2"
    shutil.copytree(drop, night2)
    certs = _read(drop / "certificates.csv")
    late = {**certs[0], "certificate_no": "LATE0001", "person_id": paid.person_id, "certificate_type": "skill_level",
            "occupation_code": "9-99-99-99", "level": "5", "issued_on": str(paid.event_date)[:10], "status": "valid",
            "training_class_id": ""}
    _write(night2 / "certificates.csv", [*certs, late])
    city = _read(drop / "city_payouts.csv")
    added = [{"person_id": paid.person_id, "occupation_code": occupation, "level": level, "certificate_no": no,
              "paid_on": NIGHT2, "amount": "1000.00"}
             for no, occupation, level in ((paid.reference, paid.occupation_code, str(paid.level)),
                                           ("LATE0001", "9-99-99-99", "5"))]
    _write(night2 / "city_payouts.csv", [*city, *added])
    _run(night2, warehouse_url, out, NIGHT2)

    engine = sa.create_engine(warehouse_url)
    with engine.connect() as c:
        lines = c.execute(sa.text("select entry_type from ledger_lines where reference = :r and person_id = :p"),
                          {"r": paid.reference, "p": paid.person_id}).scalars().all()
        verdict = dict(c.execute(sa.text(
            "select reference, decision || ':' || coalesce(reason_code, '') from decisions where run_id = :run "
            "and reference in (:a, 'LATE0001')"), {"run": f"cli__{NIGHT2}", "a": paid.reference}).all())
    engine.dispose()
    assert lines == ["payout"]  # the district's payout stands: 市、区政策不重复享受 is HRSS's to settle
    assert verdict == {paid.reference: "approved:", "LATE0001": "rejected:paid_by_city"}
    listed = _read(out / NIGHT2 / "city_overlaps.csv")
    assert [(r["reference"], r["city_certificate_no"], r["city_paid_on"], r["city_amount"], r["department_code"])
            for r in listed] == [(paid.reference, paid.reference, NIGHT2, "1000.00", "HRSS")]
    assert listed[0]["district_amount"] == f"{paid.amount_fen // 100}.{paid.amount_fen % 100:02d}"
    assert paid.person_id not in (out / NIGHT2 / "city_overlaps.csv").read_text("utf-8-sig")  # masked
