"""kill -9 at many moments of a nightly run: a re-run must end with exactly the ledger of a clean run."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import time

import pytest
import sqlalchemy as sa
from subsidy_ledger import pipeline, warehouse
from subsidy_ledger.faults import CRASH_ENV
from subsidy_ledger.generate import change, generate

from tests.clones import clone_warehouse

pytestmark = pytest.mark.usefixtures("relaxed_gates")  # edited drops: the gates are tested elsewhere

# before the crash night (P1-P3): drop a publicised, then posted and instructed after its publicity. The
# crash night (drop b) reverses what b revoked, posts the claims whose publicity ended since, and instructs
# the bank for them.
BEFORE = (("a", "2021-06-10"), ("a", "2021-06-21"))
NIGHT2 = "2021-06-30"
NAMED_POINTS = ["before:extract", "before:validate", "validate:staged:social_insurance",
                "validate:staged:subsidy_catalog", "before:eligibility", "before:decide", "before:post",
                "post:inserted", "before:pay", "pay:inserted", "before:export", "export:written"]
TIMED_FRACTIONS = [0.15, 0.3, 0.45, 0.6, 0.75, 0.9]


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    generate(400, 21, root / "a")
    change(root / "a", root / "b", 0.05, 3)
    # the nights once in this process on a scratch warehouse, so that the forked runs below inherit GX's
    # verdicts on these drops (conftest) instead of paying GX's seconds in each of their ~80 nights
    for drop, night in (*BEFORE, ("b", NIGHT2)):
        pipeline.run(pipeline.RunConfig(
            sources=str(root / drop), as_of=night, warehouse=f"sqlite:///{root / 'warm.sqlite'}",
            out=str(root / "warm"), run_id=f"warm__{night}", work_dir=str(root / "work"), data_docs=False,
            max_quarantine_share=1, max_row_loss_share=1, max_reversal_share=1, max_reversal_fen=10**15))
    return root


def _cfg(drop, as_of, url, out) -> pipeline.RunConfig:
    return pipeline.RunConfig(sources=str(drop), as_of=as_of, warehouse=url, out=str(out), run_id=f"cli__{as_of}")


def _child(cfg: pipeline.RunConfig, crash_at: str | None) -> None:
    if crash_at:
        os.environ[CRASH_ENV] = crash_at
    pipeline.run(cfg)
    os._exit(0)


def _run(cfg, crash_at=None, kill_after=None) -> int:
    """Run the pipeline in a forked process; kill -9 it at a named point or after some seconds."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(cfg, crash_at))
    proc.start()
    if kill_after is not None:
        proc.join(kill_after)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    return proc.exitcode


def _ledger(url) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(sa.select(warehouse.ledger_lines).order_by(warehouse.ledger_lines.c.seq)).all()
    engine.dispose()
    return [tuple(r)[1:] for r in rows]  # all but seq, which a rolled-back attempt may have consumed


def _instructions(url) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        t = warehouse.payment_instructions
        rows = c.execute(sa.select(t.c.instruction_id, t.c.payout_id, t.c.account_no, t.c.amount_fen)
                         .order_by(t.c.instruction_id)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_kill_9_at_every_point_then_rerun_gives_the_clean_ledger(drops, warehouse_url, tmp_path):
    night1_out = tmp_path / "night1"
    for drop, night in BEFORE:
        assert _run(_cfg(drops / drop, night, warehouse_url, night1_out)) == 0
    ref_url, drop_ref = clone_warehouse(warehouse_url, "ref")
    try:
        started = time.perf_counter()
        assert _run(_cfg(drops / "b", NIGHT2, ref_url, tmp_path / "ref")) == 0
        night2_seconds = time.perf_counter() - started
        ref_ledger, ref_extracts = _ledger(ref_url), _digest(tmp_path / "ref" / NIGHT2)
        ref_instructions = _instructions(ref_url)
        ref_bank = _digest(tmp_path / "ref" / "payments" / NIGHT2)
    finally:
        drop_ref()
    tonight = [line for line in ref_ledger if str(line[3]) == NIGHT2]
    assert {"payout", "reversal"} <= {line[1] for line in tonight}, "the crash night should post and correct"
    assert ref_bank, "night 2 should instruct the bank"
    points = [(p, None) for p in NAMED_POINTS] + [(None, f) for f in TIMED_FRACTIONS]
    killed = 0
    for i, (point, fraction) in enumerate(points):
        # a timed kill that came too late (the reference night ran while the other worker was busy) is tried
        # once more with the missed night's own duration, the better measure of the machine's speed now
        for attempt in range(2 if fraction else 1):
            after = night2_seconds * fraction if fraction else None
            url, drop = clone_warehouse(warehouse_url, f"k{i}_{attempt}")
            try:
                out = tmp_path / f"k{i}_{attempt}"
                started = time.perf_counter()
                code = _run(_cfg(drops / "b", NIGHT2, url, out), crash_at=point, kill_after=after)
                if fraction and code == 0:
                    night2_seconds = time.perf_counter() - started
                if point:
                    assert code == -signal.SIGKILL, f"{point} was never reached"
                assert _run(_cfg(drops / "b", NIGHT2, url, out)) == 0  # the re-run after the crash
                assert _ledger(url) == ref_ledger, f"ledger differs after a kill at {point or f'{after:.2f}s'}"
                assert _digest(out / NIGHT2) == ref_extracts, f"extracts differ after a kill at {point or after}"
                # the payment step: all of the night's instructions or none, then the re-run issues the rest once
                assert _instructions(url) == ref_instructions, f"instructions differ after a kill at {point or after}"
                assert _digest(out / "payments" / NIGHT2) == ref_bank, f"bank files differ after {point or after}"
            finally:
                drop()
            if code == -signal.SIGKILL:
                killed += 1
                break
    assert killed >= len(NAMED_POINTS) + len(TIMED_FRACTIONS) // 2
