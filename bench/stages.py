"""One measured sync: runs the pipeline's stages in this process and prints one JSON line.

Per stage: wall seconds and the process's peak RSS so far (MiB). Used by bench/run.py; not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def main() -> None:
    """Parse arguments, run every stage, print the measurements as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("--sources", required=True)
    p.add_argument("--as-of", required=True)
    p.add_argument("--warehouse", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--profile", default=None, help="write a pyinstrument text profile here")
    a = p.parse_args()
    started = time.perf_counter()
    from subsidy_ledger import pipeline

    imported = time.perf_counter() - started
    cfg = pipeline.RunConfig(sources=a.sources, as_of=a.as_of, warehouse=a.warehouse, out=a.out,
                             run_id=f"bench__{a.as_of}")
    profiler = None
    if a.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    stages, results = [], {}
    for name, fn in pipeline.STAGES:
        t0 = time.perf_counter()
        results[name] = fn(cfg)
        stages.append({"stage": name, "seconds": round(time.perf_counter() - t0, 3),
                       "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    if profiler:
        profiler.stop()
        with open(a.profile, "w") as fh:
            fh.write(profiler.output_text(unicode=False, color=False, show_all=False))
    rec = results["validate"]["reconciliation"].values()
    print(json.dumps({
        "import_seconds": round(imported, 3), "stages": stages, "rows_in": sum(r["rows_in"] for r in rec),
        "mode": results["validate"].get("mode", "full"), "gx_rows_checked": results["validate"]["gx_rows_checked"],
        "posted": results["post"]["posted"], "publicised": results["post"].get("publicised", 0),
        "instructed": results["pay"]["instructed"], "partitions": results["eligibility"].get("partitions", 1),
        "partition_seconds": {"eligibility": results["eligibility"].get("partition_seconds", []),
                              **results["decide"].get("partition_seconds", {})},
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
