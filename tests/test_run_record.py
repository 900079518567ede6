"""The run record: which transitions a night may make, and the record a CLI night and a stopped night leave."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from subsidy_ledger import pipeline, run_record, warehouse
from subsidy_ledger.run_record import Run, RunStateError, Status

AS_OF = "2021-12-31"


@pytest.mark.parametrize("run, to, stage", [
    (None, Status.RUNNING, "extract"),
    (Run("r", Status.RUNNING, "validate"), Status.RUNNING, "eligibility_split"),
    (Run("r", Status.SUCCEEDED, "export"), Status.RUNNING, "post"),        # a cleared task of a finished night
    (Run("r", Status.FAILED, "decide"), Status.RUNNING, "post"),           # a failed task the operator marked done
    (Run("r", Status.STOPPED, "validate"), Status.RUNNING, "validate"),    # the stopping step again, accepted
    (Run("r", Status.STOPPED, "post"), Status.RUNNING, "decide"),          # or an earlier one
    (Run("r", Status.STOPPED, "post"), Status.RUNNING, "extract"),         # or the night from the start
    (Run("r", Status.RUNNING, "post"), Status.STOPPED, "post"),
    (Run("r", Status.RUNNING, "export"), Status.SUCCEEDED, "export"),
    (Run("r", Status.STOPPED, "validate"), Status.FAILED, "pay"),          # a failure is always recorded
    (None, Status.FAILED, "extract"),
])
def test_allowed_transitions(run, to, stage):
    run_record.check(run, to, stage)


@pytest.mark.parametrize("run, to, stage, words", [
    (None, Status.RUNNING, "validate", "a night starts at extract"),
    (Run("r", Status.STOPPED, "validate"), Status.RUNNING, "eligibility_split", "stopped by a gate at validate"),
    (Run("r", Status.STOPPED, "post"), Status.RUNNING, "export", "run post again"),
    (Run("r", Status.RUNNING, "validate"), Status.STOPPED, "post", "cannot be stopped at post"),
    (Run("r", Status.RUNNING, "pay"), Status.SUCCEEDED, "pay", "succeeds only at export"),
    (Run("r", Status.FAILED, "export"), Status.SUCCEEDED, "export", "is failed at export"),
    (Run("r", Status.RUNNING, "export"), Status.RUNNING, "configure", "unknown step"),
])
def test_refused_transitions(run, to, stage, words):
    with pytest.raises(RunStateError, match=words):
        run_record.check(run, to, stage)


def _history(url: str, run_id: str) -> list[tuple]:
    engine = warehouse.connect(url)
    with engine.connect() as c:
        rows = [(h["stage"], h["from_status"], h["to_status"]) for h in run_record.history(c, run_id)]
        rec = run_record.load(c, run_id)
    engine.dispose()
    return rows, rec


def test_a_night_records_every_step_it_enters(small_drop, warehouse_url, tmp_path, relaxed_gates):
    cfg = pipeline.RunConfig(sources=str(small_drop), as_of=AS_OF, warehouse=warehouse_url, out=str(tmp_path / "o"),
                             run_id="rec__1", partitions=2)
    pipeline.run(cfg)
    rows, rec = _history(warehouse_url, cfg.run_id)
    assert [(s, t) for s, _, t in rows] == [
        *((s, "running") for s in ("extract", "validate", "eligibility_split", "eligibility", "decide_split",
                                   "training_budget", "decide", "post", "pay", "export")), ("export", "succeeded")]
    assert rows[0][1] is None and all(f == "running" for _, f, _ in rows[1:])
    assert rec == Run("rec__1", Status.SUCCEEDED, "export", "full")
    pipeline.run(cfg)  # the same run again starts a fresh record; the first one's transitions stay
    rows, rec = _history(warehouse_url, cfg.run_id)
    assert len(rows) == 22 and rows[11] == ("extract", "succeeded", "running") and rec.status is Status.SUCCEEDED


def test_a_stopped_night_goes_on_only_through_its_gate(small_drop, warehouse_url, tmp_path):
    cfg = pipeline.RunConfig(sources=str(small_drop), as_of=AS_OF, warehouse=warehouse_url, out=str(tmp_path / "o"),
                             run_id="rec__2", max_quarantine_share=0.0, gate_min_rows=0, partitions=1)
    pipeline.stage_extract(cfg)
    with pytest.raises(pipeline.DataQualityError):
        pipeline.stage_validate(cfg)
    # as if the operator marked the stopped task done in Airflow: the next step refuses to run
    with pytest.raises(RunStateError, match="stopped by a gate at validate"):
        pipeline.eligibility_split(cfg)
    rows, rec = _history(warehouse_url, cfg.run_id)
    assert rec.status is Status.STOPPED and rec.stage == "validate"
    assert rows[-1] == ("validate", "running", "stopped")
    engine = warehouse.connect(warehouse_url)
    with engine.connect() as c:
        note = c.execute(sa.select(warehouse.run_transitions.c.note)
                         .order_by(warehouse.run_transitions.c.transition_id.desc()).limit(1)).scalar()
        # a failure recorded for the step a gate stopped leaves the night stopped (the stop is the reason)
    with engine.begin() as c:
        assert run_record.fail(c, cfg.run_id, "validate", "AirflowFailException") == rec
    engine.dispose()
    assert note == "quality_gate"
    relaxed = dataclasses.replace(cfg, max_quarantine_share=1.0)
    pipeline.stage_validate(relaxed)  # validate again, passing: the night goes on
    assert pipeline.eligibility_split(relaxed)["partitions"] == [0]
    assert _history(warehouse_url, cfg.run_id)[1] == Run("rec__2", Status.RUNNING, "eligibility_split", "full")


def test_a_failing_step_marks_the_night_failed_there(small_drop, warehouse_url, tmp_path, relaxed_gates, monkeypatch):
    cfg = pipeline.RunConfig(sources=str(small_drop), as_of=AS_OF, warehouse=warehouse_url, out=str(tmp_path / "o"),
                             run_id="rec__3", partitions=1)

    def broken(*_):
        raise ValueError("the rule broke")

    monkeypatch.setattr(pipeline, "decisions_partition", broken)
    with pytest.raises(ValueError):
        pipeline.run(cfg)
    rows, rec = _history(warehouse_url, cfg.run_id)
    # the CLI records the stage; Airflow's failure callback records the task's own step (decisions_part)
    assert rec.status is Status.FAILED and rec.stage == "decide"
    assert rows[-1] == ("decide", "running", "failed")


def test_the_migration_rewrites_earlier_statuses(warehouse_url):
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(warehouse.__file__).parent / "migrations"))
    engine = sa.create_engine(warehouse_url)
    old = {"a": "failed_quality_gate", "b": "failed_drop_gate", "c": "failed_reversal_gate", "d": "failed_export",
           "e": "succeeded", "f": "running"}
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0014_assessment")
        conn.execute(sa.text("insert into runs (run_id, as_of, sources, status) values (:r, '2022-06-30', 'x', :s)"),
                     [{"r": r, "s": s} for r, s in old.items()])
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        now = dict((r, (s, st)) for r, s, st in conn.execute(sa.text("select run_id, status, stage from runs")))
    engine.dispose()
    assert now == {"a": ("stopped", "validate"), "b": ("stopped", "validate"), "c": ("stopped", "post"),
                   "d": ("failed", "export"), "e": ("succeeded", "export"), "f": ("running", None)}
    assert {Status(s) for s, _ in now.values()} == set(Status)


def test_airflow_failure_callback_records_the_failed_step(warehouse_url, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from subsidy_ledger import orchestration

    cfg = pipeline.RunConfig(sources=str(tmp_path), as_of=AS_OF, warehouse=warehouse_url, out=str(tmp_path / "o"),
                             run_id="rec__4")
    engine = warehouse.connect(warehouse_url)
    with engine.begin() as c:
        run_record.start(c, cfg.run_id, as_of=cfg.as_of_date, sources="x")
        run_record.move(c, cfg.run_id, Status.RUNNING, "decide_split")
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    ti = SimpleNamespace(dag_id="nightly_subsidy_sync", task_id="decisions_partition", run_id="manual__x",
                         try_number=3, xcom_pull=lambda task_ids: values)
    monkeypatch.setenv(warehouse.WAREHOUSE_ENV, warehouse_url)  # where configure's alert goes (no RunConfig yet)
    # a mapped partition task's step; a task that is not a step (configure) records only the alert
    orchestration.task_failed({"ti": ti, "task": SimpleNamespace(stage="decisions_part"),
                               "exception": ValueError("the rule broke")})
    orchestration.task_failed({"ti": SimpleNamespace(**{**vars(ti), "task_id": "configure"}), "task": object(),
                               "exception": ValueError("bad conf")})
    with engine.connect() as c:
        rec, rows = run_record.load(c, cfg.run_id), run_record.history(c, cfg.run_id)
        alerts = c.execute(sa.select(warehouse.alerts.c.task_id)).scalars().all()
    engine.dispose()
    assert rec == Run("rec__4", Status.FAILED, "decisions_part")
    assert rows[-1]["to_status"] == "failed" and "ValueError: the rule broke" in rows[-1]["note"]
    assert sorted(alerts) == ["configure", "decisions_partition"]
