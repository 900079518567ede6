"""The run record: one row per night in `runs`, moved only by the transitions checked here, each of them
appended to `run_transitions`, so that an operator or an auditor sees every step a night entered, every retry,
and where it stopped or failed.

A night is `running` in a step, `stopped` by a gate in a step, `failed` in a step, or `succeeded` (export wrote
its extracts). A stopped night goes on only by running its stopping step again (with the operator's acceptance)
or an earlier one: marking a stopped task done in Airflow does not let the next task pass the gate. A failed
step may be retried, or marked done by the operator; the failure stays in the transitions and the alerts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from . import steps, warehouse


class Status(StrEnum):
    """Where a night is."""

    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    SUCCEEDED = "succeeded"


class RunStateError(RuntimeError):
    """A step asked to move a night in a way its record does not allow (one line, for the operator)."""


FIRST, LAST = steps.STEPS[0].name, steps.STEPS[-1].name
_ORDER = {s.name: i for i, s in enumerate(steps.STEPS)}


@dataclass(frozen=True)
class Run:
    """A night's record as the warehouse holds it."""

    run_id: str
    status: Status
    stage: str | None
    mode: str | None = None


def check(run: Run | None, to: Status, stage: str) -> None:
    """Raise RunStateError unless a night in `run` (None: no record yet) may move to `to` in step `stage`."""
    if stage not in _ORDER:
        raise RunStateError(f"unknown step {stage!r}")
    if to is Status.FAILED:  # whatever failed is recorded, wherever the night was
        return
    if run is None:
        if to is Status.RUNNING and stage == FIRST:
            return
        raise RunStateError(f"no record of this run: a night starts at {FIRST}")
    if to is Status.RUNNING:
        if stage == FIRST or run.status is not Status.STOPPED or _ORDER[stage] <= _ORDER[run.stage]:
            return
        raise RunStateError(f"run {run.run_id} was stopped by a gate at {run.stage}: run {run.stage} again "
                            f"(accepting the finding) or the night from the start before {stage}")
    if run.status is not Status.RUNNING or run.stage != stage:
        raise RunStateError(f"run {run.run_id} is {run.status} at {run.stage}: it cannot be {to} at {stage}")
    if to is Status.SUCCEEDED and stage != LAST:
        raise RunStateError(f"a night succeeds only at {LAST}, not at {stage}")


def load(conn, run_id: str) -> Run | None:
    """The night's record (None: the run was never started)."""
    r = warehouse.runs
    row = conn.execute(sa.select(r.c.run_id, r.c.status, r.c.stage, r.c.mode).where(r.c.run_id == run_id)).first()
    return Run(row.run_id, Status(row.status), row.stage, row.mode) if row else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _append(conn, run_id: str, before: Run | None, to: Status, stage: str, note: str | None, at: dt.datetime):
    conn.execute(warehouse.run_transitions.insert().values(
        run_id=run_id, at=at, stage=stage, from_status=before.status if before else None, to_status=to,
        note=note[:1000] if note else None))


def start(conn, run_id: str, **values) -> None:
    """Begin (or begin again) a night at the first step: a fresh record, the old one's transitions kept."""
    before = load(conn, run_id)
    check(before, Status.RUNNING, FIRST)
    now = _now()
    conn.execute(warehouse.runs.delete().where(warehouse.runs.c.run_id == run_id))
    conn.execute(warehouse.runs.insert().values(run_id=run_id, status=Status.RUNNING, stage=FIRST, started_at=now,
                                                **values))
    _append(conn, run_id, before, Status.RUNNING, FIRST, None, now)


def move(conn, run_id: str, to: Status, stage: str, note: str | None = None) -> Run:
    """Move the night to `to` in `stage` (RunStateError if not allowed) and append the transition."""
    before = load(conn, run_id)
    check(before, to, stage)
    now = _now()
    if before is not None:  # a failure with no record (extract itself failed) leaves only its transition
        done = {"finished_at": now} if to is not Status.RUNNING else {"finished_at": None}
        conn.execute(sa.update(warehouse.runs).where(warehouse.runs.c.run_id == run_id)
                     .values(status=to, stage=stage, **done))
    _append(conn, run_id, before, to, stage, note, now)
    return Run(run_id, to, stage, before.mode if before else None)


def history(conn, run_id: str) -> list[dict]:
    """Every transition of a night, oldest first."""
    t = warehouse.run_transitions
    rows = conn.execute(sa.select(t).where(t.c.run_id == run_id).order_by(t.c.transition_id)).mappings().all()
    return [dict(r) for r in rows]


def fail(conn, run_id: str, stage: str, note: str) -> Run | None:
    """Record a failure in `stage`; a night a gate stopped in that step stays stopped (the stop is why it failed)."""
    before = load(conn, run_id)
    if before is not None and before.status is Status.STOPPED and before.stage == stage:
        return before
    return move(conn, run_id, Status.FAILED, stage, note)
