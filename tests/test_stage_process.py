"""A stage in a process of its own (the CLI's night): its result, logs and errors come back as in one process."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from subsidy_ledger import pipeline, stage_process
from subsidy_ledger.extract import DropError
from subsidy_ledger.gate import DataQualityError

log = logging.getLogger("subsidy_ledger.test_stage")


def _rss_mib() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _answer(n: int) -> dict:
    log.warning("working on %d rows", n)
    return {"rows": n, "pid": os.getpid()}


def _hold(mib: int) -> int:
    block = np.ones(mib * 2**20 // 8)  # touched, so resident
    return int(block.sum())


def _fail(kind: str):
    if kind == "drop":
        raise DropError("certificates.csv", "missing required column(s) issued_on")
    if kind == "gate":
        raise DataQualityError("drop gate: certificates lost 50% of its rows")
    if kind == "odd":
        raise _Odd(1, 2)
    os.kill(os.getpid(), signal.SIGKILL)


class _Odd(Exception):
    def __init__(self, a, b):  # does not survive pickling: args are (message,), not (a, b)
        super().__init__(f"odd {a} {b}")


def test_the_result_and_the_log_records_come_back(caplog):
    peaks: dict = {}
    with caplog.at_level(logging.WARNING, logger="subsidy_ledger"):
        result = stage_process.alone(_answer, 7, what="stage answer", peaks=peaks, key="answer")
    assert result["rows"] == 7 and result["pid"] != os.getpid()
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("subsidy_ledger.test_stage", "working on 7 rows")]
    assert peaks["answer"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_what_the_stage_held_is_given_back_when_it_ends():
    peaks: dict = {}
    before = _rss_mib()
    stage_process.alone(_hold, 300, what="stage hold", peaks=peaks, key="hold")
    assert peaks["hold"] >= 300  # the stage's own process held the 300 MiB
    assert _rss_mib() < before + 50  # and this one never did


def test_errors_are_raised_here_with_their_type_and_parts():
    with pytest.raises(DropError) as exc:
        stage_process.alone(_fail, "drop", what="stage extract")
    assert (exc.value.filename, exc.value.problem) == ("certificates.csv", "missing required column(s) issued_on")
    assert "_fail" in str(exc.value.__cause__)  # the stage's own traceback, for --debug
    with pytest.raises(DataQualityError, match="drop gate: certificates lost 50%"):
        stage_process.alone(_fail, "gate", what="stage validate")
    with pytest.raises(RuntimeError, match="^_Odd: odd 1 2$"):
        stage_process.alone(_fail, "odd", what="stage odd")


def test_a_killed_stage_stops_the_night_with_one_line():
    with pytest.raises(stage_process.StageProcessError,
                       match=r"^stage post stopped: its process was ended by SIGKILL \(out of memory, or killed\)"):
        stage_process.alone(_fail, "kill", what="stage post")


def test_every_error_of_the_package_survives_the_crossing():
    import importlib
    import pkgutil

    import subsidy_ledger

    found = []
    for mod in pkgutil.iter_modules(subsidy_ledger.__path__):
        if mod.name in ("airflow_stage", "orchestration", "lineage_events"):  # need Airflow or OpenLineage
            continue
        module = importlib.import_module(f"subsidy_ledger.{mod.name}")
        found += [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, BaseException)
                  and v.__module__ == module.__name__]
    assert DropError in found and DataQualityError in found and pipeline.ExportError in found
    for cls in found:
        exc = cls("a.csv", "a problem") if cls is DropError else cls("one line")
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is cls and str(back) == str(exc)


def test_the_environment_chooses_unless_asked(monkeypatch):
    monkeypatch.delenv(stage_process.STAGE_PROCESSES_ENV, raising=False)
    assert stage_process.wanted() is True
    monkeypatch.setenv(stage_process.STAGE_PROCESSES_ENV, "0")
    assert stage_process.wanted() is False and stage_process.wanted(True) is True


def _log_turn(path: Path, key: str, fail: bool = False) -> None:
    with path.open("a") as fh:
        fh.write(f"start {key} {os.getpid()}\n")
    if fail:
        raise OSError(28, f"No space left on device staging {key}")
    with path.open("a") as fh:
        fh.write(f"end {key}\n")


def test_serial_jobs_run_one_at_a_time_in_order_beside_this_process(tmp_path):
    journal, done = tmp_path / "journal", []
    serial = stage_process.Serial(hold=10**9, done=done.append)
    for key in ("a", "b", "c"):
        serial.submit(key, _log_turn, journal, key, weight=5)
    serial.finish()
    lines = journal.read_text().splitlines()
    assert [x.split()[:2] for x in lines] == [["start", "a"], ["end", "a"], ["start", "b"], ["end", "b"],
                                              ["start", "c"], ["end", "c"]]
    assert done == ["a", "b", "c"] and all(int(x.split()[2]) != os.getpid() for x in lines if x.startswith("start"))
    inline = stage_process.Serial(hold=0, done=done.append, inline=True)
    inline.submit("d", _log_turn, journal, "d")
    assert journal.read_text().splitlines()[-2] == f"start d {os.getpid()}" and done[-1] == "d"


def test_a_serial_job_error_comes_back_and_the_rest_are_dropped(tmp_path):
    journal, done = tmp_path / "journal", []
    serial = stage_process.Serial(hold=10**9, done=done.append)
    with pytest.raises(OSError, match="staging a"):  # at the next submit, or at finish if a is still running
        serial.submit("a", _log_turn, journal, "a", True)
        serial.submit("b", _log_turn, journal, "b")
        serial.finish()
    serial.stop()
    assert done == [] and "start b" not in journal.read_text()
    assert not multiprocessing.active_children()


def test_the_forked_job_s_arguments_are_let_go_here(tmp_path):
    class Rows(list):
        pass

    rows = Rows(range(10))
    alive = weakref.ref(rows)
    job = stage_process.started(len, rows, what="count")
    del rows
    gc.collect()
    assert alive() is None  # only the child holds them now
    assert job.result() == 10
