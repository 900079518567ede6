"""A1 end to end on both warehouses: the night's report agrees with an independent SQL count over the staged
registries, the files under <out>/<as-of>/assessment/ are complete, and bad annual plans are quarantined."""

from __future__ import annotations

import base64
import datetime as dt
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from subsidy_ledger import assessment_report, labels, pipeline, warehouse
from subsidy_ledger.assessment import Assessment
from subsidy_ledger.cli import main

AS_OF = "2021-06-30"

CLASSES_SQL = """
SELECT CAST(SUBSTR(CAST(c.end_date AS VARCHAR(10)), 1, 4) AS INTEGER) AS year, c.department_code, c.town_code,
       COUNT(*) AS n
FROM stg_class_enrollments e JOIN stg_training_classes c ON c.class_id = e.class_id AND c.run_id = e.run_id
WHERE e.run_id = :run AND CAST(c.end_date AS VARCHAR(10)) <= :as_of
GROUP BY CAST(SUBSTR(CAST(c.end_date AS VARCHAR(10)), 1, 4) AS INTEGER), c.department_code, c.town_code
"""
# An apprenticeship year k begins on the start date's anniversary: the year is start year + k, whatever the day.
APPRENTICES_SQL = """
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 15),
y AS (
  SELECT a.person_id, a.employer_credit_code, COALESCE(a.department_code, 'HRSS') AS dept,
         CAST(SUBSTR(CAST(a.start_date AS VARCHAR(10)), 1, 4) AS INTEGER) + k.n AS year,
         CAST(CAST(SUBSTR(CAST(a.start_date AS VARCHAR(10)), 1, 4) AS INTEGER) + k.n AS VARCHAR(4))
           || SUBSTR(CAST(a.start_date AS VARCHAR(10)), 5) AS began,
         CAST(a.end_date AS VARCHAR(10)) AS ends
  FROM stg_apprenticeships a CROSS JOIN k WHERE a.run_id = :run),
t AS (
  SELECT y.year, y.dept,
         (SELECT e.town_code FROM stg_social_insurance e
          WHERE e.run_id = :run AND e.person_id = y.person_id AND e.employer_credit_code = y.employer_credit_code
            AND CAST(e.start_date AS VARCHAR(10)) <= y.began
            AND (e.end_date IS NULL OR CAST(e.end_date AS VARCHAR(10)) >= y.began)
          ORDER BY e.start_date DESC, e.town_code IS NULL, e.town_code DESC LIMIT 1) AS town
  FROM y WHERE y.began <= :as_of AND (y.ends IS NULL OR y.began < y.ends))
SELECT year, dept, town, COUNT(*) AS n FROM t GROUP BY year, dept, town
"""
EMPLOYED = """SELECT DISTINCT person_id FROM stg_social_insurance WHERE run_id = :run
  AND CAST(start_date AS VARCHAR(10)) <= :day AND (end_date IS NULL OR CAST(end_date AS VARCHAR(10)) >= :day)"""
HOLDING = """SELECT COUNT(*) FROM ({employed}) emp WHERE EXISTS (SELECT 1 FROM stg_certificates c
  WHERE c.run_id = :run AND c.person_id = emp.person_id AND c.status = 'valid'
    AND CAST(c.issued_on AS VARCHAR(10)) <= :day {levels})"""


def _sql_person_times(conn, run: str) -> dict:
    got: dict = {}
    for sql in (CLASSES_SQL, APPRENTICES_SQL):
        for year, dept, town, n in conn.execute(sa.text(sql), {"run": run, "as_of": AS_OF}):
            key = (int(year), dept, town)
            got[key] = got.get(key, 0) + int(n)
    return got


def _sql_shares(conn, run: str, day: str) -> tuple[int, int, int]:
    p = {"run": run, "day": day}
    employed = conn.execute(sa.text(f"SELECT COUNT(*) FROM ({EMPLOYED}) emp"), p).scalar()
    skilled = conn.execute(sa.text(HOLDING.format(employed=EMPLOYED, levels="")), p).scalar()
    high = conn.execute(sa.text(HOLDING.format(employed=EMPLOYED, levels="AND c.level IN (1, 2, 3)")), p).scalar()
    return int(employed), int(skilled), int(high)


@pytest.fixture
def drop_with_bad_plans(small_drop, tmp_path):
    """The small drop, with three annual plans that break the registry's expectations."""
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    with open(drop / "annual_plans.csv", "a", encoding="gb18030", newline="") as fh:
        # a bad year, an unknown department, a negative count, and a second whole-department plan for VETS
        # in 2020 (the town empty on both: still the same key)
        fh.write("AGRI,,20x1,5,1.00\r\nNOSUCH,,2020,5,\r\nEDU,330503101,2020,-3,\r\nVETS,,2020,1,1.00\r\n")
    return drop


def test_report_agrees_with_an_independent_sql_count_on_both_warehouses(drop_with_bad_plans, warehouse_url,
                                                                         tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--sources", str(drop_with_bad_plans), "--as-of", AS_OF, "--warehouse", warehouse_url,
                 "--out", str(out)]) == 0
    engine = warehouse.connect(warehouse_url)
    with engine.connect() as conn:
        run = conn.execute(sa.select(warehouse.runs.c.run_id)).scalar()
        report = pipeline.load_assessment(conn, dt.date.fromisoformat(AS_OF))
        expected_pt = _sql_person_times(conn, run)
        shares = {day: _sql_shares(conn, run, day) for day in report.views["shares"]["on"]}
        q = pd.read_sql(sa.select(warehouse.quarantine).where(warehouse.quarantine.c.registry == "annual_plans"), conn)
        rec = pd.read_sql(sa.select(warehouse.reconciliation).where(
            warehouse.reconciliation.c.registry == "annual_plans"), conn).iloc[0]
    engine.dispose()

    pt = report.views["person_times"]
    got = pt.groupby(["year", "department_code", "town_code"], dropna=False)["person_times"].sum()
    assert {(int(y), d, t if isinstance(t, str) else None): int(n) for (y, d, t), n in got.items()} == expected_pt
    assert sum(expected_pt.values()) > 300  # the small drop has classes and apprentices in many towns
    s = report.views["shares"].set_index("on")
    assert list(s.index) == ["2018-12-31", "2019-12-31", "2020-12-31", AS_OF]
    for day, (employed, skilled, high) in shares.items():
        assert (s.loc[day, "employed"], s.loc[day, "skilled"], s.loc[day, "high_skilled"]) == (employed, skilled, high)
        assert s.loc[day, "skilled_share_units"] == skilled * 10_000 // employed
    assert s.loc[AS_OF, "employed"] > 500 and 0 < s.loc[AS_OF, "high_skilled"] < s.loc[AS_OF, "skilled"]

    # the bad plans are quarantined with their reasons; rows in = accepted + quarantined
    reasons = ";".join(q["reasons"])
    for reason in ("invalid_year", "unknown_department_code", "invalid_planned_person_times", "duplicate_key"):
        assert reason in reasons
    dup = q.loc[q["reasons"].str.contains("duplicate_key"), "record_key"]
    assert len(dup) == 2 and set(dup) == {"VETS++2020"}  # both rows of the key: which one is right is unknown
    assert rec["rows_in"] == rec["accepted"] + rec["quarantined"] and rec["quarantined"] >= 5

    # the generated plans are met by some and missed by others: the 通报 list is not trivially empty
    plans, behind = report.views["plans"], report.views["behind"]
    assert 0 < len(behind.loc[behind["measure"] == "person_times"]) < len(plans)
    _check_files(out / AS_OF / "assessment", report)


def _check_files(folder, report: Assessment) -> None:
    csv = pd.read_csv(folder / "behind_plan.csv", dtype=str, encoding="utf-8-sig")
    assert list(csv.columns) == assessment_report.BEHIND_COLUMNS and len(csv) == len(report.views["behind"])
    funds = csv.loc[csv["measure"] == "funds"]
    assert len(funds) and funds["shortfall"].str.fullmatch(r"\d+\.\d{2}").all()
    assert (csv["department_name"] == csv["department_code"].map(labels.load()["departments"])).all()
    wb = load_workbook(folder / "assessment.xlsx")
    titles = labels.load()["assessment_views"]
    assert wb.sheetnames == [titles[v] for v in assessment_report.SHEETS]
    ws = wb[titles["target"]]
    assert ws.cell(1, 3).value == "目标人次\ntarget_person_times" and ws.cell(2, 3).value == 30_000
    shares = wb[titles["shares"]]
    assert isinstance(shares.cell(2, 5).value, float) and shares.cell(2, 5).number_format == "0.00%"
    for stem in assessment_report.CHARTS:
        assert (folder / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (folder / "assessment.html").read_text("utf-8")
    assert page.count("data:image/png;base64,") == len(assessment_report.CHARTS)
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    png = base64.b64decode(page.split("data:image/png;base64,")[1].split('"')[0])
    assert png == (folder / "person_times_by_year.png").read_bytes()
    assert "三年目标 30,000 人次" in page and "通报" in page


def test_every_value_on_the_page_is_escaped():
    frame = pd.DataFrame({"year": [2020], "department_code": ["<img src=x onerror=alert(1)>"],
                          "town_code": ["&"], "person_times": [1]})
    html = assessment_report._table("towns", frame)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "<td class=\"\">&amp;</td>" in html
