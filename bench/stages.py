"""One measured sync: runs the pipeline's stages in this process and prints one JSON line.

Runs the CLI's night (pipeline.run). Per stage: wall seconds, the RSS it started from and its own peak RSS
(MiB): on Linux the kernel's high-water mark (VmHWM) is reset as each stage starts, so the figure is what that
stage alone reached in this process; pool workers are separate processes, children_peak_rss_mib is the
largest of them so far (sampled from /proc as well, so that a fork server's processes count). The night's peak is
the largest of these. As the CLI's night does (its default, $SUBSIDY_LEDGER_STAGE_PROCESSES), each stage runs
in a process of its own (stage_process.call; Airflow runs each task in one too); a stage's peak is then that
process's, and the RSS it started from is this process's. --no-stage-processes runs them all in this process.
Used by bench/run.py; not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import sys
import threading
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


class Descendants:
    """The largest resident memory seen in any process below this one, sampled every `every` seconds from
    /proc (Linux; elsewhere nothing). getrusage counts only the children this process waits for, not the
    processes a fork server starts (export's lean workbook processes are its grandchildren)."""

    def __init__(self, every: float = 0.25) -> None:
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def __enter__(self) -> Descendants:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self, every: float) -> None:
        me = os.getpid()
        while not self._stop.wait(every):
            parents, rss = {}, {}
            for d in Path("/proc").glob("[0-9]*"):
                with contextlib.suppress(OSError, ValueError, IndexError, KeyError):  # a kernel thread has no VmRSS
                    fields = dict(line.split(":", 1) for line in (d / "status").read_text().splitlines())
                    parents[int(d.name)] = int(fields["PPid"])
                    rss[int(d.name)] = int(fields["VmRSS"].split()[0]) / 1024
            for pid, mib in rss.items():
                up, seen = parents.get(pid), 0
                while up and up != me and seen < 64:
                    up, seen = parents.get(up), seen + 1
                if up == me:
                    self.peak_mib = max(self.peak_mib, round(mib, 1))


def main() -> None:
    """Parse arguments, run every stage, print the measurements as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("--sources", required=True)
    p.add_argument("--as-of", required=True)
    p.add_argument("--warehouse", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--profile", default=None,
                   help="write a pyinstrument text profile here (the stages then run in this process)")
    p.add_argument("--stage-processes", action=argparse.BooleanOptionalAction, default=None,
                   help="run each stage in a process of its own, as the CLI does (default "
                        "$SUBSIDY_LEDGER_STAGE_PROCESSES, else yes); its peak is that process's")
    a = p.parse_args()
    started = time.perf_counter()
    from subsidy_ledger import pipeline, stage_process

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

    own_peak: dict[str, float] = {}  # with --stage-processes: the peak of the process each stage ran in

    def on_stage(name: str, result: dict, seconds: float) -> None:
        # the stage's own peak, then the count starts again for the next stage (pipeline.run has released the
        # work this stage spent, as the CLI's night does)
        stages.append({"stage": name, "seconds": round(seconds, 3), "start_rss_mib": start_rss[-1],
                       "peak_rss_mib": own_peak.get(name, _status_mib("VmHWM")),
                       "children_peak_rss_mib": max(descendants.peak_mib, round(
                           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1))})
        # each stage as it ends, on stderr: a long night stopped on purpose (before:export) still tells its stages
        print(json.dumps(stages[-1]), file=sys.stderr, flush=True)
        start_rss.append(_status_mib("VmRSS"))
        _reset_peak()

    own = stage_process.wanted(a.stage_processes) and not a.profile  # the profiler sees this process only
    with Descendants() as descendants:
        # the CLI's night: its stages, clean-up and lock
        results = pipeline.run(cfg, on_stage=on_stage,
                               call=functools.partial(stage_process.call, peaks=own_peak) if own else None)
    if profiler:
        profiler.stop()
        with open(a.profile, "w") as fh:
            fh.write(profiler.output_text(unicode=False, color=False, show_all=False))
    rec = results["validate"]["reconciliation"].values()
    print(json.dumps({
        "import_seconds": round(imported, 3), "stage_processes": own, "stages": stages,
        "rows_in": sum(r["rows_in"] for r in rec),
        "mode": results["validate"].get("mode", "full"), "gx_rows_checked": results["validate"]["gx_rows_checked"],
        "posted": results["post"]["posted"], "publicised": results["post"].get("publicised", 0),
        "instructed": results["pay"]["instructed"], "partitions": results["eligibility"].get("partitions", 1),
        "partition_seconds": {"eligibility": results["eligibility"].get("partition_seconds", []),
                              **results["decide"].get("partition_seconds", {})},
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
