"""`subsidy-ledger run` end to end on a generated drop, on SQLite and PostgreSQL (CONTRACT.md)."""

import csv
import datetime as dt
import hashlib
import re
import shutil
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from subsidy_ledger.cli import main
from subsidy_ledger.export import LEDGER_COLUMNS
from subsidy_ledger.policy import PolicyBook

AS_OF = "2022-06-30"
# the contract of the extracts, not publicity (tests/test_payments.py): claims are paid the night approved,
# except where a test names its own policy folder
pytestmark = pytest.mark.usefixtures("immediate_payment")
FULL_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9X](?![0-9A-Za-z])")  # not inside a hex payout id


def read_csv(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), f"{path} has no BOM"
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def ran(small_drop, warehouse_url, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--sources", str(small_drop), "--as-of", AS_OF, "--warehouse", warehouse_url,
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    return out / AS_OF, warehouse_url, out


def test_extracts_per_contract(ran, small_drop):
    root, url, _ = ran
    depts = PolicyBook.load().departments
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted([*depts, "assessment"])  # A1 beside
    all_lines = []
    for dept in depts:
        lines = read_csv(root / dept / "ledger.csv")
        decisions = read_csv(root / dept / "decisions.csv")
        assert {r["department_code"] for r in lines} <= {dept} and {r["department_code"] for r in decisions} <= {dept}
        text = "".join((root / dept / f).read_text("utf-8-sig") for f in ("ledger.csv", "decisions.csv"))
        assert not FULL_ID.search(text), "an unmasked identity number in a department extract"
        assert all(re.fullmatch(r"330503\*{8}[0-9]{3}[0-9X]", r["person_id_masked"]) for r in lines)
        wb = openpyxl.load_workbook(root / dept / "ledger.xlsx", read_only=True)
        rows = list(wb["明细账"].iter_rows(values_only=True))
        # one row per CSV line; each header is Chinese with the CSV's column name beneath it
        assert len(rows) == len(lines) + 1
        assert {h.split("\n")[1] for h in rows[0]} <= set(lines[0].keys() if lines else LEDGER_COLUMNS) | {
            "reversal_text"}
        all_lines += lines
    assert all_lines and all(r["posted_on"] == AS_OF and r["entry_type"] == "payout" for r in all_lines)
    summary = read_csv(root / "summary.csv")
    assert sum(Decimal(r["amount"]) for r in summary) == sum(Decimal(r["amount"]) for r in all_lines)
    assert sum(int(r["payout_lines"]) for r in summary) == len(all_lines)
    # rows in = accepted + quarantined, and rows in = the records in each file
    rec = read_csv(root / "reconciliation.csv")
    quarantine = read_csv(root / "quarantine.csv")
    for r in rec:
        assert int(r["rows_in"]) == int(r["accepted"]) + int(r["quarantined"])
        assert sum(q["registry"] == r["registry"] for q in quarantine) == int(r["quarantined"])
        if r["present"] == "True":
            with open(small_drop / r["file_name"], encoding={"gb18030": "gb18030"}.get(r["encoding"], "utf-8-sig"),
                      newline="") as fh:
                assert int(r["rows_in"]) == sum(1 for _ in csv.reader(fh)) - 1
    assert {r["encoding"] for r in rec if r["present"] == "True"} == {"utf-8", "utf-8-bom", "gb18030"}
    assert not FULL_ID.search((root / "quarantine.csv").read_text("utf-8-sig"))
    engine = sa.create_engine(url)
    with engine.connect() as c:
        n = c.execute(sa.text("select count(*), sum(amount_fen) from ledger_lines")).one()
    engine.dispose()
    assert n[0] == len(all_lines) and Decimal(n[1]) / 100 == sum(Decimal(r["amount"]) for r in all_lines)


def _sheet(path: Path, name: str) -> list[tuple]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = list(wb[name].iter_rows(values_only=True))
    wb.close()
    return rows


def _yuan(v) -> Decimal:
    return Decimal(str(v)).quantize(Decimal("0.01"))


def test_workbooks_total_to_the_ledger_and_count_every_decision(ran):
    root, url, _ = ran
    engine = sa.create_engine(url)
    with engine.connect() as c:
        ledger = dict(c.execute(sa.text("select department_code, sum(amount_fen) from ledger_lines "
                                        "group by department_code")).all())
        decided = {(d, k): n for d, k, n in c.execute(sa.text(
            "select department_code, decision, count(*) from decisions group by department_code, decision"))}
    engine.dispose()
    for dept in PolicyBook.load().departments:
        totals = _sheet(root / dept / "ledger.xlsx", "合计")
        net = totals[0].index("净额（元） net")
        assert totals[-1][0] == "总计 grand total"
        assert _yuan(totals[-1][net]) == Decimal(ledger.get(dept, 0)) / 100, dept
        cover = {r[0]: r[1] for r in _sheet(root / dept / "decisions.xlsx", "封面") if r[0]}
        assert cover["核准笔数 approved"] == decided.get((dept, "approved"), 0)
        assert cover["不予补贴笔数 rejected"] == decided.get((dept, "rejected"), 0)
        assert cover["暂缓笔数 held"] == decided.get((dept, "held"), 0)
        rows = _sheet(root / dept / "decisions.xlsx", "判定结果")
        assert len(rows) - 1 == sum(v for (d, _), v in decided.items() if d == dept)
        labels = {r[[h.split("\n")[1] for h in rows[0]].index("decision")] for r in rows[1:]}
        assert labels <= {"核准", "不予补贴", "暂缓"}
    summary = _sheet(root / "summary.xlsx", "合计")
    assert _yuan(summary[-1][summary[0].index("净额（元） net")]) == Decimal(sum(ledger.values())) / 100
    # quarantine names the failing column and shows the value, masked; the reconciliation its share
    quarantine = read_csv(root / "quarantine.csv")
    bad_dates = [q for q in quarantine if q["reasons"] == "invalid_issued_on"]
    assert bad_dates and all(q["columns"] == "issued_on" and q["values_masked"].startswith("issued_on=")
                             for q in bad_dates)
    ids = [q for q in quarantine if q["reasons"] == "invalid_person_id"]
    assert ids and all(re.fullmatch(r"person_id=(\d{6}\*{8}\w{4}|<\d+ characters>|<empty>)", q["values_masked"])
                       for q in ids)
    for r in read_csv(root / "reconciliation.csv"):
        share = int(r["quarantined"]) / int(r["rows_in"]) if int(r["rows_in"]) else 0
        assert r["quarantined_share"] == f"{share:.4f}"
        assert r["gate"] == ("passed_with_quarantine" if int(r["quarantined"]) else "passed")


def test_rerun_posts_nothing_and_rewrites_identical_extracts(ran, small_drop):
    root, url, out = ran
    before = digest(root)
    # the rerun's stages each in a process of their own (the CLI's default; the first night ran in one process)
    assert main(["run", "--sources", str(small_drop), "--as-of", AS_OF, "--warehouse", url, "--out", str(out),
                 "--stage-processes"]) == 0
    assert digest(root) == before
    engine = sa.create_engine(url)
    with engine.connect() as c:
        assert c.execute(sa.text("select count(distinct run_id) from ledger_lines")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("processes", ["--stage-processes", "--no-stage-processes"])
def test_unreadable_registry_stops_before_posting(small_drop, tmp_path, capsys, processes):
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    text = (drop / "certificates.csv").read_text("utf-8-sig").replace("issued_on", "issue_date", 1)
    (drop / "certificates.csv").write_text(text, "utf-8-sig")
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    code = main(["run", "--sources", str(drop), "--as-of", AS_OF, "--warehouse", url, "--out", str(tmp_path / "o"),
                 processes])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "certificates.csv: missing required column(s) issued_on" in err and "Traceback" not in err
    engine = sa.create_engine(url)
    with engine.connect() as c:
        tables = sa.inspect(c).get_table_names()
        assert "ledger_lines" not in tables or c.execute(sa.text("select count(*) from ledger_lines")).scalar() == 0
    engine.dispose()
    assert not (tmp_path / "o" / AS_OF).exists()


def test_a_warehouse_that_cannot_be_opened_stops_the_night_in_a_line_each(small_drop, tmp_path, capsys, caplog):
    """A warehouse URL no driver takes, or an SQLite file in a folder that cannot be made: the night stops
    with one line saying why, and its failure, which cannot be recorded there either, is logged in one line."""
    for url, why in (("nonsense://x", "NoSuchModuleError"), (f"sqlite:///{tmp_path}/file/w.sqlite", "Error")):
        (tmp_path / "file").write_text("a file, not a folder")
        caplog.clear()
        code = main(["run", "--sources", str(small_drop), "--as-of", AS_OF, "--warehouse", url,
                     "--out", str(tmp_path / "o"), "--no-stage-processes"])
        err = capsys.readouterr().err.strip()
        assert code != 0 and len(err.splitlines()) == 1 and why in err and "Traceback" not in err
        assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in caplog.records)
        assert not (tmp_path / "o" / AS_OF).exists()


def test_missing_drop_folder_and_bad_date(tmp_path, capsys):
    assert main(["run", "--sources", str(tmp_path / "nope"), "--as-of", AS_OF, "--out", str(tmp_path)]) == 2
    assert "drop folder does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--sources", str(tmp_path), "--as-of", "2022-02-30"])
    assert exc.value.code == 2


def test_a_new_policy_version_file_prices_later_events_with_no_code_change(small_drop, tmp_path, capsys):
    example = tmp_path / "policies"
    example.mkdir()
    shutil.copy(Path(__file__).parents[1] / "docs/examples/policies/nanxun-2022.yaml", example)
    out = tmp_path / "out"
    for night in ("2023-06-30", "2023-07-10"):  # publicised (5 working days, packaged), then paid
        code = main(["run", "--sources", str(small_drop), "--as-of", night, "--warehouse",
                     f"sqlite:///{tmp_path / 'w.sqlite'}", "--out", str(out), "--policy-dir", str(example)])
        assert code == 0, capsys.readouterr().err
    assert not [r for p in (out / "2023-06-30").glob("*/ledger.csv") for r in read_csv(p)]
    lines = [r for p in (out / "2023-07-10").glob("*/ledger.csv") for r in read_csv(p)]
    by_version = {}
    for r in lines:
        by_version.setdefault(r["policy_version"], set()).add(r["rule_id"])
    assert by_version["nanxun-2019"] == {"R1", "R4", "R5", "R6", "R7"}
    assert {"R1", "R4"} <= by_version["nanxun-2022"]  # R6 under 2022 is covered in tests/test_policy.py
    # the 2022 amounts: R4 5000.00 a year, the 2022 level amounts for R1 (uplift ended with 2021)
    assert {r["amount"] for r in lines if r["rule_id"] == "R4" and r["policy_version"] == "nanxun-2022"} == {"5000.00"}
    r1_2022 = {r["amount"] for r in lines if r["subsidy_type"] == "skill_upgrade"
               and r["policy_version"] == "nanxun-2022"}
    assert r1_2022 and r1_2022 <= {"1200.00", "1800.00", "2400.00", "4500.00", "6500.00"}
    assert all(Decimal(r["amount"]) % 30 == 0 for r in lines if r["rule_id"] == "R6"
               and r["policy_version"] == "nanxun-2019")
    summary = read_csv(out / "2023-07-10" / "summary.csv")
    assert {(r["fund"], r["subsidy_type"]) for r in summary} == {
        ("skills_upgrade_account", t) for t in ("skill_upgrade", "special_ability", "apprentice_employee",
                                                "apprentice_student", "training_subsidy")} | {
        ("employment_subsidy_fund", "living_allowance")}


def test_corrected_roster_and_shortened_agreement_post_reversals_next_night(ran, small_drop, tmp_path):
    root, url, out = ran
    paid = {(r["subsidy_type"], r["reference"]): r for p in root.glob("*/ledger.csv") for r in read_csv(p)}
    living = next(r for k, r in paid.items() if k[0] == "living_allowance" and Decimal(r["amount"]) > 30)
    year2 = next(k[1] for k in paid if k[0] == "apprentice_employee" and k[1].endswith("#2"))
    drop = tmp_path / "drop2"
    shutil.copytree(small_drop, drop)
    # the class's roster is corrected to one attended day for every trainee
    enr = (drop / "class_enrollments.csv").read_text("utf-8-sig").splitlines()
    head = enr[0].split(",")
    ci, di = head.index("class_id"), head.index("attendance_days")
    fixed = [",".join(f if i != di or c.split(",")[ci] != living["reference"] else "1"
                      for i, f in enumerate(c.split(","))) for c in enr[1:]]
    (drop / "class_enrollments.csv").write_text("\n".join([enr[0], *fixed]) + "\n", "utf-8-sig")
    # the agreement is found to have ended after its first year
    ap = (drop / "apprenticeships.csv").read_text("utf-8-sig").splitlines()
    head = ap[0].split(",")
    ai, si, ei = head.index("agreement_id"), head.index("start_date"), head.index("end_date")
    agreement_id = year2.split("#")[0]
    rows = []
    for line in ap[1:]:
        f = line.split(",")
        if f[ai] == agreement_id:
            start = dt.date.fromisoformat(f[si])
            f[ei] = (start.replace(year=start.year + 1) + dt.timedelta(days=30)).isoformat()
        rows.append(",".join(f))
    (drop / "apprenticeships.csv").write_text("\n".join([ap[0], *rows]) + "\n", "utf-8-sig")

    assert main(["run", "--sources", str(drop), "--as-of", "2022-07-01", "--warehouse", url, "--out", str(out)]) == 0
    lines = [r for p in (out / "2022-07-01").glob("*/ledger.csv") for r in read_csv(p)]
    mine = [r for r in lines if r["reference"] == living["reference"] and r["subsidy_type"] == "living_allowance"
            and r["person_id_masked"] == living["person_id_masked"]]
    assert [(r["entry_type"], r["amount"]) for r in mine] == [("reversal", f"-{living['amount']}"),
                                                                ("payout", "30.00")]
    assert mine[0]["reverses_payout_id"] == living["payout_id"]
    gone = [r for r in lines if r["reference"] == year2]
    assert [(r["entry_type"], r["amount"], r["reverses_payout_id"]) for r in gone] == [
        ("reversal", "-4000.00", paid[("apprentice_employee", year2)]["payout_id"])]
    assert not [r for r in lines if r["reference"] == year2.replace("#2", "#1")]  # year 1 stands on its own
