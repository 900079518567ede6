"""Benchmark harness: generated drops at district and province scale, and a next night with 1 % changed.

    .venv/bin/python bench/run.py            # 100k, 200k and 1M persons (about 10 minutes on 2 cores)
    .venv/bin/python bench/run.py --sizes 100000 200000 --no-pg
    .venv/bin/python bench/run.py --sizes 200000 1000000 --no-pg --no-profile --partitions 4 --partition-workers 2

Writes bench/results/results.json, bench/results/time_vs_size.png, bench/results/profile_200000.txt and
the generated tables of docs/benchmarks.md (between its BEGIN/END markers). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"
PY = sys.executable
AS_OF = "2022-06-30"
NEXT_DAY = "2022-07-08"  # the first night after AS_OF's publicity (P1): it posts and instructs the bank
PARTITIONING: dict[str, int | None] = {}  # SUBSIDY_LEDGER_PARTITIONS / _PARTITION_WORKERS of the measured runs
PG_ADMIN = os.environ.get("SUBSIDY_LEDGER_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _cli(*args: str) -> None:
    subprocess.run([PY, "-m", "subsidy_ledger.cli", *args], check=True, stdout=subprocess.DEVNULL)


def _measure(sources: Path, as_of: str, warehouse: str, out: Path, profile: Path | None = None,
             gates_open: bool = False) -> dict:
    """One sync in a fresh process: stage timings from inside, wall time and peak RSS from outside."""
    cmd = [PY, str(REPO / "bench" / "stages.py"), "--sources", str(sources), "--as-of", as_of,
           "--warehouse", warehouse, "--out", str(out)]
    cmd += ["--profile", str(profile)] if profile else []
    env = dict(os.environ, SUBSIDY_LEDGER_DATA_DOCS=os.environ.get("SUBSIDY_LEDGER_DATA_DOCS", "1"))
    env |= {k: str(v) for k, v in PARTITIONING.items() if v}
    if gates_open:  # a generated 1 % change is a real change: let the gates pass it, as an operator would
        env |= {"SUBSIDY_LEDGER_MAX_ROW_LOSS_SHARE": "1", "SUBSIDY_LEDGER_MAX_REVERSAL_SHARE": "1",
                "SUBSIDY_LEDGER_MAX_REVERSAL_AMOUNT": "1000000000000"}
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed: {proc.stderr[-2000:]}")
    result = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    result["wall_seconds"] = round(wall, 2)
    # stages.py resets the kernel's high-water mark at every stage, so the night's peak is the largest of the
    # stages' own peaks, the pool workers' and what time(1) saw at the end
    outside = int(proc.stderr.strip().splitlines()[-1]) / 1024
    result["peak_rss_mib"] = round(max([outside] + [s[k] or 0 for s in result["stages"]
                                                    for k in ("peak_rss_mib", "children_peak_rss_mib")]), 1)
    return result


def _drop(work: Path, persons: int) -> Path:
    path = work / f"drop_{persons}"
    if not (path / "certificates.csv").exists():
        _cli("generate", "--persons", str(persons), "--seed", "1", "--out", str(path))
    return path


def _pg_database() -> tuple[str, callable]:
    import sqlalchemy as sa

    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def run(sizes: list[int], work: Path, pg: bool, profile: bool, next_night: bool = True) -> dict:
    """Every measurement; returns the results document."""
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "platform": platform.platform(), "date": dt.date.today().isoformat()},
                 "partitioning": dict(PARTITIONING),
                 "full": {}, "postgres": None, "next_night": None}
    for n in sizes:
        drop = _drop(work, n)
        wh = work / f"w_{n}.sqlite"
        wh.unlink(missing_ok=True)
        shutil.rmtree(work / f"out_{n}", ignore_errors=True)
        out["full"][str(n)] = _measure(drop, AS_OF, f"sqlite:///{wh}", work / f"out_{n}")
        print(f"{n:>9} persons: {out['full'][str(n)]['wall_seconds']} s", flush=True)
        if profile and n == 200_000:  # a separate run: the profiler's overhead stays out of the figures
            prof_wh = work / "w_profile.sqlite"
            prof_wh.unlink(missing_ok=True)
            _measure(drop, AS_OF, f"sqlite:///{prof_wh}", work / "out_profile", profile=RESULTS / f"profile_{n}.txt")
    base = 200_000 if 200_000 in sizes else sizes[0]
    drop = _drop(work, base)
    if pg:
        url, drop_db = _pg_database()
        try:
            out["postgres"] = {"persons": base, **_measure(drop, AS_OF, url, work / "out_pg")}
        finally:
            drop_db()
        print(f"PostgreSQL {base}: {out['postgres']['wall_seconds']} s", flush=True)
    if not next_night:
        return out
    changed = work / f"drop_{base}_1pct"
    if not (changed / "certificates.csv").exists():
        _cli("change", "--sources", str(drop), "--out", str(changed), "--share", "0.01", "--seed", "2")
    wh = work / f"w_{base}_next.sqlite"
    shutil.copy(work / f"w_{base}.sqlite", wh)
    nxt = _measure(changed, NEXT_DAY, f"sqlite:///{wh}", work / "out_next", gates_open=True)
    out["next_night"] = {"persons": base, "changed_share": 0.01, **nxt}
    print(f"next night, 1 % changed: {nxt['wall_seconds']} s")
    return out


def _chart(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(k) for k in res["full"])
    stages = [s["stage"] for s in res["full"][str(sizes[0])]["stages"]]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    per_stage = [[next(s["seconds"] for s in res["full"][str(n)]["stages"] if s["stage"] == st) for n in sizes]
                 for st in stages]
    ax.stackplot(sizes, per_stage, labels=stages, alpha=0.85)
    ax.plot(sizes, [res["full"][str(n)]["wall_seconds"] for n in sizes], "k.-", label="wall (with start-up)")
    ax.plot([0, sizes[-1]], [0, res["full"][str(sizes[0])]["wall_seconds"] / sizes[0] * sizes[-1]], "k:",
            label=f"linear from {sizes[0]:,}")
    ax.set_xlim(0, sizes[-1] * 1.02)
    ax.set_xlabel("persons in the drop")
    ax.set_ylabel("seconds")
    ax.set_title("subsidy-ledger run: time by stage and size (2 cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _tables(res: dict) -> str:
    names = [s["stage"] for s in next(iter(res["full"].values()))["stages"]]
    per_stage = "| persons | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
    lines = ["| persons | rows in | wall s | rows/s | peak RSS MiB | " +
             " | ".join(names) + " | GX share | K "
             "| rules s (floor) | s per partition |",
             "|---|---|---|---|---|" + "---|" * len(names) + "---|---|---|---|"]
    for n, r in sorted(res["full"].items(), key=lambda kv: int(kv[0])):
        total = sum(s["seconds"] for s in r["stages"])
        gx = next(s["seconds"] for s in r["stages"] if s["stage"] == "validate")
        lines.append(f"| {int(n):,} | {r['rows_in']:,} | {r['wall_seconds']} | {r['rows_in'] / r['wall_seconds']:,.0f} "
                     f"| {r['peak_rss_mib']:,.0f} | " + " | ".join(f"{s['seconds']:.1f}" for s in r["stages"])
                     + f" | {gx / r['wall_seconds']:.0%} | {r.get('partitions', 1)} | {_floor(r):.1f} | "
                     + "; ".join(f"{k} " + ", ".join(f"{x:.1f}" for x in v)
                                 for k, v in r.get("partition_seconds", {}).items()) + " |")
    lines += ["", "Share of the stages' time, per size:", "", per_stage]
    for n, r in sorted(res["full"].items(), key=lambda kv: int(kv[0])):
        total = sum(s["seconds"] for s in r["stages"])
        lines.append(f"| {int(n):,} | " + " | ".join(f"{s['seconds'] / total:.0%}" for s in r["stages"]) + " |")
    if all(s.get("start_rss_mib") is not None for r in res["full"].values() for s in r["stages"]):
        own = all(r.get("stage_processes") for r in res["full"].values())
        lines += ["", "Peak RSS per stage, MiB: " + (
            "the peak of the process the stage ran in, each stage in one of its own as in the CLI's night (the "
            "night's own process's RSS as the stage started in brackets; the two share the imported pages)"
            if own else "the stage's own peak in the night's process (the RSS it started from in brackets)")
            + "; the pools' processes are counted in the night's peak above:", "", per_stage]
        for n, r in sorted(res["full"].items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {int(n):,} | " + " | ".join(f"{s['peak_rss_mib']:,.0f} ({s['start_rss_mib']:,.0f})"
                                                         for s in r["stages"]) + " |")
    if res.get("postgres"):
        p = res["postgres"]
        lines += ["", f"PostgreSQL warehouse, {p['persons']:,} persons: wall {p['wall_seconds']} s, peak RSS "
                      f"{p['peak_rss_mib']:,.0f} MiB; stages " +
                  ", ".join(f"{s['stage']} {s['seconds']:.1f} s" for s in p["stages"]) + "."]
    nxt = res.get("next_night")
    if nxt:
        lines += ["", f"Next night, the first after the publicity, with 1 % of every registry's rows changed "
                      f"({nxt['persons']:,} persons, every night does the full work): "
                      f"wall {nxt['wall_seconds']} s; stages " +
                  ", ".join(f"{s['stage']} {s['seconds']:.1f} s" for s in nxt["stages"]) + "."]
    return "\n".join(lines)


def _floor(r: dict) -> float:
    """The rules alone: the partitions' own seconds (eligibility joins, R7, R1-R6 with holds and objections),
    without reading, validating, storing or exporting; summed over partitions, as on one core."""
    return sum(sum(v) for v in r.get("partition_seconds", {}).values())


def write_docs(res: dict) -> None:
    """Replace the generated part of docs/benchmarks.md."""
    text = DOC.read_text("utf-8") if DOC.exists() else "<!-- BEGIN GENERATED -->\n<!-- END GENERATED -->\n"
    head, rest = text.split("<!-- BEGIN GENERATED -->", 1)
    tail = rest.split("<!-- END GENERATED -->", 1)[1]
    m = res["machine"]
    body = (f"\nMeasured by `bench/run.py` on {m['date']}: {m['cpus']} CPUs, Python {m['python']}, "
            f"{m['platform']}. Partitioning: "
            + (", ".join(f"{k.removeprefix('SUBSIDY_LEDGER_')}={v}" for k, v in res.get("partitioning", {}).items()
                         if v) or "by size (one partition per 250,000 persons), one process per core")
            + ".\n\n" + _tables(res) + "\n\n![time against size](../bench/results/time_vs_size.png)\n\n")
    DOC.write_text(head + "<!-- BEGIN GENERATED -->" + body + "<!-- END GENERATED -->" + tail, "utf-8")


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000, 1_000_000])
    p.add_argument("--work", type=Path, default=Path("/tmp/subsidy-ledger-bench"))
    p.add_argument("--no-pg", action="store_true")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--report-only", action="store_true", help="redraw chart and tables from results.json")
    p.add_argument("--no-next", action="store_true", help="skip the next night with 1 %% changed")
    p.add_argument("--partitions", type=int, default=None, help="K of every measured run (default: by size)")
    p.add_argument("--partition-workers", type=int, default=None, help="processes for the partitions")
    a = p.parse_args()
    PARTITIONING.update({"SUBSIDY_LEDGER_PARTITIONS": a.partitions,
                         "SUBSIDY_LEDGER_PARTITION_WORKERS": a.partition_workers})
    RESULTS.mkdir(parents=True, exist_ok=True)
    if a.report_only:
        res = json.loads((RESULTS / "results.json").read_text())
    else:
        res = run(sorted(a.sizes), a.work, not a.no_pg, not a.no_profile, not a.no_next)
    (RESULTS / "results.json").write_text(json.dumps(res, indent=1))
    _chart(res, RESULTS / "time_vs_size.png")
    write_docs(res)
    print(f"wrote {RESULTS / 'results.json'}, {RESULTS / 'time_vs_size.png'} and {DOC}")


if __name__ == "__main__":
    main()
