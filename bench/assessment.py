"""What A1's assessment costs a night: one generated drop, two nights (publicity, then payment) through the CLI,
then the assessment's two parts timed alone on the second night's staged rows.

    .venv/bin/python bench/assessment.py --persons 200000

Prints a JSON line and writes bench/results/assessment_<persons>.json; copies the night's chart of person-times
against target to docs/images/assessment_person_times.png. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NIGHTS = ("2022-06-30", "2022-07-08")


def main() -> None:
    """Run the nights, time the assessment alone, write the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import sqlalchemy as sa
    from subsidy_ledger import assessment, assessment_report, export, pipeline, warehouse
    from subsidy_ledger.generate import generate
    from subsidy_ledger.policy import PolicyBook

    tmp = Path(tempfile.mkdtemp(prefix="bench_a1_"))
    generate(args.persons, 1, tmp / "drop")
    url = f"sqlite:///{tmp / 'w.sqlite'}"
    walls, stages = {}, {}
    for night in NIGHTS:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "subsidy_ledger.cli", "run", "--sources", str(tmp / "drop"),
                               "--as-of", night, "--warehouse", url, "--out", str(tmp / "out")], check=True,
                              capture_output=True, text=True)
        walls[night] = time.perf_counter() - t0
        # the CLI's stage lines: "<stage>  <seconds>s  <what it did>"
        stages[night] = {p[0]: float(p[1].rstrip("s")) for p in (line.split() for line in done.stdout.splitlines())
                         if len(p) > 1 and p[1].endswith("s") and p[1][:-1].replace(".", "").isdigit()}
    night = dt.date.fromisoformat(NIGHTS[-1])
    book = PolicyBook.load()
    engine = warehouse.connect(url)
    with engine.connect() as conn:
        run = conn.execute(sa.select(warehouse.runs.c.run_id).where(warehouse.runs.c.as_of == night)).scalar()
        stg = pipeline.load_staging(conn, run)
        decisions = pipeline._decisions(conn, run)
        lines, _ = pipeline.payment_view(conn, night)
    engine.dispose()
    assess_s, write_s = [], []
    for i in range(args.repeat):
        t0 = time.perf_counter()
        report = assessment.assess(stg, decisions, lines, book.targets, night, "HRSS")
        assess_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assessment_report.write(tmp / f"a{i}", report, export.write_csv)
        write_s.append(time.perf_counter() - t0)
    # the first write pays matplotlib's import and the font's first load, as a night does once
    cost = min(assess_s) + write_s[0]
    result = {"persons": args.persons, "night_wall_s": {k: round(v, 2) for k, v in walls.items()},
              "stages_s": stages,
              "assess_s": [round(v, 3) for v in assess_s], "report_write_s": [round(v, 3) for v in write_s],
              "overhead_share": round(cost / (walls[NIGHTS[-1]] - cost), 4), "behind_plan": len(report.views["behind"])}
    print(json.dumps(result))
    (REPO / "bench" / "results" / f"assessment_{args.persons}.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.copy(tmp / "out" / NIGHTS[-1] / "assessment" / "person_times_by_year.png",
                REPO / "docs" / "images" / "assessment_person_times.png")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
