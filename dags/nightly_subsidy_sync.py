"""nightly_subsidy_sync: the nightly registry sync that decides and posts skill-upgrade subsidies.

Thin by design: tasks only wire the stages of subsidy_ledger.pipeline (logic lives in include/).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, chain, dag, get_current_context, task
from subsidy_ledger import orchestration
from subsidy_ledger.airflow_stage import StageOperator, extract_assets
from subsidy_ledger.policy import PolicyBook

WAREHOUSE_CONN_ID = orchestration.WAREHOUSE_CONN_ID
SCHEDULE = os.environ.get("SUBSIDY_LEDGER_SCHEDULE", "0 2 * * *")

DOC = """
### Nightly subsidy sync (南浔区职业技能提升补贴)
Reads the registry drop in **params.sources**, validates each registry with its Great Expectations
suite (failing rows are quarantined with reasons), joins the registries into eligibility tables,
decides every claim under POLICY.md R1-R7 (certificates, apprentices, living allowances, training
subsidies) and P2 (objections), puts newly approved claims on their department's publicity list (P1),
posts to the append-only ledger the claims whose publicity has ended (P3), instructs the bank for every
payout with a payee account and records its results (`pay`), and writes department extracts to
**params.out**/`<as-of>/` and the bank files to `<out>/payments/<as-of>/` (mode 0600: full numbers).
A night with no registry change still runs in full: it releases the claims whose publicity ended.

**Inputs.** `sources`: a drop folder of `<registry>.csv` files. `as_of`: default the logical date's day
in Asia/Shanghai. `warehouse`: default the connection `subsidy_warehouse` (extra `sqlalchemy_url`, or
its URI), else `$SUBSIDY_LEDGER_WAREHOUSE`.

**Safety.** Re-running a logical date posts nothing twice (the ledger only receives the difference);
all of a run's lines commit in one transaction under a lock in the warehouse; an earlier date than
the ledger's last posting is a replay and posts nothing.

**Operations.** `extract` retries 3 times with exponential backoff, the others twice; a drop that
cannot be read, or a night a gate stops, fails at once without retries. Gates, before anything is
posted: the data-quality gate fails `validate` when a registry of at least 100 rows quarantines more
than `max_quarantine_share` (0.10) of them; the drop gate fails `validate` when a registry lost more
than `max_row_loss_share` (0.05) of last night's rows, vanished, is unreadable, or a required one is
empty; the reversal gate fails `post_ledger` when the night would reverse more than
`max_reversal_share` (0.02) of the active payouts or `max_reversal_amount` yuan. If the change is
real, trigger the night again with `accept_drop_change` naming the registry (or `reversals`); the
warehouse records who accepted what (`gate_acceptances`). Every failed task writes a row
to the warehouse's `alerts` table; set `SUBSIDY_LEDGER_ALERT_EMAIL` (and Airflow's SMTP settings) to
be e-mailed too. Each stage reports OpenLineage datasets when a transport is configured; GX Data Docs
of each run are under `<out>/data_docs/<run>/`; the "Subsidy auditor" page traces any payout.
"""


@dag(
    dag_id="nightly_subsidy_sync",
    # 02:00 in Nanxun; SUBSIDY_LEDGER_SCHEDULE=none leaves only triggered runs (staging, tests)
    schedule=None if SCHEDULE.lower() == "none" else SCHEDULE,
    start_date=pendulum.datetime(2019, 1, 1, tz="Asia/Shanghai"),  # the policy window opens; catchup is off
    catchup=False,
    max_active_runs=1,
    description="南浔区职业技能提升补贴: nightly registry sync, decisions, publicity, ledger, payments, extracts",
    default_args={"owner": "subsidy-ledger", "retries": 2, "retry_delay": timedelta(minutes=5),
                  # the warehouse's alerts table, the SMTP notifier and any other notifier the environment names
                  "on_failure_callback": orchestration.failure_callbacks()},
    params={
        "sources": Param(os.environ.get("SUBSIDY_LEDGER_SOURCES", "/data/drops/latest"), type="string",
                         description="drop folder holding <registry>.csv files"),
        "registry_connection": Param(os.environ.get("SUBSIDY_LEDGER_REGISTRY_CONN_ID"), type=["null", "string"],
                                     description="Airflow connection of a registry database (tables named "
                                                 "like the registries); overrides sources"),
        "out": Param(os.environ.get("SUBSIDY_LEDGER_OUT", "/data/extracts"), type="string",
                     description="extracts are written under <out>/<as-of>/"),
        "as_of": Param(None, type=["null", "string"], format="date", title="As-of date (核算日期)",
                       description="YYYY-MM-DD, a real calendar date; default: the logical date's day in "
                                   "Asia/Shanghai"),
        "warehouse": Param(None, type=["null", "string"],
                           description="SQLAlchemy URL without a password overriding the connection (tests, "
                                       "SQLite); credentials belong in a connection"),
        "warehouse_conn_id": Param(WAREHOUSE_CONN_ID, type="string",
                                   description="Airflow connection of the warehouse (extra sqlalchemy_url, or its "
                                               "URI), resolved inside each task"),
        "max_quarantine_share": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                      description="data-quality gate: fail before posting above this share "
                                                  "(default $SUBSIDY_LEDGER_MAX_QUARANTINE_SHARE or 0.10)"),
        "max_row_loss_share": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                    description="drop gate: fail before posting when a registry lost more than "
                                                "this share of last night's accepted rows (default "
                                                "$SUBSIDY_LEDGER_MAX_ROW_LOSS_SHARE or 0.05)"),
        "max_reversal_share": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                    description="reversal gate: fail before posting when the night would reverse "
                                                "more than this share of the active payouts (default "
                                                "$SUBSIDY_LEDGER_MAX_REVERSAL_SHARE or 0.02)"),
        "max_reversal_amount": Param(None, type=["null", "number"], minimum=0,
                                     description="reversal gate: fail before posting when the night would reverse "
                                                 "more than this many yuan (default "
                                                 "$SUBSIDY_LEDGER_MAX_REVERSAL_AMOUNT or 1000000.00)"),
        "accept_drop_change": Param([], type="array", items={"type": "string"},
                                    description="registries (or 'reversals') whose gate findings the operator "
                                                "accepts for this run; recorded with the triggering user"),
    },
    tags=["subsidy-ledger", "nanxun"],
    doc_md=DOC,
)
def nightly_subsidy_sync():
    @task
    def configure() -> dict:
        # connection ids, never URLs with passwords, go to XCom: each task resolves them itself
        ctx = get_current_context()
        return orchestration.build_config(dict(ctx["params"]), ctx["dag"].dag_id, ctx["run_id"],
                                          ctx.get("logical_date") or ctx["dag_run"].run_after,
                                          getattr(ctx["dag_run"], "triggering_user_name", None))

    # Each stage is a StageOperator: it runs subsidy_ledger.pipeline.<stage> and reports OpenLineage datasets.
    # Eligibility and decide run person partition by partition: a split step writes the partitions to the work
    # store and returns their numbers, mapped tasks (.expand) take one partition each, on any Celery worker,
    # and build_eligibility / decide put the results together (decide after the projects' budgets, R7).
    extract = StageOperator(task_id="extract", stage="extract", retries=3, retry_exponential_backoff=True)
    validate = StageOperator(task_id="validate", stage="validate")
    split_eligibility = StageOperator(task_id="split_eligibility", stage="eligibility_split", returns="partitions")
    eligibility_partition = StageOperator.partial(task_id="eligibility_partition", stage="eligibility_part").expand(
        partition=split_eligibility.output)
    build_eligibility = StageOperator(task_id="build_eligibility", stage="eligibility")
    split_decide = StageOperator(task_id="split_decide", stage="decide_split", returns="partitions")
    training_partition = StageOperator.partial(task_id="training_partition", stage="training_part").expand(
        partition=split_decide.output)
    training_budget = StageOperator(task_id="training_budget", stage="training_budget")
    decisions_partition = StageOperator.partial(task_id="decisions_partition", stage="decisions_part").expand(
        partition=split_decide.output)
    decide = StageOperator(task_id="decide", stage="decide")
    chain(configure(), extract, validate, split_eligibility, eligibility_partition, build_eligibility,
          split_decide, training_partition, training_budget, decisions_partition, decide,
          StageOperator(task_id="post_ledger", stage="post"),
          StageOperator(task_id="pay", stage="pay"),
          StageOperator(task_id="export", stage="export", outlets=extract_assets(PolicyBook.load().departments)))

nightly_subsidy_sync()
