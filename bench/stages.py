"""One measured sync: runs the pipeline's stages in this process and prints one JSON line.

Runs the CLI's night (pipeline.run). Per stage: wall seconds, the RSS it started from and its own peak RSS
(MiB): on Linux the kernel's high-water mark (VmHWM) is reset as each stage starts, so the figure is what that
stage alone reached in this process; pool workers are separate processes, children_peak_rss_mib is the
largest of them so far. The night's peak is the largest of these.
Used by bench/run.py; not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import time
from pathlib import Path

STATUS = Path("/proc/self/status")


def _reset_peak() -> None:
    """Start the kernel's count of this process's peak RSS again (Linux 4.0+; elsewhere nothing)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _status_mib(field: str) -> float | None:
    """A /proc/self/status figure (kB) in MiB, or None off Linux."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


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
    stages = []
    start_rss = [_status_mib("VmRSS")]
    _reset_peak()

    def on_stage(name: str, result: dict, seconds: float) -> None:
        # the stage's own peak, then the count starts again for the next stage (pipeline.run has released the
        # work this stage spent, as the CLI's night does)
        stages.append({"stage": name, "seconds": round(seconds, 3), "start_rss_mib": start_rss[-1],
                       "peak_rss_mib": _status_mib("VmHWM"),
                       "children_peak_rss_mib": round(
                           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)})
        start_rss.append(_status_mib("VmRSS"))
        _reset_peak()

    results = pipeline.run(cfg, on_stage=on_stage)  # the CLI's night: its stages, clean-up and lock
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
