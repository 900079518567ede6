"""A stage of the night in a process of its own, as Airflow runs each task: the CLI's night uses it.

A process gives back all it held when it ends, so each stage starts from the imports alone instead of from
what the stages before it left behind (at 1,000,000 persons, 2.7 GiB in one process against 1.9 GiB in the
largest of the stages' processes, docs/benchmarks.md). The process is forked, so it has this process's
environment, working folder and logging set-up; its log records are handled here as if it had logged them
here, its result comes back here and so does its error, of the same type, for the caller to report as it
would in one process. Serial runs jobs of a stage the same way, one at a time beside it (validate's staging).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import os
import pickle
import queue as queues
import resource
import signal
import traceback
from collections.abc import Callable
from pathlib import Path

from .partition import forked_child

STAGE_PROCESSES_ENV = "SUBSIDY_LEDGER_STAGE_PROCESSES"  # 0: the CLI runs the whole night in one process
POLL_S = 0.25  # how often the parent looks whether a silent child has died
DRAIN_S = 5.0  # how long what a finished child sent may take to arrive


class StageProcessError(RuntimeError):
    """A stage's process ended without an answer: killed (out of memory, kill -9) or exited on its own."""


class RemoteTraceback(Exception):
    """The traceback of an error raised in a stage's process (shown as the cause of the error raised here)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


def wanted(requested: bool | None = None) -> bool:
    """Whether the night's stages run in processes of their own: as requested, else $SUBSIDY_LEDGER_STAGE_PROCESSES
    (default yes)."""
    if requested is not None:
        return requested
    return os.environ.get(STAGE_PROCESSES_ENV, "1").strip() not in ("0", "false", "no", "")


def call(name: str, cfg, peaks: dict | None = None) -> dict:
    """Run stage `name` of the night in a process of its own; its result (pipeline.run's `call`). peaks, if
    given, gets the process's peak resident memory in MiB under the stage's name."""
    from . import pipeline

    return alone(dict(pipeline.STAGES)[name], cfg, what=f"stage {name}", peaks=peaks, key=name)


def alone(fn: Callable, *args, what: str, peaks: dict | None = None, key: str | None = None):
    """fn(*args) in a forked process; its result, or its error raised here."""
    return started(fn, *args, what=what).result(peaks, key)


def started(fn: Callable, *args, what: str) -> Running:
    """fn(*args) started in a forked process, going on beside this one until its result() is asked for."""
    return Running(fn, args, what)


class Serial:
    """Jobs run one after another, each in a forked process beside this one (or here, inline=True). submit()
    queues a job and returns at once unless the queued jobs' weight (say, rows held here for them) is above
    `hold`; done(key) is called here as each job ends, in order; finish() waits for all, stop() ends them."""

    def __init__(self, hold: int, done: Callable[[str], None] = lambda key: None, inline: bool = False,
                 what: str = "job") -> None:
        self.hold, self.done, self.inline, self.what = hold, done, inline, what
        self.queued: list[tuple[str, Callable, tuple, int]] = []
        self.running: tuple[str, Running] | None = None

    def submit(self, key: str, fn: Callable, *args, weight: int = 0) -> None:
        """Queue fn(*args) under key; wait while the queue weighs more than `hold`."""
        if self.inline:
            fn(*args)
            self.done(key)
            return
        self.queued.append((key, fn, args, weight))
        self._advance(wait=False)
        while sum(w for *_, w in self.queued) > self.hold:
            self._advance(wait=True)

    def finish(self) -> None:
        """Wait for every job; the first error raises here."""
        while self.running or self.queued:
            self._advance(wait=True)

    def stop(self) -> None:
        """Drop the queued jobs and end the running one unfinished."""
        self.queued.clear()
        if self.running:
            self.running[1].stop()
            self.running = None

    def _advance(self, wait: bool) -> None:
        if self.running and (wait or self.running[1].finished()):
            key, job = self.running
            self.running = None
            job.result()
            self.done(key)
        if self.running is None and self.queued:
            key, fn, args, _ = self.queued.pop(0)
            self.running = key, started(fn, *args, what=f"{self.what} {key}")


class Running:
    """A function running in a forked process: result() waits for it; stop() ends it unfinished."""

    def __init__(self, fn: Callable, args: tuple, what: str) -> None:
        context = multiprocessing.get_context("fork")
        self.what = what
        self.channel = context.Queue()
        # Process.start lets go of its arguments once forked: only the child holds them then (rows to stage)
        self.child = context.Process(target=_child, args=(fn, args, self.channel, os.getpid()),
                                     name=f"subsidy-ledger {what}")
        self.child.start()

    def finished(self) -> bool:
        """Whether its process has ended (its result is then waiting)."""
        return not self.child.is_alive()

    def result(self, peaks: dict | None = None, key: str | None = None):
        """Its result, or its error raised here; peaks, if given, gets its peak memory in MiB under key."""
        try:
            while True:
                try:
                    message = self.channel.get(timeout=POLL_S if self.child.is_alive() else DRAIN_S)
                except queues.Empty:
                    if self.child.is_alive():
                        continue
                    self.child.join()
                    raise StageProcessError(_ended(self.what, self.child.exitcode)) from None
                if isinstance(message, logging.LogRecord):
                    logging.getLogger(message.name).handle(message)
                    continue
                kind, blob, peak_mib, remote = message
                if peaks is not None:
                    peaks[key or self.what] = peak_mib
                if kind == "result":
                    return pickle.loads(blob)
                raise pickle.loads(blob) from RemoteTraceback(remote)
        finally:
            self.stop()

    def stop(self) -> None:
        """Let it finish what it sent (a moment), else end it: it must not go on without this process."""
        self.child.join(DRAIN_S)
        if self.child.is_alive():
            self.child.terminate()
            self.child.join()
        self.channel.close()


def _ended(what: str, code: int | None) -> str:
    """One line on how a child ended without sending an answer."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory, or killed)" if -code == signal.SIGKILL else ""
        return f"{what} stopped: its process was ended by {name}{hint}; nothing of it was kept"
    return f"{what} stopped: its process exited with code {code} without an answer; nothing of it was kept"


def _child(fn: Callable, args: tuple, channel, parent: int) -> None:
    """In the forked process: send log records and then the result (or the error) to the parent. It dies with
    the parent: a night killed with -9 leaves no stage going on alone (its pools' workers then die with it)."""
    forked_child(parent)
    root = logging.getLogger()
    for handler in list(root.handlers):  # the parent's handlers handle what this process logs
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(channel))
    try:
        message = ("result", pickle.dumps(fn(*args)), _peak_mib(), "")
    except BaseException as exc:  # noqa: BLE001 - every error goes to the parent, which raises it
        message = ("error", _portable(exc), _peak_mib(), traceback.format_exc())
    channel.put(message)
    channel.close()
    channel.join_thread()  # sent before this process ends


def _portable(exc: BaseException) -> bytes:
    """The error pickled so that the parent can raise it as it is; an error that does not survive pickling
    goes as a RuntimeError naming its type and message."""
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
        return blob
    except Exception:  # noqa: BLE001 - any failure to pickle or unpickle
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _peak_mib() -> float:
    """The peak resident memory of this process (VmHWM on Linux) or of the largest process it waited for (its
    pools), in MiB."""
    own_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with contextlib.suppress(OSError, ValueError, IndexError):
        own_kib = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                       if line.startswith("VmHWM:"))
    return round(max(own_kib, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1)
