"""The Airflow operator that runs one pipeline stage and reports its lineage to OpenLineage.

Glue only: the stage itself is subsidy_ledger.pipeline; the datasets are subsidy_ledger.lineage_events.
"""

from __future__ import annotations

from airflow.sdk import Asset, BaseOperator

from . import extract, lineage_events, orchestration, pipeline, run_record

# the CLI's stages, with eligibility and decide replaced by their partitioned steps (split, mapped parts, combine)
STAGE_FUNCTIONS = dict(pipeline.STAGES) | dict(pipeline.PARTITION_STEPS)
ASSET_GROUP = "subsidy-ledger"


def extract_assets(departments: list[str]) -> list[Asset]:
    """The export task's outlets: one asset per department's extracts and one for the finance summary, so a
    department's pickup DAG can be scheduled on its own (schedule=[Asset("subsidy_ledger_extracts_HRSS")]).
    Each event's extra says where that night's folder is."""
    names = [f"subsidy_ledger_extracts_{d}" for d in departments] + ["subsidy_ledger_extracts_summary"]
    return [Asset(name=n, uri=f"subsidy-ledger://extracts/{n.rsplit('_', 1)[1]}", group=ASSET_GROUP) for n in names]


class StageOperator(BaseOperator):
    """Run pipeline stage `stage` with the RunConfig the `configure` task returned."""

    ui_color = "#e8f1fb"

    def __init__(self, *, stage: str, config_task: str = "configure", partition: int | None = None,
                 returns: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if stage not in STAGE_FUNCTIONS:
            raise ValueError(f"unknown stage {stage!r}")
        self.stage = stage
        self.config_task = config_task
        self.partition = partition  # a mapped per-partition step's partition (expanded from the split's result)
        self.returns = returns  # return only this item of the result (the partition list a mapped step expands)
        self._cfg = None
        self._result: dict = {}

    def execute(self, context):
        """Run the stage; the small result dict goes to XCom (paths and counts, never frames)."""
        from airflow.sdk.exceptions import AirflowFailException

        self._cfg = orchestration.resolve_config(context["ti"].xcom_pull(task_ids=self.config_task))
        try:
            args = () if self.partition is None else (int(self.partition),)
            self._result = STAGE_FUNCTIONS[self.stage](self._cfg, *args)
        # the same drop (or the same run record) would fail again: no retries
        except (pipeline.DataQualityError, extract.DropError, run_record.RunStateError) as exc:
            raise AirflowFailException(str(exc)) from exc
        self.log.info("%s (as of %s): %s", self.stage, self._cfg.as_of, pipeline.describe(self.stage, self._result))
        spent = pipeline.release_work(self._cfg, self.stage)
        if spent:
            self.log.info("work store: removed %s (no later step reads it)", ", ".join(spent))
        if self.stage == "export":
            self._announce(context)
        return self._result[self.returns] if self.returns else self._result

    def _announce(self, context) -> None:
        """Fill each outlet's asset event: the night, its folder (a department's own) and the run."""
        folder = self._result["extracts"]
        for asset in self.outlets or []:
            part = asset.uri.rsplit("/", 1)[1]
            context["outlet_events"][asset].extra = {
                "as_of": self._cfg.as_of, "run_id": self._cfg.run_id,
                "folder": folder if part == "summary" else f"{folder}/{part}"}

    def get_openlineage_facets_on_complete(self, task_instance):
        """Inputs and outputs of the stage; GX verdicts as data-quality facets on the validated files."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        if self._cfg is None:
            return OperatorLineage()
        inputs, outputs = lineage_events.stage_datasets(self.stage, self._cfg, self._result)
        return OperatorLineage(inputs=[_dataset(d, "input") for d in inputs],
                               outputs=[_dataset(d, "output") for d in outputs])


def _dataset(spec: dict, kind: str):
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import data_quality_assertions_dataset, data_quality_metrics_input_dataset

    facets, input_facets = {}, {}
    if spec.get("assertions"):
        facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[data_quality_assertions_dataset.Assertion(
                assertion=f"{a['expectation']}:{a['reason'] or ''}", success=a["success"],
                column=a["column"] if isinstance(a["column"], str) else None) for a in spec["assertions"]])
    if spec.get("rows") is not None:
        input_facets["dataQualityMetrics"] = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            rowCount=int(spec["rows"]), columnMetrics={})
    if kind == "input":
        return InputDataset(namespace=spec["namespace"], name=spec["name"], facets=facets, inputFacets=input_facets)
    return OutputDataset(namespace=spec["namespace"], name=spec["name"], facets=facets)
