"""The steps' declared inputs and outputs: consistent, the source of lineage, and of the work store's clean-up."""

from __future__ import annotations

import pytest
from subsidy_ledger import lineage_events, pipeline, steps
from subsidy_ledger.generate import generate
from subsidy_ledger.registries import REGISTRIES


def test_every_step_is_declared_once_and_reads_only_what_an_earlier_step_wrote():
    runnable = set(dict(pipeline.STAGES)) | set(dict(pipeline.PARTITION_STEPS))
    assert set(steps.BY_NAME) == runnable and len(steps.STEPS) == len(runnable)
    assert [n for n, _ in pipeline.STAGES] == [s.name for s in steps.STEPS if s.name in dict(pipeline.STAGES)]
    written: set[str] = set()
    for step in steps.STEPS:
        work = {r for r in step.reads if r.startswith("work:")}
        assert work <= written, (step.name, work - written)
        written |= set(step.writes)


def test_work_is_spent_once_no_later_step_reads_it():
    assert steps.spent_work("extract") == []
    assert steps.spent_work("validate") == ["raw"]
    assert steps.spent_work("eligibility_part") == ["raw"]  # the combining step still reads the partitions
    # decide's partitions read the eligibility step's as they are; pay and export still read accepted rows
    assert steps.spent_work("eligibility") == ["raw"]
    assert steps.spent_work("decisions_part") == ["raw"]  # its sibling partitions still read the eligibility's
    for step in (s for s in steps.STEPS if s.mapped):
        assert not {f"work:{w}" for w in steps.spent_work(step.name)} & set(step.reads), step.name
    assert steps.spent_work("decide") == ["decide", "eligibility", "raw"]
    assert steps.spent_work("post") == steps.spent_work("decide")  # export still reads the decisions' copy
    assert steps.spent_work("pay") == steps.spent_work("decide")
    assert {"accepted", "decisions"} <= set(steps.spent_work("export"))


def test_a_step_reads_the_accepted_registries_whose_staging_tables_it_declares():
    rules = steps.accepted_registries("eligibility_split")
    assert rules == steps.accepted_registries("decide_split")
    # the bank's registries and the plans are not the rules' (a rule needing one fails every night test)
    assert set(REGISTRIES) - set(rules) == {"payee_accounts", "payment_results", "annual_plans"}
    assert set(steps.accepted_registries("pay")) == {"payment_results", "training_classes", "payee_accounts",
                                                     "training_institutions"}
    # export leaves the largest registries it does not show (accounts, results) and the small ones unread
    assert "payee_accounts" not in steps.accepted_registries("export")
    assert {"social_insurance", "certificates", "training_projects"} <= set(steps.accepted_registries("export"))
    assert steps.accepted_registries("post") == ()


def test_lineage_datasets_are_the_declared_ones(tmp_path):
    cfg = pipeline.RunConfig(sources=str(tmp_path), as_of="2022-06-30", warehouse="sqlite:////tmp/w.sqlite",
                             out=str(tmp_path / "out"), run_id="r1", work_dir=str(tmp_path / "work"))
    inputs, outputs = lineage_events.stage_datasets("eligibility", cfg, {})
    assert [d["name"] for d in inputs] == [str((tmp_path / "work" / "r1" / "eligibility").resolve())]
    assert sorted(d["name"].rsplit(".", 1)[1] for d in outputs) == sorted(
        t.split(":", 1)[1] for t in steps.ELIGIBILITY)
    inputs, _ = lineage_events.stage_datasets("decisions_part", cfg, {})
    assert [d["name"] for d in inputs] == [str((tmp_path / "work" / "r1" / f).resolve())
                                           for f in ("eligibility", "decide")]
    inputs, outputs = lineage_events.stage_datasets("pay", cfg, {})
    assert str(tmp_path / "out" / "payments" / "2022-06-30") in {d["name"] for d in outputs}
    assert lineage_events.stage_datasets("no such step", cfg, {}) == ([], [])
    on_s3 = pipeline.RunConfig(sources=str(tmp_path), as_of="2022-06-30", warehouse="sqlite:////tmp/w.sqlite",
                               out=str(tmp_path / "out"), run_id="r1", work_dir="s3://bucket/work",
                               work_conn_id="subsidy_work")
    inputs, outputs = lineage_events.stage_datasets("training_budget", on_s3, {})
    assert inputs == [{"namespace": "s3://bucket", "name": f"/work/r1/{f}"} for f in ("eligibility", "decide")]
    assert outputs == [{"namespace": "s3://bucket", "name": "/work/r1/decide"}]


@pytest.mark.usefixtures("relaxed_gates")
def test_a_night_removes_each_work_folder_once_it_is_spent(tmp_path):
    generate(200, 41, tmp_path / "drop")
    cfg = pipeline.RunConfig(sources=str(tmp_path / "drop"), as_of="2022-06-30",
                             warehouse=f"sqlite:///{tmp_path / 'w.sqlite'}", out=str(tmp_path / "out"),
                             run_id="cli__steps", work_dir=str(tmp_path / "work"), partitions=2)
    seen = {}

    def after(name, result, seconds):
        seen[name] = sorted(p.name for p in cfg.work.iterdir()) if cfg.work.exists() else None

    def no_staging(*args, **kwargs):
        raise AssertionError("a step read the staging tables while the work store held the accepted rows")

    called = []

    def through(name, config):  # a caller's runner (the CLI's process per stage) gets every stage in order
        called.append(name)
        return dict(pipeline.STAGES)[name](config)

    stale = cfg.work / "eligibility" / "p9" / "certificates.parquet"  # a killed attempt's, K = 10 then
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not this night's")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "load_staging", no_staging)
        pipeline.run(cfg, on_stage=after, call=through)
    assert called == [name for name, _ in pipeline.STAGES]
    assert seen["extract"] == ["raw"]  # the run's work starts empty
    assert seen["validate"] == ["accepted"]
    # its partitions stay for decide, which reads them as they are
    assert seen["eligibility"] == ["accepted", "eligibility"]
    assert seen["decide"] == ["accepted", "decisions"]  # the accepted rows for pay, the decisions' copy for post
    assert seen["pay"] == ["accepted", "decisions"]  # both for export
    assert seen["export"] is None  # the run's folder is gone
