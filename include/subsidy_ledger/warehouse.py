"""The warehouse: SQLAlchemy Core tables by layer (staging, intermediate, decisions, ledger), and bulk I/O."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import io
import itertools
import logging
import multiprocessing
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .registries import REGISTRIES, Registry

WAREHOUSE_ENV = "SUBSIDY_LEDGER_WAREHOUSE"
DEFAULT_WAREHOUSE = "sqlite:///subsidy_ledger.sqlite"
RUN_ID = sa.String(250)
log = logging.getLogger(__name__)

metadata = sa.MetaData()


def _staging_table(reg: Registry) -> sa.Table:
    cols = [sa.Column("run_id", RUN_ID, nullable=False), sa.Column("source_row", sa.Integer, nullable=False)]
    for c in reg.columns:
        if c in reg.dates:
            typ = sa.Date
        elif c in reg.money:
            typ = sa.BigInteger  # fen
        elif c in reg.integers or c in ("attendance_days", "uplift_rate"):
            typ = sa.Integer  # uplift_rate in parts per 10,000
        elif c == "passed":
            typ = sa.Boolean
        else:
            typ = sa.Text
        cols.append(sa.Column(c, typ))
    cols.append(sa.Column("row_hash", sa.String(32)))  # content hash of the source row (lineage)
    cols.append(sa.Column("validated_run", RUN_ID))     # the run whose GX validation accepted this content
    table = sa.Table(reg.table, metadata, *cols)
    # a run's rows by row number, as trace reads them; rows arrive in that order, so the index grows at its end
    sa.Index(f"ix_{reg.table}_row", table.c.run_id, table.c.source_row)
    return table


STAGING = {name: _staging_table(reg) for name, reg in REGISTRIES.items()}

runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", RUN_ID, primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("sources", sa.Text, nullable=False),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("logical_date", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),   # run_record.Status
    sa.Column("stage", sa.String(40)),                    # the step it is running, stopped or failed in
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("ledger_seq_at_decide", sa.BigInteger),
    sa.Column("ledger_seq_after_post", sa.BigInteger),
    sa.Column("mode", sa.String(20)),       # full, replay (earlier revisions: incremental)
    sa.Column("base_run", RUN_ID),          # no longer set: earlier revisions' incremental runs
    sa.Column("fingerprint", sa.String(64)),  # no longer set: earlier revisions' incremental runs
)

run_transitions = sa.Table(  # every move of a run's record (run_record); append-only
    "run_transitions", metadata,
    sa.Column("transition_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", RUN_ID, nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),  # UTC
    sa.Column("stage", sa.String(40), nullable=False),
    sa.Column("from_status", sa.String(20)),       # None: the run had no record
    sa.Column("to_status", sa.String(20), nullable=False),
    sa.Column("note", sa.Text),                    # the gate or the error, one line
)

ledger_lock = sa.Table(
    "ledger_lock", metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("holder", RUN_ID),
    sa.Column("acquired_at", sa.DateTime),
)

reconciliation = sa.Table(
    "reconciliation", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("registry", sa.String(64), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("present", sa.Boolean, nullable=False),
    sa.Column("encoding", sa.String(20)),
    sa.Column("sha256", sa.String(64)),
    sa.Column("rows_in", sa.Integer, nullable=False),
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    sa.Column("gx_success", sa.Boolean, nullable=False),
    sa.Column("gx_evaluated", sa.Integer, nullable=False),
    sa.Column("problem", sa.Text),  # why an optional file there could not be read (directory, FIFO, ...)
    sa.PrimaryKeyConstraint("run_id", "registry"),
)

gate_acceptances = sa.Table(  # who let a night through a gate, and what the gate had found
    "gate_acceptances", metadata,
    sa.Column("acceptance_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("subject", sa.String(64), nullable=False),   # a registry, or "reversals"
    sa.Column("accepted_by", sa.String(250), nullable=False),
    sa.Column("accepted_at", sa.DateTime, nullable=False),
    sa.Column("stage", sa.String(40), nullable=False),
    sa.Column("finding", sa.Text),  # the figure that would have stopped the night; empty if none did
)

quarantine = sa.Table(
    "quarantine", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("registry", sa.String(64), nullable=False),
    sa.Column("row_number", sa.Integer, nullable=False),
    sa.Column("record_key", sa.Text),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("person_id", sa.Text),  # the row's person, compacted: their claims on this registry are held
    sa.Column("columns", sa.Text),        # the columns the failed checks concern, ";"-joined
    sa.Column("values_masked", sa.Text),  # their values as read, identity and account numbers masked
    sa.PrimaryKeyConstraint("run_id", "registry", "row_number"),
)

# the warehouse's own keys: "default", the HMAC key of the pseudonymous person codes in extracts
# (identifiers.person_codes); "work-store", the secret the runs' work-file keys come from (work_store_key)
person_code_keys = sa.Table(
    "person_code_key", metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("key_hex", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime),
)

certificate_eligibility = sa.Table(
    "int_certificate_eligibility", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("certificate_no", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("certificate_type", sa.String(40), nullable=False),
    sa.Column("occupation_code", sa.Text, nullable=False),
    sa.Column("level", sa.Integer),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("training_class_id", sa.Text),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("civil_servant", sa.Boolean, nullable=False),
    sa.Column("insured", sa.Boolean, nullable=False),
    sa.Column("key_group", sa.Boolean, nullable=False),
    sa.Column("insured_months", sa.Integer),  # R1 check 5: full months of insurance up to the issue date
    sa.Column("paid_by_city", sa.Boolean, nullable=False),
    sa.Column("uplift_units", sa.Integer, nullable=False),
    sa.Column("catalog_amount_fen", sa.BigInteger),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.PrimaryKeyConstraint("run_id", "certificate_no"),
)

apprentice_eligibility = sa.Table(
    "int_apprentice_eligibility", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("subsidy_type", sa.String(40), nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("agreement_id", sa.Text, nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("agreement_start", sa.Date),
    sa.Column("agreement_end", sa.Date),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("months_served", sa.Integer),
    sa.Column("monthly_allowance_fen", sa.BigInteger),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("school_partner", sa.Boolean),    # R4/R5: the agreement names a school (校企合作)
    sa.Column("in_post_one_year", sa.Boolean),  # R4: insured with the employer the whole year before
    sa.PrimaryKeyConstraint("run_id", "subsidy_type", "reference"),
)

living_allowance_eligibility = sa.Table(
    "int_living_allowance_eligibility", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("class_id", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("occupation_code", sa.Text),
    sa.Column("level", sa.Integer),
    sa.Column("filed_in_advance", sa.Boolean, nullable=False),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("attendance_days", sa.Integer, nullable=False),
    sa.Column("class_days", sa.Integer),
    sa.Column("qualifying_group", sa.Boolean, nullable=False),
    sa.Column("group_basis", sa.String(64)),  # why: the low_income category, or school_leaver_<hukou|category>
    sa.Column("overlapping_attendance", sa.Boolean),  # on another roster whose class dates overlap: held
    sa.PrimaryKeyConstraint("run_id", "class_id", "person_id"),
)

training_eligibility = sa.Table(
    "int_training_eligibility", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("class_id", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("project_id", sa.Text),
    sa.Column("institution_credit_code", sa.Text),
    sa.Column("institution_name", sa.Text),
    sa.Column("occupation_code", sa.Text),
    sa.Column("level", sa.Integer),
    sa.Column("filed_in_advance", sa.Boolean, nullable=False),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("project_filed", sa.Boolean, nullable=False),          # R7: no project needed, or one filed in time
    sa.Column("institution_qualified", sa.Boolean, nullable=False),  # R7: qualified on the class start
    sa.Column("project_standard_fen", sa.BigInteger),                # the filed standard per trainee
    sa.Column("catalog_amount_fen", sa.BigInteger),                  # the catalog's, on the class start
    sa.Column("budget_fen", sa.BigInteger),                          # the project's filed budget
    sa.Column("uplift_units", sa.Integer, nullable=False),           # R3 on the class start
    sa.Column("overlapping_attendance", sa.Boolean),
    sa.PrimaryKeyConstraint("run_id", "class_id", "person_id"),
)

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("subsidy_type", sa.String(40), nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("decision", sa.String(10), nullable=False),
    sa.Column("reason_code", sa.String(64)),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("base_amount_fen", sa.BigInteger),
    sa.Column("uplift_units", sa.Integer, nullable=False),
    sa.Column("cap_place", sa.Integer),
    sa.Column("rule_id", sa.String(8), nullable=False),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("fund", sa.String(40), nullable=False),
    sa.Column("occupation_code", sa.Text),
    sa.Column("level", sa.Integer),
    sa.Column("event_date", sa.Date),
    sa.Column("decided_in_run", RUN_ID),  # the run itself (earlier revisions kept unchanged decisions of another)
    sa.Column("held_rows", sa.Text),  # awaiting_registry_correction: the quarantined "registry:row" pairs
    sa.PrimaryKeyConstraint("run_id", "subsidy_type", "reference", "person_id"),
)

city_overlaps = sa.Table(  # R1 check 6: certificates paid by the district and, later, by the city too
    "city_overlaps", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("occupation_code", sa.Text),
    sa.Column("level", sa.Integer),
    sa.Column("district_amount_fen", sa.BigInteger, nullable=False),
    sa.Column("city_certificate_no", sa.Text, nullable=False),
    sa.Column("city_paid_on", sa.Date),
    sa.Column("city_amount_fen", sa.BigInteger),
    sa.PrimaryKeyConstraint("run_id", "reference", "person_id", "city_certificate_no"),
)

claim_sources = sa.Table(  # lineage: every source row a decision rests on, and in which role
    "claim_sources", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("subsidy_type", sa.String(40), nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("role", sa.String(40), nullable=False),
    sa.Column("registry", sa.String(64), nullable=False),
    sa.Column("source_row", sa.Integer, nullable=False),
    sa.Column("record_key", sa.Text),
    sa.Column("row_hash", sa.String(32)),
    sa.Column("validated_run", RUN_ID),
)
# the run first: a night's rows go in (and a rerun's delete finds them) in one stretch of the index, whatever
# the nights kept before; with the claim first, each night's rows went in among every earlier night's
sa.Index("ix_claim_sources_run_claim", claim_sources.c.run_id, claim_sources.c.subsidy_type,
         claim_sources.c.reference, claim_sources.c.person_id)

validation_results = sa.Table(  # the GX verdict on each registry's batch, per run
    "validation_results", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("registry", sa.String(64), nullable=False),
    sa.Column("suite", sa.String(120), nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("evaluated", sa.Integer, nullable=False),
    sa.Column("successful", sa.Integer, nullable=False),
    sa.Column("rows_checked", sa.Integer, nullable=False),
    sa.Column("result_json", sa.Text, nullable=False),
    sa.Column("data_docs", sa.Text),
    sa.Column("validated_at", sa.DateTime),  # UTC; pages show it in Asia/Shanghai
    sa.PrimaryKeyConstraint("run_id", "registry"),
)

ledger_lines = sa.Table(
    "ledger_lines", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("payout_id", sa.String(40), nullable=False, unique=True),
    sa.Column("entry_type", sa.String(10), nullable=False),
    sa.Column("reverses_payout_id", sa.String(40)),
    sa.Column("posted_on", sa.Date, nullable=False),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("fund", sa.String(40), nullable=False),
    sa.Column("subsidy_type", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("occupation_code", sa.Text),
    sa.Column("level", sa.Integer),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("uplift_units", sa.Integer, nullable=False),
    sa.Column("rule_id", sa.String(8), nullable=False),
    sa.Column("policy_version", sa.String(64), nullable=False),
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("payee_type", sa.String(12)),   # person, institution (R7); empty on lines before P3
    sa.Column("publicity_end", sa.Date),      # P1: the end of the publicity the payout passed; empty on reversals
    sa.CheckConstraint("entry_type IN ('payout', 'reversal')", name="ck_ledger_entry_type"),
    sa.CheckConstraint("(entry_type = 'payout' AND amount_fen > 0 AND reverses_payout_id IS NULL) OR "
                       "(entry_type = 'reversal' AND amount_fen < 0 AND reverses_payout_id IS NOT NULL)",
                       name="ck_ledger_sign"),
)
sa.Index("ix_ledger_claim", ledger_lines.c.subsidy_type, ledger_lines.c.reference, ledger_lines.c.person_id)
sa.Index("ix_ledger_posted_on", ledger_lines.c.posted_on)


publicity = sa.Table(  # P1: every claim put on a publicity list (公示), append-only; the list of a night is its rows
    "publicity", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("subsidy_type", sa.String(40), nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(18), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("fund", sa.String(40), nullable=False),
    sa.Column("occupation_code", sa.Text),
    sa.Column("level", sa.Integer),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("rule_id", sa.String(8), nullable=False),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("publicity_start", sa.Date, nullable=False),
    sa.Column("publicity_end", sa.Date, nullable=False),
    sa.Column("working_days", sa.Integer, nullable=False),
    sa.Column("run_id", RUN_ID, nullable=False),
)
sa.Index("ix_publicity_claim", publicity.c.subsidy_type, publicity.c.reference, publicity.c.person_id)

payment_instructions = sa.Table(  # P3: what the bank was told to pay (or, for a recovery, what is owed back)
    "payment_instructions", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("instruction_id", sa.String(40), nullable=False, unique=True),
    sa.Column("kind", sa.String(10), nullable=False),           # payment, recovery
    sa.Column("payout_id", sa.String(40), nullable=False),      # the payout line paid (or, for a recovery, reversed)
    sa.Column("reversal_id", sa.String(40)),                    # recovery: the reversal line that made it owed
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("department_code", sa.String(20), nullable=False),
    sa.Column("fund", sa.String(40), nullable=False),
    sa.Column("payee_type", sa.String(12), nullable=False),
    sa.Column("payee_id", sa.Text, nullable=False),             # identity number or credit code
    sa.Column("payee_name", sa.Text),
    sa.Column("bank_name", sa.Text),
    sa.Column("account_no", sa.Text),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("instructed_on", sa.Date, nullable=False),
    sa.Column("account_source", sa.Text),                       # lineage: registry:row of the account
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.CheckConstraint("kind IN ('payment', 'recovery')", name="ck_instruction_kind"),
)
sa.Index("ix_instructions_payout", payment_instructions.c.payout_id)

payment_outcomes = sa.Table(  # P3: the bank's result for an instruction, as first reported; append-only
    "payment_outcomes", metadata,
    sa.Column("instruction_id", sa.String(40), primary_key=True),
    sa.Column("payout_id", sa.String(40), nullable=False),
    sa.Column("result", sa.String(10), nullable=False),          # paid, failed
    sa.Column("result_date", sa.Date, nullable=False),
    sa.Column("failure_reason", sa.Text),
    sa.Column("recorded_on", sa.Date, nullable=False),           # the as-of date of the run that read it
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("source_row", sa.Integer),                         # lineage: payment_results.csv row and content hash
    sa.Column("row_hash", sa.String(32)),
)


alerts = sa.Table(  # failed runs and tasks, for whoever watches the nightly sync
    "alerts", metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("raised_at", sa.DateTime, nullable=False),
    sa.Column("run_id", RUN_ID),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("task_id", sa.String(250)),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)


access_log = sa.Table(  # every lookup of personal data on the auditors' page, its API and `trace`; append-only
    "access_log", metadata,
    sa.Column("log_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("accessed_at", sa.DateTime, nullable=False),  # UTC
    sa.Column("who", sa.String(250), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),     # api, cli
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),             # the departments the viewer may see ("*": all)
    sa.Column("persons_shown", sa.Integer, nullable=False),
    sa.Column("persons", sa.Text, nullable=False),           # their identity numbers, ";"-separated
)


assessment = sa.Table(  # A1: each night's figures per view, as JSON records, for the leading group's page
    "assessment", metadata,
    sa.Column("run_id", RUN_ID, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("view", sa.String(40), nullable=False),
    sa.Column("figures", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),  # UTC
    sa.PrimaryKeyConstraint("run_id", "view"),
    sa.Index("ix_assessment_as_of", "as_of", "created_at"),
)


def warehouse_url(url: str | None = None) -> str:
    """The warehouse URL: the argument, else $SUBSIDY_LEDGER_WAREHOUSE, else an SQLite file here."""
    return url or os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE


# SQLite's page cache per connection, in KiB (its default is 2 MiB): a night's bulk loads go into indexed tables
# in key order that is not the rows' (staging by row hash), and a small cache spills and rereads pages
# (1,000,000 rows into an indexed table: 5.5 s with the default, 3.4 s with 64 MiB)
SQLITE_CACHE_KIB = 65_536
# SQLite's page size for a warehouse file it creates (its default is 4 KiB; a file keeps the size it was made
# with): fewer, larger B-tree pages take a night's bulk loads faster (2.7 million claim sources into their indexed
# table: 7.2-7.4 s instead of 8.6-9.2 s with the load's commit, bench in docs/benchmarks.md)
SQLITE_PAGE_BYTES = 16_384


def _sqlite_file(url: str) -> bool:
    """Whether the warehouse URL names an SQLite file (not an in-memory database, not another server)."""
    return url.startswith("sqlite:///") and url != "sqlite:///:memory:"


def connect(url: str | None = None, pooled: bool = True, checkpoints: bool = True) -> Engine:
    """Create an engine for the warehouse and bring its schema to the latest migration; pooled=False closes
    each connection when its block ends (a stage that stops with an error leaves none open); checkpoints=False:
    an SQLite connection leaves its commits in the write-ahead log for a night's checkpointer (checkpointer)."""
    url = warehouse_url(url)
    if _sqlite_file(url):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url) if pooled else sa.create_engine(url, poolclass=sa.pool.NullPool)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")  # before WAL: only an empty file takes it
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            if not checkpoints:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cur.close()
    migrate(engine)
    return engine


@contextlib.contextmanager
def checkpointer(url: str) -> Iterator[Callable[[], None]]:
    """For a night whose stages connect with checkpoints=False, one after another: a process beside them that
    copies their SQLite write-ahead log into the database file (a checkpoint) each time the block calls the
    function it is given, while the next stage goes on; when the block ends, it copies the rest and closes.

    Why: a stage's last connection to close (or a commit, past 1,000 pages) copied the stage's whole log in the
    stage's own time; decide's (claim sources and decisions) took 4 s at 1,000,000 persons while the other core
    idled. Holding its connection open all night, the checkpointer is never the stage's last one. A checkpoint
    moves committed pages only, never waits for a reader or writer (PASSIVE), and is what SQLite would have done:
    the file is as it was without it. Any other warehouse: the function does nothing."""
    url = warehouse_url(url)
    if not _sqlite_file(url):
        yield lambda: None
        return
    connect(url, pooled=False).dispose()  # the file made (its page size, WAL) and migrated first
    # forked with no connection of this process open (SQLite forbids carrying one across a fork) and no thread
    # running; it ends when its pipe does, the parent's end closing as the parent ends or dies
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    process = context.Process(target=_checkpoints, args=(url, theirs, ours), daemon=True, name="wal-checkpointer")
    process.start()
    theirs.close()

    def kick() -> None:
        with contextlib.suppress(OSError):  # a checkpointer that died leaves the checkpoints to SQLite
            ours.send("checkpoint")

    try:
        yield kick
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        process.join()
        ours.close()


def _checkpoints(url: str, channel, parents) -> None:
    """The checkpointer's process: a passive checkpoint per message until "stop", or until its parent is gone
    (killed: the pipe ends, as the parent's end is closed here)."""
    parents.close()
    try:
        raw = connect(url, pooled=False, checkpoints=False).raw_connection()
    except Exception as exc:  # noqa: BLE001 - the night goes on; its stages' connections copy their own log
        log.warning("warehouse checkpointer not started (%s); SQLite copies the log itself", exc)
        return
    try:
        with contextlib.suppress(EOFError):
            while channel.recv() == "checkpoint":
                _checkpoint(raw.driver_connection)
        _checkpoint(raw.driver_connection)
    finally:
        raw.close()  # the last connection to close copies what is left and removes the log


def _checkpoint(db: sqlite3.Connection) -> None:
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:  # the pages stay in the log, where every reader finds them; SQLite copies them later
        log.warning("warehouse checkpoint failed (%s); SQLite copies the log later", exc)


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine):
    """Serialise schema upgrades of one SQLite file across processes (SQLite DDL takes no lock early enough)."""
    db = engine.url.database
    if not db or db == ":memory:":
        yield
        return
    with open(f"{db}.migrate-lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _alembic_config():
    """Alembic settings naming the packaged migrations folder."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


@functools.cache
def _head_revision() -> str:
    """The newest migration's revision: fixed for an installed package, so read once per process (reading the
    scripts cost as much as the rest of a connect, and a night connects a few dozen times)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: Engine) -> None:
    """Upgrade the warehouse schema to the newest Alembic revision; concurrent callers queue, one upgrades."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == _head_revision():
            return
    cfg = _alembic_config()
    lock = _sqlite_file_lock(engine) if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with lock, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(730503)")  # 330503's district, any constant
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _driver_columns(frame: pd.DataFrame, table: sa.Table) -> tuple[list[str], list[list]]:
    """Column names and per-column Python lists in the form every DB-API driver accepts."""
    names = _stored_columns(frame, table)
    return names, [_driver_values(frame[name], table.c[name]) for name in names]


def _stored_columns(frame: pd.DataFrame, table: sa.Table) -> list[str]:
    """The table's columns the frame holds, in the table's order."""
    return [col.name for col in table.columns if col.name in frame.columns]


def _driver_values(s: pd.Series, col: sa.Column) -> list:
    """One column's values as Python objects in the form every DB-API driver accepts for its SQL type."""
    if isinstance(col.type, sa.DateTime):
        return _python_values(pd.to_datetime(s).dt.strftime("%Y-%m-%d %H:%M:%S.%f"))
    if isinstance(col.type, sa.Date):
        return _date_texts(pd.to_datetime(s))
    if isinstance(col.type, sa.Boolean):
        return _python_values(s.astype("boolean"))
    if isinstance(col.type, sa.Integer):
        return _python_values(s.astype("Int64"))
    return _python_values(s)


def _date_texts(s: pd.Series) -> list:
    """A datetime column as 'YYYY-MM-DD' texts, None where missing. Arrow's cast takes the day a time falls on
    (before 1970 too; a zoned time's local day), as strftime did, in a quarter of its time (a night's decisions
    and staging carry millions of dates)."""
    return pa.array(s, from_pandas=True).cast(pa.date32()).cast(pa.string()).to_pylist()


def _python_values(s: pd.Series) -> list:
    """A column's values as Python objects, None where missing. Text, nullable integers and booleans and numpy
    numbers go through Arrow (a quarter less time than pandas' object cast; 2.7 million claim sources a night);
    other columns (objects of any kind) through pandas, as before."""
    if isinstance(s.dtype, (pd.StringDtype, pd.Int64Dtype, pd.BooleanDtype)) or s.dtype.kind in "biuf":
        return pa.array(s, from_pandas=True).to_pylist()
    return s.astype(object).where(s.notna(), None).tolist()


def _copy_text(values: list) -> pd.Series:
    """One column in COPY's text format: \\N for NULL, backslash escapes for the special characters."""
    s = pd.Series(values, dtype=object)
    null = s.isna()
    first = next((v for v in values if v is not None), None)
    if isinstance(first, bool):
        s = s.map({True: "t", False: "f"})
    text = s.astype("string")
    for raw, esc in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.str.replace(raw, esc, regex=False)
    return text.where(~null, "\\N")


def _copy_postgres(conn, table: sa.Table, names: list[str], cols: list[list]) -> None:
    """COPY ... FROM STDIN: PostgreSQL's bulk load, far faster than INSERTs."""
    lines = _copy_text(cols[0])
    for values in cols[1:]:
        lines = lines + "\t" + _copy_text(values)
    buf = io.StringIO("\n".join(lines.tolist()) + "\n")
    cols_sql = ", ".join(f'"{n}"' for n in names)
    cursor = conn.connection.driver_connection.cursor()
    cursor.copy_expert(f'COPY "{table.name}" ({cols_sql}) FROM STDIN', buf)


SQLITE_ROWS_PER_INSERT = 400  # rows per INSERT statement (docs/benchmarks.md, "Several rows per INSERT")


def _insert_rows_sqlite(conn, head: str, row: str, bound: list[list]) -> None:
    """`head` VALUES `row`, `row`, ...: the bound columns' rows, several to a statement (SQLITE_ROWS_PER_INSERT,
    within the connection's limits on parameters and statement length), on the connection's own cursor in its
    transaction. A fifth less CPU than executemany's statement per row; SQLAlchemy's exec_driver_sql would copy
    every row's parameters first. Errors come out as SQLAlchemy's, as they would through it (naming one row's
    form of the statement)."""
    raw = conn.connection.driver_connection
    width, n = len(bound), len(bound[0])
    per = max(1, min(SQLITE_ROWS_PER_INSERT, raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width,
                     (raw.getlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH) - len(head)) // (len(row) + 1)))
    flat = list(itertools.chain.from_iterable(zip(*bound, strict=True)))
    full = head + ",".join([row] * per)  # one text: pysqlite compiles it once and keeps it in its cache
    cursor = raw.cursor()
    k = per
    try:
        for start in range(0, n, per):
            k = min(per, n - start)
            cursor.execute(full if k == per else head + ",".join([row] * k), flat[start * width:(start + k) * width])
    except sqlite3.Error as exc:  # the statement named by its first row, not hundreds of them
        raise sa.exc.DBAPIError.instance(f"{head}{row}, ... ({k} rows)", None, exc, sqlite3.Error) from exc
    finally:
        cursor.close()


def _sqlite_literal(value, dialect) -> str | None:
    """The SQL literal of a driver value (text or integer), as the dialect renders it, else None."""
    if type(value) is str and "\x00" not in value:
        kind = sa.String()
    elif type(value) is int and -2**63 <= value < 2**63:  # SQLite's integers (a larger one would be bound)
        kind = sa.Integer()
    else:  # None, booleans, numbers of other kinds: bound as they are
        return None
    return kind.literal_processor(dialect)(value)


def _one_value(s: pd.Series) -> bool:
    """Whether every row of a column (two or more) holds one and the same value, none of them missing. Asked of
    the column as it is, vectorised: equal values make equal driver values."""
    return len(s) > 1 and not s.isna().any() and bool((s == s.iloc[0]).all())


def _insert_sqlite(conn, table: sa.Table, frame: pd.DataFrame) -> None:
    """Insert a chunk of rows. A column with one value in every row (the run's id, its date) goes into the
    statement as a literal instead of being bound row by row, and is never made into Python objects: binding is
    most of a bulk load's own time (2.7 million claim sources and their two run ids: a tenth of it)."""
    names = _stored_columns(frame, table)
    literals = [_sqlite_literal(_driver_values(frame[n].iloc[:1], table.c[n])[0], conn.dialect)
                if _one_value(frame[n]) else None for n in names]
    if literals and all(lit is not None for lit in literals):  # rows need a bound column to be inserted at all
        literals[0] = None
    q = conn.dialect.identifier_preparer
    _insert_rows_sqlite(conn, f"INSERT INTO {q.format_table(table)} ({', '.join(q.quote(n) for n in names)}) VALUES ",
                        f"({', '.join('?' if lit is None else lit for lit in literals)})",
                        [_driver_values(frame[n], table.c[n]) for n, lit in zip(names, literals, strict=True)
                         if lit is None])


def insert_frame(conn, table: sa.Table, frame: pd.DataFrame, chunk: int = 100_000) -> int:
    """Bulk-load a frame's rows: COPY on PostgreSQL, driver executemany elsewhere; returns the row count.

    Converted to driver values a chunk at a time: Python objects for millions of rows at once would take
    gigabytes (claim_sources of a 1,000,000-person night)."""
    for start in range(0, len(frame), chunk):
        rows = frame.iloc[start:start + chunk]
        if conn.dialect.name == "sqlite":
            _insert_sqlite(conn, table, rows)
            continue
        names, cols = _driver_columns(rows, table)
        if conn.dialect.name == "postgresql":
            _copy_postgres(conn, table, names, cols)
        else:  # any other SQLAlchemy dialect: portable executemany
            conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)])
    return len(frame)


READ_CHUNK_ROWS = 100_000


def read_frame(conn, table: sa.Table, where: sa.ColumnElement | None = None,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a table (only these columns, if given) into a frame with dates as datetime64, integers as Int64 and
    text as string."""
    stmt = sa.select(*(table.c[c] for c in columns)) if columns is not None else sa.select(table)
    if where is not None:
        stmt = stmt.where(where)
    compiled = stmt.compile(conn, compile_kwargs={"literal_binds": True})
    # The raw driver path skips per-value SQLAlchemy type processing; types are restored vectorised. In chunks:
    # the driver's rows are a Python object per value, which for a whole night-sized table was several times
    # the typed frame (390 MiB for the 301,879 rows of a 1,000,000-person night's publicity list)
    # (with no rows, pandas still gives one empty chunk with the columns)
    parts = [typed(chunk, table, columns) for chunk in pd.read_sql_query(
        sa.text(str(compiled)), conn, chunksize=READ_CHUNK_ROWS)]
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def typed(frame: pd.DataFrame, table: sa.Table, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The table's columns of the frame (only these, if given), in the table's order, as read_frame gives them
    back after insert_frame: dates as datetime64 (a day; a time of day is not stored), booleans as boolean,
    integers as Int64, text as string, a column the frame lacks as missing values (what insert_frame stores)."""
    out = {}
    wanted = None if columns is None else set(columns)
    for col in table.columns if wanted is None else [c for c in table.columns if c.name in wanted]:
        s = frame[col.name] if col.name in frame.columns else pd.Series(pd.NA, index=frame.index, dtype=object)
        if isinstance(col.type, sa.Date):
            out[col.name] = pd.to_datetime(s).dt.normalize().astype("datetime64[s]")
        elif isinstance(col.type, sa.Boolean):
            out[col.name] = s.astype("boolean")
        elif isinstance(col.type, sa.Integer):
            out[col.name] = s.astype("Int64")
        else:
            out[col.name] = s.astype("string")
    return pd.DataFrame(out, index=frame.index)


PERSON_CODE_KEY_ENV = "SUBSIDY_LEDGER_PERSON_CODE_KEY"


def person_code_key(conn) -> bytes:
    """The key of the person codes: $SUBSIDY_LEDGER_PERSON_CODE_KEY if set, else the warehouse's own, made by
    migration 0013 (codes stay stable from night to night; the key never leaves the warehouse)."""
    env = os.environ.get(PERSON_CODE_KEY_ENV)
    if env:
        return env.encode()
    return _own_key(conn, "default")


WORK_STORE_KEY = "work-store"


def work_store_key(conn) -> bytes:
    """The secret each run's work-store key is derived from (workstore.Seal.for_run): the warehouse's own,
    made on first use beside the person codes' key, so that only who reads the warehouse reads the work files."""
    return _own_key(conn, WORK_STORE_KEY)


def _own_key(conn, name: str) -> bytes:
    """A 32-byte key kept in the warehouse under this name, made on first use (a concurrent maker's wins)."""
    t = person_code_keys
    found = conn.execute(sa.select(t.c.key_hex).where(t.c.name == name)).scalar()
    if found is None:  # never made, or deleted by hand: make one, and let a concurrent maker's key win
        try:
            with conn.begin_nested():
                conn.execute(t.insert().values(name=name, key_hex=secrets.token_hex(32),
                                               created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
        except sa.exc.IntegrityError:
            pass
        found = conn.execute(sa.select(t.c.key_hex).where(t.c.name == name)).scalar()
    return bytes.fromhex(found)
