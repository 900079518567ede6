"""nightly_subsidy_sync: the nightly registry sync that decides and posts skill-upgrade subsidies.

Thin by design: tasks only wire the stages of subsidy_ledger.pipeline (logic lives in include/).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Connection, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowNotFoundException
from subsidy_ledger import orchestration, pipeline

WAREHOUSE_CONN_ID = os.environ.get("SUBSIDY_LEDGER_WAREHOUSE_CONN_ID", "subsidy_warehouse")

DOC = """
### Nightly subsidy sync (南浔区职业技能提升补贴)
Reads the registry drop in **params.sources**, validates each registry with its Great Expectations
suite (failing rows are quarantined with reasons), joins the registries into eligibility tables,
decides every claim under POLICY.md R1-R6 (certificates, apprentices,
living allowances), posts the difference to the append-only ledger,
and writes department extracts to **params.out**/`<as-of>/`.

* as-of date: the logical date's day in Asia/Shanghai, unless **params.as_of** is set.
* warehouse: the Airflow connection `subsidy_warehouse` (extra `sqlalchemy_url`, or its URI),
  else **params.warehouse**, else `$SUBSIDY_LEDGER_WAREHOUSE`.
* Re-running a logical date posts nothing twice: the ledger only receives the difference.
"""


def _connection_url() -> str | None:
    try:
        conn = Connection.get(WAREHOUSE_CONN_ID)
    except AirflowNotFoundException:
        return None
    return orchestration.sqlalchemy_url(conn.get_uri(), conn.extra_dejson)


@dag(
    dag_id="nightly_subsidy_sync",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2019, 1, 1, tz="Asia/Shanghai"),  # the policy window opens; catchup is off
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "subsidy-ledger", "retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "sources": Param(os.environ.get("SUBSIDY_LEDGER_SOURCES", "/data/drops/latest"), type="string",
                         description="drop folder holding <registry>.csv files"),
        "out": Param(os.environ.get("SUBSIDY_LEDGER_OUT", "/data/extracts"), type="string",
                     description="extracts are written under <out>/<as-of>/"),
        "as_of": Param(None, type=["null", "string"], description="YYYY-MM-DD; default: the logical date"),
        "warehouse": Param(None, type=["null", "string"], description="SQLAlchemy URL overriding the connection"),
    },
    tags=["subsidy-ledger", "nanxun"],
    doc_md=DOC,
)
def nightly_subsidy_sync():
    @task
    def configure() -> dict:
        ctx = get_current_context()
        cfg = orchestration.build_config(dict(ctx["params"]), ctx["dag"].dag_id, ctx["run_id"],
                                         ctx.get("logical_date") or ctx["dag_run"].run_after,
                                         _connection_url())
        return cfg.to_dict()

    @task(retries=3, retry_exponential_backoff=True)
    def extract(cfg: dict) -> dict:
        return pipeline.stage_extract(pipeline.RunConfig(**cfg))

    @task
    def validate(cfg: dict, _extracted: dict) -> dict:
        return pipeline.stage_validate(pipeline.RunConfig(**cfg))

    @task
    def build_eligibility(cfg: dict, _validated: dict) -> dict:
        return pipeline.stage_eligibility(pipeline.RunConfig(**cfg))

    @task
    def decide(cfg: dict, _eligibility: dict) -> dict:
        return pipeline.stage_decide(pipeline.RunConfig(**cfg))

    @task
    def post_ledger(cfg: dict, _decided: dict) -> dict:
        return pipeline.stage_post(pipeline.RunConfig(**cfg))

    @task
    def export(cfg: dict, _posted: dict) -> dict:
        return pipeline.stage_export(pipeline.RunConfig(**cfg))

    cfg = configure()
    export(cfg, post_ledger(cfg, decide(cfg, build_eligibility(cfg, validate(cfg, extract(cfg))))))


nightly_subsidy_sync()
