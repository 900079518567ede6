"""The nightly sync as stages (extract, validate, eligibility, decide, post, pay, export).

Each stage reads what the previous one persisted (parquet in the run's work store, warehouse tables;
steps.py declares which) and returns a small dict, so the CLI and the Airflow DAG run the same code and
tasks pass only paths, counts and partition numbers between them. Eligibility and decide are steps over
person partitions (split, one step per partition, combine): the CLI runs the partitions in a process pool,
Airflow maps a task over them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from . import (
    assessment,
    assessment_report,
    contract,
    data_docs,
    decide,
    eligibility,
    export,
    extract,
    faults,
    gate,
    ledger,
    lineage,
    partition,
    payments,
    publicity,
    run_record,
    stage_process,
    steps,
    supervision,
    validate,
    warehouse,
    workstore,
)
from .gate import DataQualityError
from .money import decimal_yuan, yuan_to_fen
from .policy import PolicyBook
from .registries import REGISTRIES
from .rules import holds
from .rules import p2_objections as p2

log = logging.getLogger(__name__)
DATA_DOCS_ENV = "SUBSIDY_LEDGER_DATA_DOCS"
MAX_SHARE_ENV = "SUBSIDY_LEDGER_MAX_QUARANTINE_SHARE"
GATE_MIN_ROWS_ENV = "SUBSIDY_LEDGER_GATE_MIN_ROWS"
MAX_ROW_LOSS_ENV = "SUBSIDY_LEDGER_MAX_ROW_LOSS_SHARE"
MAX_REVERSAL_SHARE_ENV = "SUBSIDY_LEDGER_MAX_REVERSAL_SHARE"
MAX_REVERSAL_AMOUNT_ENV = "SUBSIDY_LEDGER_MAX_REVERSAL_AMOUNT"  # yuan
WORK_ENV = "SUBSIDY_LEDGER_WORK"
WORK_CONN_ENV = "SUBSIDY_LEDGER_WORK_CONN_ID"
# Airflow's run ids (manual__2022-06-30T02:00:00+08:00) pass; nothing that could climb out of a folder or
# start a spreadsheet formula does
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,249}")


class RunBusyError(RuntimeError):
    """Another run is already working on the same night's extracts."""


class ExportError(RuntimeError):
    """The extracts could not be written; the previous night's folder (if any) is left as it was."""


def _env_float(name: str, default: str) -> float:
    return float(os.environ.get(name, default))


def check_run_id(run_id: str) -> str:
    """The run id if it is safe in a path and a spreadsheet cell, else ValueError naming it."""
    if not RUN_ID_PATTERN.fullmatch(run_id or ""):
        raise ValueError(f"run id {run_id!r} is not allowed: use letters, digits and _ . : + - (at most 250), "
                         "starting with a letter or digit")
    return run_id


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs; plain values so it can travel through XCom."""

    sources: str
    as_of: str
    warehouse: str
    out: str
    run_id: str
    dag_id: str | None = None
    logical_date: str | None = None
    expectations: str | None = None
    policy_dir: str | None = None
    # Data-quality gate: stop before posting if any registry quarantines more than this share of its rows
    # (registries with fewer rows than gate_min_rows are too small for a share to mean much)
    max_quarantine_share: float = field(default_factory=lambda: float(os.environ.get(MAX_SHARE_ENV, "0.10")))
    gate_min_rows: int = field(default_factory=lambda: int(os.environ.get(GATE_MIN_ROWS_ENV, "100")))
    # GX Data Docs under <out>/data_docs/<run>/; $SUBSIDY_LEDGER_DATA_DOCS=0 turns them off (about 1 s a night)
    data_docs: bool = field(default_factory=lambda: os.environ.get(DATA_DOCS_ENV, "1") != "0")
    # Drop gate: stop before posting when a registry lost more than this share of last night's accepted rows
    max_row_loss_share: float = field(default_factory=lambda: _env_float(MAX_ROW_LOSS_ENV, "0.05"))
    # Reversal gate: stop before posting when the night would reverse more than this share of the active
    # payouts, or more than this many fen
    max_reversal_share: float = field(default_factory=lambda: _env_float(MAX_REVERSAL_SHARE_ENV, "0.02"))
    max_reversal_fen: int = field(default_factory=lambda: yuan_to_fen(
        os.environ.get(MAX_REVERSAL_AMOUNT_ENV, "1000000.00")))
    # what an operator accepted for this night (registry names, or "reversals") and who they are
    accept_drop_change: tuple[str, ...] = ()
    accepted_by: str | None = None
    # scratch files of the run, never under the extracts: default <system temp>/subsidy-ledger-work
    # a folder, or a URL (file://, s3://) every worker reaches through Airflow's object storage with the
    # credentials of connection work_conn_id ($SUBSIDY_LEDGER_WORK, $SUBSIDY_LEDGER_WORK_CONN_ID)
    work_dir: str | None = field(default_factory=lambda: os.environ.get(WORK_ENV))
    work_conn_id: str | None = field(default_factory=lambda: os.environ.get(WORK_CONN_ENV))
    # person partitions (K) and the processes that run them; None: chosen from the drop's size and the cores
    # ($SUBSIDY_LEDGER_PARTITIONS, $SUBSIDY_LEDGER_PARTITION_WORKERS); the answers are the same for every K
    partitions: int | None = None
    partition_workers: int | None = None
    # in Airflow: the connections the URLs above come from, resolved inside each task (never in XCom)
    warehouse_conn_id: str | None = None
    sources_conn_id: str | None = None
    # SQLite: the stages leave their commits in the write-ahead log for the night's checkpointer (pipeline.run's
    # warehouse.checkpointer) instead of copying it into the database file in their own time
    checkpointer: bool = False

    def __post_init__(self):
        check_run_id(self.run_id)
        dt.date.fromisoformat(self.as_of)
        object.__setattr__(self, "accept_drop_change", tuple(self.accept_drop_change or ()))
        unknown = sorted(set(self.accept_drop_change) - set(REGISTRIES) - {gate.REVERSALS})
        if unknown:  # LookupError: the CLI reports it in one line (exit 2), the DAG fails its configure task
            raise LookupError(f"--accept-drop-change names no registry: {', '.join(unknown)} "
                              f"(registries: {', '.join(REGISTRIES)}, or {gate.REVERSALS})")

    @property
    def as_of_date(self) -> dt.date:
        """The as-of date as a date."""
        return dt.date.fromisoformat(self.as_of)

    @property
    def work(self):
        """Work store of this run (frames between stages and partitions; a Path, or an ObjectStoragePath for a
        URL): its frames hold full identity numbers, sealed with the run's key (_seal), and it lives outside the
        extracts, readable by the pipeline's user only, and goes when the run ends either way."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.run_id)
        base = self.work_dir or str(Path(tempfile.gettempdir()) / "subsidy-ledger-work")
        return workstore.root(base, self.work_conn_id) / safe

    def to_dict(self) -> dict:
        """Plain dict for XCom."""
        return asdict(self)


def _engine(cfg: RunConfig):
    # unpooled: a stage stopped by a gate or an error between its blocks leaves no connection behind
    return warehouse.connect(cfg.warehouse, pooled=False, checkpoints=not cfg.checkpointer)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _set_run(conn, run_id: str, **values) -> None:
    conn.execute(sa.update(warehouse.runs).where(warehouse.runs.c.run_id == run_id).values(**values))


def enter(cfg: RunConfig, step: str, conn=None) -> None:
    """Record that the night enters a step (run_record.RunStateError if its record forbids it, e.g. a gate
    stopped it earlier); post's re-decide inside its own transaction (conn given) records nothing."""
    if conn is None:
        _in(cfg, None, lambda c: run_record.move(c, cfg.run_id, run_record.Status.RUNNING, step))


def _run_row(conn, run_id: str) -> dict:
    row = conn.execute(sa.select(warehouse.runs).where(warehouse.runs.c.run_id == run_id)).mappings().first()
    return dict(row) if row else {}


def stage_extract(cfg: RunConfig) -> dict:
    """Read the drop folder or registry database (DropError if a registry cannot be read as such) and park
    the raw rows as parquet. The run's work starts empty: a killed earlier attempt of the same run may have left
    files (a registry this drop lacks, a partition beyond this night's K) that no step of this one rewrites."""
    workstore.sweep_stale(cfg.work.parent)
    workstore.remove(cfg.work)
    work = cfg.work / "raw"
    workstore.make_dirs(work)
    seal = _seal(cfg)  # the first step makes the warehouse's work-store key if it has none yet
    if extract.is_database_url(cfg.sources):
        manifest = extract.database_to_parquet(cfg.sources, work, seal)
    else:
        sources = Path(cfg.sources)
        problems = extract.drop_problems(sources)  # every path before any file: a missing one stops at once
        # the registries are read and parked in a pool of processes, one registry each at a time, the largest
        # first so that the processes end together; each gives back only what the manifest says of it.
        names = sorted(REGISTRIES, key=lambda n: -_file_bytes(sources / REGISTRIES[n].filename))
        processes = partition.workers(len(names), cfg.partition_workers)
        entries = partition.run(_park_registry, names, sources, problems, cfg, seal, processes=processes)
        parked = dict(zip(names, entries, strict=True))
        manifest = {n: parked[n] for n in REGISTRIES}  # in the drop's order, whatever was read first
    workstore.write_json(work / "manifest.json", manifest)
    engine = _engine(cfg)
    with engine.begin() as conn:
        run_record.start(conn, cfg.run_id, as_of=cfg.as_of_date, sources=extract.describe_sources(cfg.sources),
                         dag_id=cfg.dag_id, logical_date=cfg.logical_date)
    engine.dispose()
    return {"manifest": str(work / "manifest.json"), "rows": {k: v["rows"] for k, v in manifest.items()}}


def _file_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _park_registry(name: str, sources: Path, problems: Mapping[str, str | None], cfg: RunConfig,
                   seal: workstore.Seal) -> dict:
    """Read one registry of the drop folder and park its raw rows as parquet in the run's work; its manifest
    entry. The work store's path is made here from cfg, not handed over: a pool pickles what it hands over, and
    a pickled ObjectStoragePath loses its connection (it would write to AWS's own S3 with no credentials)."""
    raw = extract.read_from_drop(sources, name, problems[name])
    path = cfg.work / "raw" / f"{name}.parquet"
    workstore.write_frame(path, raw.frame, seal=seal)
    return {"path": str(path), "present": raw.present, "encoding": raw.encoding, "sha256": raw.sha256,
            "rows": len(raw.frame), "extra_columns": list(raw.extra_columns), "problem": raw.problem}


def release_work(cfg: RunConfig, step: str) -> list[str]:
    """After a step: remove the work folders no later step reads (steps.STEPS declares who reads what), so
    full identity numbers stay in the store no longer than needed. Returns the folders removed."""
    spent = steps.spent_work(step)
    for folder in spent:
        workstore.remove(cfg.work / folder)
    return spent


def discard_work(cfg: RunConfig) -> None:
    """Delete the run's work (full identity numbers in it); a rerun extracts the drop again."""
    workstore.remove(cfg.work)


def _seal(cfg: RunConfig, conn=None) -> workstore.Seal:
    """The key this run's work files are sealed with, from the warehouse's work-store key (in the caller's
    transaction if given): the frames in the store hold full identity and account numbers."""
    return _in(cfg, conn, lambda c: workstore.Seal.for_run(warehouse.work_store_key(c), cfg.run_id))


def _load_raw(cfg: RunConfig, kept: dict[str, extract.RawRegistry],
              seal: workstore.Seal) -> Iterator[tuple[str, extract.RawRegistry]]:
    """Each registry as extract parked it, read when its turn comes, so that validation holds one registry's
    raw rows at a time; kept gets each registry without its rows (what the reconciliation says of its file)."""
    manifest = workstore.read_json(cfg.work / "raw" / "manifest.json")

    def turn(name: str) -> tuple[bool, int]:
        # first those others' checks read, then the largest first: the small ones are validated while the
        # large ones are staged beside (stage_validate), and the night does not end waiting for a large one
        return name not in validate.READ_BY_OTHERS, -(cfg.work / "raw" / f"{name}.parquet").stat().st_size

    for name in sorted(manifest, key=turn):
        m = manifest[name]
        frame = workstore.read_frame(cfg.work / "raw" / f"{name}.parquet", seal=seal)
        for c in frame.columns:
            if c != contract.ROW_COL:
                frame[c] = frame[c].astype("string")
        raw = extract.RawRegistry(REGISTRIES[name], frame, m["present"], m["encoding"], m["sha256"],
                                  tuple(m["extra_columns"]), m.get("problem"))
        kept[name] = dataclasses.replace(raw, frame=contract.empty_like(frame))
        yield name, raw
        del frame, raw  # before the next registry's rows are read


STAGING_HOLD_ROWS = 500_000  # validated rows held for staging beside validation (a bound, whatever the drop)


def stage_validate(cfg: RunConfig) -> dict:
    """Validate every registry with GX; stage accepted rows, record quarantine and reconciliation; then the
    quality and drop gates decide whether the night goes on."""
    enter(cfg, "validate")
    raws: dict[str, extract.RawRegistry] = {}  # filled as validation reads them, without their rows
    engine = _engine(cfg)
    docs = Path(cfg.out) / "data_docs" / cfg.work.name if cfg.data_docs else None
    if docs:
        shutil.rmtree(docs, ignore_errors=True)
    exp_dir = Path(cfg.expectations) if cfg.expectations else None
    validated_at = _now()
    with engine.connect() as conn:  # P3: a bank result must answer an instruction the warehouse issued
        issued = warehouse.read_frame(conn, warehouse.payment_instructions)
    results: dict[str, validate.Validated] = {}
    # each registry is staged as its verdict comes, and only its counts and quarantine are kept (a rerun of the
    # night replaces its staged rows). With processes (stage_process.wanted), forked processes stage the
    # registries one at a time (one writer) while this one validates the next ones: the warehouse's bulk load
    # and GX each keep a core busy. Verdicts waiting to be staged are held here up to STAGING_HOLD_ROWS rows.
    seal = _seal(cfg)
    stager = stage_process.Serial(STAGING_HOLD_ROWS, lambda name: faults.checkpoint(f"validate:staged:{name}"),
                                  inline=not stage_process.wanted(), what="staging")
    try:
        for name, v in validate.validate_each(_load_raw(cfg, raws, seal), cfg.as_of_date, exp_dir, docs_dir=docs,
                                              run_name=cfg.run_id):
            if name == "payment_results":
                v = validate.quarantine_more(v, payments.unknown_results(v.accepted, issued),
                                             validate.UNKNOWN_INSTRUCTION_REASON, ("instruction_id", "payout_id"))
            stager.submit(name, stage_accepted, cfg, name, v.accepted, engine, seal, weight=len(v.accepted))
            results[name] = v.without_rows()
            del v
        stager.finish()
    finally:
        stager.stop()  # validation failed: the queued are not staged, the one staging is rolled back
    results = {n: results[n] for n in REGISTRIES if n in results}  # the drop's order, whatever came first
    with engine.begin() as conn:
        for t in (warehouse.quarantine, warehouse.reconciliation, warehouse.validation_results):
            conn.execute(t.delete().where(t.c.run_id == cfg.run_id))
        warehouse.insert_frame(conn, warehouse.validation_results, pd.DataFrame([{
            "run_id": cfg.run_id, "registry": n, "suite": v.gx_summary["suite"], "success": v.gx_summary["success"],
            "evaluated": v.gx_summary["evaluated"], "successful": v.gx_summary["successful"],
            "rows_checked": v.gx_summary["rows_checked"],
            "result_json": json.dumps(v.gx_summary["expectations"], ensure_ascii=False),
            "data_docs": v.gx_summary.get("data_docs"), "validated_at": validated_at} for n, v in results.items()]))
        q = pd.concat([v.quarantine for v in results.values()], ignore_index=True).assign(run_id=cfg.run_id)
        warehouse.insert_frame(conn, warehouse.quarantine, q)
        rec = pd.DataFrame([{**v.reconciliation,
                             "file_name": n if raws[n].encoding == "database" else raws[n].registry.filename,
                             "present": raws[n].present, "encoding": raws[n].encoding, "sha256": raws[n].sha256,
                             "gx_success": v.gx_summary["success"], "gx_evaluated": v.gx_summary["evaluated"],
                             "problem": raws[n].problem, "run_id": cfg.run_id} for n, v in results.items()])
        warehouse.insert_frame(conn, warehouse.reconciliation, rec)
        _set_run(conn, cfg.run_id, mode="full")
        previous = _previous_figures(conn, cfg.run_id)
    figures = rec.to_dict("records")
    tonight = [gate.RegistryFigures(r["registry"], r["file_name"], REGISTRIES[r["registry"]].required,
                                    bool(r["present"]), int(r["accepted"]), raws[r["registry"]].problem)
               for r in figures]
    quality = gate.quality_findings(figures, cfg.max_quarantine_share, cfg.gate_min_rows)
    drop = gate.drop_findings(tonight, previous, cfg.max_row_loss_share)
    _pass_gates(engine, cfg, "validate",
                [("quality_gate", "data-quality gate", quality), ("drop_gate", "drop gate", drop)],
                [s for s in cfg.accept_drop_change if s != gate.REVERSALS])
    engine.dispose()
    if docs:  # the gate passed: a registry "failed" by GX only for its quarantined rows says so
        data_docs.restate(docs, {n: len(v.quarantine) for n, v in results.items()})
    return {"reconciliation": {n: v.reconciliation for n, v in results.items()},
            "quality": {n: {"suite": v.gx_summary["suite"], "success": v.gx_summary["success"],
                            "rows_checked": v.gx_summary["rows_checked"],
                            "expectations": v.gx_summary["expectations"]} for n, v in results.items()},
            "gx_rows_checked": sum(v.gx_summary["rows_checked"] for v in results.values())}


def stage_accepted(cfg: RunConfig, name: str, accepted: pd.DataFrame, engine, seal: workstore.Seal) -> None:
    """Stage a registry's accepted rows in the warehouse (one transaction; a rerun replaces the run's rows)
    and park them in the work store for pay and export. The engine is the night's unpooled one (_engine): it
    holds no connection, so a forked staging process opens its own through it."""
    accepted = accepted.assign(validated_run=cfg.run_id)  # lineage: the GX validation that accepted the row
    with engine.begin() as conn:
        table = warehouse.STAGING[name]
        conn.execute(table.delete().where(table.c.run_id == cfg.run_id))
        staged = accepted.rename(columns={contract.ROW_COL: "source_row", contract.HASH_COL: "row_hash"})
        warehouse.insert_frame(conn, table, staged.assign(run_id=cfg.run_id))
    workstore.write_frame(_accepted_path(cfg, name), accepted, seal=seal)


def _previous_figures(conn, run_id: str) -> dict[str, gate.RegistryFigures] | None:
    """Each registry as the last succeeded night (not a replay) accepted it; None before the first night."""
    r, rec = warehouse.runs, warehouse.reconciliation
    last = conn.execute(
        sa.select(r.c.run_id).where(r.c.status == "succeeded", r.c.run_id != run_id,
                                    sa.or_(r.c.mode.is_(None), r.c.mode != "replay"))
        .order_by(r.c.finished_at.desc()).limit(1)).scalar()
    if last is None:
        return None
    rows = conn.execute(sa.select(rec).where(rec.c.run_id == last)).mappings().all()
    return {row["registry"]: gate.RegistryFigures(row["registry"], row["file_name"], False, bool(row["present"]),
                                                 int(row["accepted"])) for row in rows}


def _pass_gates(engine, cfg: RunConfig, stage: str, gates: list[tuple[str, str, list[gate.Finding]]],
                subjects: list[str]) -> None:
    """Record what the operator accepted; stop the night (status, alert, DataQualityError) on any other finding.

    gates: (kind, label, findings) per gate; subjects: the accepted names this stage answers for.
    """
    accepted = set(cfg.accept_drop_change)
    stopping, parts = None, []
    waived = {}
    for kind, label, findings in gates:
        stop, ok = gate.split_accepted(findings, accepted)
        waived.update({f.subject: f.message for f in ok})
        if stop:
            stopping = stopping or kind
            parts.append(gate.stop_message(label, stop, _accept_hint(stop)))
    with engine.begin() as conn:
        now = _now()
        for subject in subjects:
            conn.execute(warehouse.gate_acceptances.insert().values(
                run_id=cfg.run_id, subject=subject, accepted_by=cfg.accepted_by or "unknown", accepted_at=now,
                stage=stage, finding=waived.get(subject)))
        if stopping:
            message = " | ".join(parts)
            run_record.move(conn, cfg.run_id, run_record.Status.STOPPED, stage, stopping)
            raise_alert(conn, cfg.run_id, cfg.dag_id, stage, stopping, message)
    if stopping:
        raise DataQualityError(message)


def _accept_hint(findings: list[gate.Finding]) -> str:
    names = " ".join(f"--accept-drop-change {f.subject}" for f in findings)
    return f"if the change is real, run the night again with {names}"


def raise_alert(conn, run_id: str | None, dag_id: str | None, task_id: str | None, kind: str, message: str) -> None:
    """Record an alert in the warehouse (and the log) for whoever watches the nightly sync."""
    log.info("alert %s %s/%s/%s: %s", kind, dag_id, run_id, task_id, message)
    conn.execute(warehouse.alerts.insert().values(raised_at=_now(), run_id=run_id, dag_id=dag_id, task_id=task_id,
                                                  kind=kind, message=message[:4000]))


STAGED_AS = {contract.HASH_COL: "row_hash", contract.ROW_COL: "source_row"}  # accepted column -> staging's


def load_staging(conn, run_id: str, names: tuple[str, ...] = tuple(REGISTRIES),
                 columns: Mapping[str, Sequence[str]] | None = None) -> dict[str, pd.DataFrame]:
    """The staged registries of a run (these names; of a registry in `columns`, only those columns), typed."""
    out = {}
    for name in names:
        table = warehouse.STAGING[name]
        wanted = (columns or {}).get(name)
        frame = warehouse.read_frame(conn, table, table.c.run_id == run_id,
                                     None if wanted is None else [STAGED_AS.get(c, c) for c in wanted])
        if "passed" in frame:
            frame["passed"] = frame["passed"].fillna(False).astype(bool)
        out[name] = frame.rename(columns={"row_hash": contract.HASH_COL, "source_row": contract.ROW_COL})
    return out


def _accepted(cfg: RunConfig, conn, step: str,
              columns: Mapping[str, Sequence[str]] | None = None) -> dict[str, pd.DataFrame]:
    """This run's accepted rows of the registries the step reads (steps.accepted_registries): the parquet the
    validate task left, else the warehouse staging tables. Of a registry named in `columns`, only those columns
    (the large registries a step reads a few columns of)."""
    return dict(_accepted_each(cfg, conn, step, columns))


def _accepted_path(cfg: RunConfig, name: str):
    """Where validate parks a registry's accepted rows in the run's work store (and later steps read them)."""
    return cfg.work / "accepted" / f"{name}.parquet"


def _accepted_each(cfg: RunConfig, conn, step: str, columns: Mapping[str, Sequence[str]] | None = None,
                   only: Sequence[str] | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
    """_accepted one registry at a time (of these names only, if given), each read when its turn comes."""
    names = steps.accepted_registries(step)
    in_store = _accepted_in_store(cfg, names)
    seal = _seal(cfg, conn) if in_store else None
    for name in names if only is None else [n for n in names if n in only]:
        wanted = (columns or {}).get(name)
        yield name, (workstore.read_frame(_accepted_path(cfg, name), wanted, seal=seal) if in_store
                     else load_staging(conn, cfg.run_id, (name,), columns)[name])


def _accepted_in_store(cfg: RunConfig, names: Sequence[str]) -> bool:
    """Whether the validate step's parquet of every one of these registries is still in the run's work store."""
    return all(workstore.has(_accepted_path(cfg, n)) for n in names)


ELIGIBILITY = (  # intermediate table, builder, key (the order decide reads a partition of it in, whatever K is)
    (warehouse.certificate_eligibility, eligibility.build_certificate_eligibility, ("certificate_no", "person_id")),
    (warehouse.apprentice_eligibility, eligibility.build_apprentice_eligibility, contract.CLAIM_KEY),
    (warehouse.living_allowance_eligibility, eligibility.build_living_allowance_eligibility,
     ("class_id", "person_id")),
    (warehouse.training_eligibility, eligibility.build_training_eligibility, ("class_id", "person_id")),
)
CITY_OVERLAP_KEY = ("reference", "person_id", "city_certificate_no")


def eligibility_partition(stg: dict[str, pd.DataFrame], as_of: dt.date, book: PolicyBook) -> list[pd.DataFrame]:
    """The eligibility tables (ELIGIBILITY's order) of one person partition."""
    return [build(stg, as_of, book) for _, build, _ in ELIGIBILITY]


def _timed_partition(folder, i: int, step: str, fn) -> None:
    """Run fn and record how long partition i took at this step (the combining step reports it)."""
    started = time.perf_counter()
    fn()
    workstore.write_json(folder / f"p{i}" / "seconds" / f"{step}.json", round(time.perf_counter() - started, 3))


def _seconds(folder, k: int, step: str) -> list[float]:
    return [workstore.read_json(folder / f"p{i}" / "seconds" / f"{step}.json") for i in range(k)]


def _in(cfg: RunConfig, conn, fn):
    """fn(conn) in the caller's transaction (post's re-decide, under the lock), else in a new one."""
    if conn is not None:
        return fn(conn)
    engine = _engine(cfg)
    with engine.begin() as c:
        out = fn(c)
    engine.dispose()
    return out


def eligibility_split(cfg: RunConfig, conn=None) -> dict:
    """Cut the accepted registries into the night's person partitions in the work store."""
    enter(cfg, "eligibility_split", conn)
    return {"partitions": _in(cfg, conn, lambda c: _cut_accepted(cfg, c, "eligibility_split"))}


def _cut_accepted(cfg: RunConfig, conn, step: str) -> list[int]:
    """Cut the accepted registries the step reads into the eligibility step's person partitions; their numbers.
    K comes from the persons the registries name (their person_id columns alone), then the registries are cut
    one at a time in each process (all of them at once took eligibility's process to 8.1 GiB at 10,000,000
    persons; 5.7 GiB now): in a pool of processes from the work store, the largest first so that the processes
    end together (one process alone left the other core idle for 5 s of a 1,000,000-person night), else here
    from the warehouse's staging tables, through this process's connection."""
    names = steps.accepted_registries(step)
    person = [n for n in names if "person_id" in REGISTRIES[n].columns]
    ids = dict(_accepted_each(cfg, conn, step, {n: ("person_id",) for n in person}, only=person))
    k = partition.count(ids, cfg.partitions)
    del ids
    folder, seal = cfg.work / "eligibility", _seal(cfg, conn)
    if not _accepted_in_store(cfg, names):
        return partition.save(folder, _accepted_each(cfg, conn, step), k, seal)
    order = sorted(names, key=lambda n: -_file_bytes(_accepted_path(cfg, n)))
    whole = dict(zip(order, partition.run(_cut_registry, order, cfg, k, seal,
                                          processes=partition.workers(len(order), cfg.partition_workers)),
                     strict=True))
    return partition.write_plan(folder, k, [n for n in names if whole[n]], [n for n in names if not whole[n]])


def _cut_registry(name: str, cfg: RunConfig, k: int, seal: workstore.Seal) -> bool:
    """Cut one accepted registry from the work store into the eligibility step's K partitions; whether it went
    whole (a shared table). The paths are made here from cfg, as in _park_registry."""
    frame = workstore.read_frame(_accepted_path(cfg, name), seal=seal)
    return partition.put_cut(cfg.work / "eligibility", name, frame, k, seal)


def eligibility_part(cfg: RunConfig, i: int) -> dict:
    """Build the eligibility tables of person partition i (from the work store, into the work store)."""
    folder, seal = cfg.work / "eligibility", _seal(cfg)

    def build():
        tables = eligibility_partition(partition.load(folder, i, seal), cfg.as_of_date,
                                       PolicyBook.load(cfg.policy_dir))
        for (table, _, key), frame in zip(ELIGIBILITY, tables, strict=True):
            _put_sorted(folder, i, table, frame, key, seal)

    _timed_partition(folder, i, "eligibility", build)
    return {"partition": i}


# A step's per-partition tables go into the warehouse merged in their primary key's order, several partitions
# at a time: loaded partition by partition, each sorted, every partition's rows swept the night's whole stretch
# of the key's index again (the claim sources of a 10,000,000-person night, 27 million rows from 34
# partitions: 246 s one partition after another, 153 s merged into one run). The CLI's night loads them in
# LOAD_GROUPS groups as the partitions finish, so that the load (one writer) runs beside the partitions still
# at work; a combining task on its own (Airflow) merges all K in one. A partition's rows are written and merged
# CHUNK_ROWS at a time, so that merging holds one chunk of each partition.
LOAD_GROUPS = 4
CHUNK_ROWS = 50_000


def _put_sorted(folder, i: int, table: sa.Table, frame: pd.DataFrame, key: Sequence[str],
                seal: workstore.Seal) -> None:
    """Write partition i's rows of `table` in key order (sorted here, in the partition's process), in chunks."""
    frame = frame.sort_values(list(key), kind="stable", ignore_index=True)
    partition.put_chunks(folder, i, f"out/{table.name}", frame, seal, CHUNK_ROWS)


def _load_groups(k: int, done: Iterable[int] | None) -> Iterable[Sequence[int]]:
    """The partitions to load together: LOAD_GROUPS groups of them as they finish, else all K at once."""
    return [range(k)] if done is None else partition.in_groups(done, k, LOAD_GROUPS)


def _store_merged(c, run_id: str, table: sa.Table, folder, parts: Sequence[int], key: Sequence[str],
                  seal: workstore.Seal) -> int:
    """Insert the partitions' rows of `table` (_put_sorted's), merged into key order; the rows inserted."""
    return sum(warehouse.insert_frame(c, table, frame.assign(run_id=run_id)) for frame in partition.merge(
        (partition.chunks(folder, i, f"out/{table.name}", seal) for i in parts), key))


def eligibility_combine(cfg: RunConfig, conn=None, done: Iterable[int] | None = None) -> dict:
    """Store the partitions' eligibility tables for this run, merged in key order (their primary key's). done:
    the partitions as their eligibility_part finishes (stage_eligibility), stored in groups as they come
    (_load_groups); by default all of them, already built (Airflow's mapped tasks)."""
    enter(cfg, "eligibility", conn)
    folder = cfg.work / "eligibility"
    k = partition.plan(folder)["k"]

    def store(c) -> dict:
        seal = _seal(cfg, c)
        rows = {table.name: 0 for table, _, _ in ELIGIBILITY}
        for table, _, _ in ELIGIBILITY:
            c.execute(table.delete().where(table.c.run_id == cfg.run_id))
        for group in _load_groups(k, done):
            for table, _, key in ELIGIBILITY:
                rows[table.name] += _store_merged(c, cfg.run_id, table, folder, group, key, seal)
        return rows

    return {"rows": _in(cfg, conn, store), "partitions": k, "partition_seconds": _seconds(folder, k, "eligibility")}


def _run_partitions(cfg: RunConfig, fn, k: int) -> None:
    """fn(cfg, i) for every partition, in a pool of processes (each reads its own partition from the store)."""
    with _partitions_done(cfg, fn, k) as done:
        for _ in done:
            pass


@contextlib.contextmanager
def _partitions_done(cfg: RunConfig, fn, k: int) -> Iterator[Iterator[int]]:
    """fn(cfg, i) for every partition, in a pool of processes; the block gets the partitions as they finish."""
    processes = partition.workers(k, cfg.partition_workers)
    with partition.as_done(_partition_call, range(k), fn, cfg, processes=processes) as done:
        yield done
    log.info("%s: %d person partitions in %d processes", fn.__name__, k, processes)


def _partition_call(i: int, fn, cfg: RunConfig):
    return fn(cfg, i)


def stage_eligibility(cfg: RunConfig, conn=None) -> dict:
    """Join the accepted registries into the intermediate eligibility tables (one per claim kind), person
    partition by partition (Airflow maps eligibility_part over the partitions instead)."""
    k = len(eligibility_split(cfg, conn)["partitions"])
    with _partitions_done(cfg, eligibility_part, k) as done:
        return eligibility_combine(cfg, conn, done)


def _copy_path(cfg: RunConfig, folder: str, table: sa.Table):
    return cfg.work / folder / f"{table.name}.parquet"


def _keep(cfg: RunConfig, folder: str, frame: pd.DataFrame, table: sa.Table, seal: workstore.Seal) -> None:
    """Leave a copy of the rows just stored in `table` in the work store's `folder`, typed as the warehouse gives
    them back, so that later steps read it instead of reading the table back (steps.py declares who)."""
    workstore.write_frame(_copy_path(cfg, folder, table), warehouse.typed(frame, table), seal=seal)


def _kept(cfg: RunConfig, folder: str, conn, table: sa.Table, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """This run's rows of `table` (only these columns, if given): the copy _keep left in `folder`, else the
    warehouse's (the copy goes with the run's work; a task cleared and run again later reads the table)."""
    path = _copy_path(cfg, folder, table)
    if workstore.has(path):  # typed again: parquet keeps no datetime64[s], it gives back [ms]
        return warehouse.typed(workstore.read_frame(path, columns, seal=_seal(cfg, conn)), table, columns)
    return warehouse.read_frame(conn, table, table.c.run_id == cfg.run_id, columns)


ELIGIBILITY_FLAGS = {  # the eligibility tables' flags: a missing flag is false (the rules test them as booleans)
    warehouse.certificate_eligibility.name: ("civil_servant", "insured", "key_group", "paid_by_city"),
    warehouse.apprentice_eligibility.name: ("school_partner", "in_post_one_year"),
    warehouse.living_allowance_eligibility.name: ("filed_in_advance", "qualifying_group", "overlapping_attendance"),
    warehouse.training_eligibility.name: ("filed_in_advance", "passed", "project_filed", "institution_qualified",
                                          "overlapping_attendance"),
}


def _eligibility(cfg: RunConfig, i: int, table: sa.Table, seal: workstore.Seal) -> pd.DataFrame:
    """Partition i's rows of this run's eligibility table, as eligibility_combine stored them (typed as the
    warehouse gives them back, flags false where missing) and in the table's key order (_put_sorted's)."""
    frame = warehouse.typed(partition.get_chunked(cfg.work / "eligibility", i, f"out/{table.name}", seal).assign(
        run_id=cfg.run_id), table)
    for c in ELIGIBILITY_FLAGS[table.name]:
        frame[c] = frame[c].fillna(False).astype(bool)
    return frame


def _eligibility_partitions(cfg: RunConfig, conn) -> int:
    """K of the eligibility step's partitions (accepted registries and eligibility tables), which decide reads
    as they are. When they are gone (a task cleared and run again after the run's work went), they are cut again
    from the warehouse: its staging tables and this run's eligibility tables."""
    folder, seal = cfg.work / "eligibility", _seal(cfg, conn)
    if workstore.has(folder / "plan.json"):
        k = partition.plan(folder)["k"]
        if all(partition.has_chunks(folder, i, f"out/{t.name}") for i in range(k) for t, _, _ in ELIGIBILITY):
            return k
    k = len(_cut_accepted(cfg, conn, "decide_split"))
    for table, _, key in ELIGIBILITY:
        stored = warehouse.read_frame(conn, table, table.c.run_id == cfg.run_id)
        for i, part in enumerate(partition.cut(stored, k)):
            _put_sorted(folder, i, table, part, key, seal)
    return k


def _decide_part(cfg: RunConfig, i: int, seal: workstore.Seal, eligible: tuple[str, ...],
                 extra: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
    """What decide reads of partition i: the eligibility step's partition (accepted registries), the named
    eligibility tables of it (`eligible`: _ELIGIBLE's names), and what decide_split (and the steps after it:
    `extra`) left in decide's."""
    return {**partition.load(cfg.work / "eligibility", i, seal),
            **{name: _eligibility(cfg, i, _ELIGIBLE[name], seal) for name in eligible},
            **partition.load(cfg.work / "decide", i, seal, extra=extra)}


# names of the per-person frames decide adds to a partition beside the accepted registries
_CERTS, _APPRENTICES, _LIVING, _TRAINING, _STATE, _TRAINED = (
    "~certificate_eligibility", "~apprentice_eligibility", "~living_allowance_eligibility", "~training_eligibility",
    "~claim_state", "~training_decisions")
_ELIGIBLE = {_CERTS: warehouse.certificate_eligibility, _APPRENTICES: warehouse.apprentice_eligibility,
             _LIVING: warehouse.living_allowance_eligibility, _TRAINING: warehouse.training_eligibility}


def _paid(state: pd.DataFrame) -> pd.DataFrame:
    return state.loc[state["net_fen"].astype("int64") > 0, contract.CLAIM_KEY]


def training_partition(part: dict[str, pd.DataFrame], quarantine: pd.DataFrame, book: PolicyBook) -> pd.DataFrame:
    """R7 for one person partition, before the projects' budgets (a cross-person pass) are applied."""
    training = part[_TRAINING]
    claims = pd.DataFrame({"subsidy_type": decide.r7.SUBSIDY_TYPE, "reference": training["class_id"],
                           "person_id": training["person_id"]}, index=training.index)
    return decide.decide_training_subsidies(training, book, _paid(part[_STATE]),
                                            holds.quarantined_rows(claims, quarantine, part["training_classes"]),
                                            budget=False)


def decisions_partition(part: dict[str, pd.DataFrame], quarantine: pd.DataFrame, book: PolicyBook,
                        as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """R1-R6 and the holds and objections for one person partition, given its R7 decisions (budgets applied):
    (decisions, city overlaps, claim sources)."""
    state, classes, trained = part[_STATE], part["training_classes"], part[_TRAINED]
    paid = _paid(state)
    certs = part[_CERTS]
    # R1 check 7 asks whether the person's occupation and level was paid as a training subsidy
    approved = trained.loc[trained["decision"] == "approved", ["person_id", "occupation_code", "level"]]
    city = eligibility.city_paid_by(part["city_payouts"], as_of)
    parts = [
        decide.decide_certificates(certs, book, paid, city, approved),
        decide.decide_apprentices(part[_APPRENTICES], book, as_of, paid),
        decide.decide_living_allowances(part[_LIVING], book, as_of),
        trained,
    ]
    overlaps = decide.city_overlaps(certs, parts[0], paid, city)
    fresh = [p for p in parts if len(p)]
    d = pd.concat(fresh, ignore_index=True) if fresh else parts[0]
    d = holds.hold(d, holds.quarantined_rows(d, quarantine, classes))
    orphans = _orphans_on_hold(state, d, quarantine, classes)
    if len(orphans):  # in the decisions' dtypes: a column concatenated with an object one becomes object (slow)
        d = pd.concat([d, orphans.astype({c: d[c].dtype for c in orphans.columns if c in d})], ignore_index=True)
    d = p2.apply(d, part["objections"], as_of)
    return d, overlaps, lineage.claim_sources(part, d)


_QUARANTINE = "~quarantine"


def decide_split(cfg: RunConfig, conn=None) -> dict:
    """Cut what decide reads beyond the eligibility step's partitions (the ledger's claim state, the quarantine)
    into the same person partitions in the work store."""
    enter(cfg, "decide_split", conn)

    def read(conn) -> tuple[int, dict[str, pd.DataFrame]]:
        k = _eligibility_partitions(cfg, conn)
        return k, {
            _STATE: ledger.claim_state(conn, contract.SUBSIDY_TYPES),  # the paid claims and the orphans
            _QUARANTINE: warehouse.read_frame(conn, warehouse.quarantine,
                                              warehouse.quarantine.c.run_id == cfg.run_id)}

    k, frames = _in(cfg, conn, read)
    return {"partitions": partition.save(cfg.work / "decide", frames, k, _seal(cfg, conn), whole=(_QUARANTINE,))}


def training_part(cfg: RunConfig, i: int) -> dict:
    """R7 for person partition i, before the projects' budgets."""
    folder, seal = cfg.work / "decide", _seal(cfg)

    def decide_r7():
        part = _decide_part(cfg, i, seal, eligible=(_TRAINING,))  # R7 reads no other eligibility table
        trained = training_partition(part, part[_QUARANTINE], PolicyBook.load(cfg.policy_dir))
        partition.put(folder, i, "r7", trained, seal)

    _timed_partition(folder, i, "training", decide_r7)
    return {"partition": i}


def training_budget(cfg: RunConfig, conn=None) -> dict:
    """The one cross-person pass: each project's filed budget over all its trainees' R7 decisions; the result
    goes back to each partition (R1 check 7 reads R7's approvals)."""
    enter(cfg, "training_budget", conn)
    folder, seal = cfg.work / "decide", _seal(cfg, conn)
    k = partition.plan(folder)["k"]
    trained, state = (pd.concat(partition.gather(folder, k, name, seal), ignore_index=True)
                      for name in ("r7", _STATE))
    training = pd.concat([_eligibility(cfg, i, warehouse.training_eligibility, seal) for i in range(k)],
                         ignore_index=True)
    trained = decide.hold_over_budget(trained, training, _paid(state))
    for i, part in enumerate(partition.cut(trained, k)):
        partition.put(folder, i, _TRAINED, part, seal)
    return {"partitions": k, "training_decisions": len(trained)}


def decisions_part(cfg: RunConfig, i: int) -> dict:
    """R1-R6, holds, orphans and objections for person partition i, given its R7 decisions."""
    folder, seal = cfg.work / "decide", _seal(cfg)

    def decide_rest():
        part = _decide_part(cfg, i, seal, eligible=(_CERTS, _APPRENTICES, _LIVING), extra=(_TRAINED,))
        decided, overlaps, sources = decisions_partition(part, part[_QUARANTINE], PolicyBook.load(cfg.policy_dir),
                                                         cfg.as_of_date)
        _put_sorted(folder, i, warehouse.claim_sources, sources, contract.CLAIM_KEY, seal)
        for name, frame in (("decisions", decided), ("city_overlaps", overlaps)):
            partition.put(folder, i, f"out/{name}", frame, seal)

    _timed_partition(folder, i, "decisions", decide_rest)
    return {"partition": i}


def decide_combine(cfg: RunConfig, conn=None, done: Iterable[int] | None = None) -> dict:
    """Put the partitions' decisions and city overlaps together in key order; store them and the claim sources.
    done: the partitions as their decisions_part finishes (stage_decide), whose claim sources are stored in
    groups as they come (_load_groups); by default all of them, already decided (Airflow's mapped tasks)."""
    enter(cfg, "decide", conn)
    folder = cfg.work / "decide"
    k = partition.plan(folder)["k"]

    def combined(name: str, key: tuple[str, ...], seal: workstore.Seal) -> pd.DataFrame:
        return partition.combine(partition.gather(folder, k, f"out/{name}", seal), key).assign(run_id=cfg.run_id)

    def replace(c, table: sa.Table, frames: Iterable[pd.DataFrame]) -> None:
        c.execute(table.delete().where(table.c.run_id == cfg.run_id))
        for frame in frames:
            warehouse.insert_frame(c, table, frame)

    def store(c) -> dict:
        seal = _seal(cfg, c)
        # the claim sources are never all held at once: a 1,000,000-person night has 2.7 million, and putting
        # them together beside the decisions was decide's peak memory. No step reads them back in bulk, and a
        # trace sorts a claim's few (a warehouse keeps no order).
        c.execute(warehouse.claim_sources.delete().where(warehouse.claim_sources.c.run_id == cfg.run_id))
        for group in _load_groups(k, done):
            _store_merged(c, cfg.run_id, warehouse.claim_sources, folder, group, contract.CLAIM_KEY, seal)
        replace(c, warehouse.city_overlaps, [combined("city_overlaps", CITY_OVERLAP_KEY, seal)])
        d = combined("decisions", contract.CLAIM_KEY, seal).assign(decided_in_run=cfg.run_id, as_of=cfg.as_of_date)
        # the copy for post and export is written by a thread while the rows load: the partitions are done, so
        # the other core was idle (parquet and SQLite's own work both run without Python's lock)
        with cf.ThreadPoolExecutor(1) as beside:
            kept = beside.submit(_keep, cfg, "decisions", d, warehouse.decisions, seal)
            replace(c, warehouse.decisions, [d])
            kept.result()
        _set_run(c, cfg.run_id, ledger_seq_at_decide=ledger.high_water(c))
        return d["decision"].value_counts().to_dict()

    counts = _in(cfg, conn, store)
    return {"table": warehouse.decisions.name, "approved": int(counts.get("approved", 0)),
            "rejected": int(counts.get("rejected", 0)), "held": int(counts.get("held", 0)), "partitions": k,
            "partition_seconds": {step: _seconds(folder, k, step) for step in ("training", "decisions")}}


def _orphans_on_hold(state: pd.DataFrame, decided: pd.DataFrame, quarantine: pd.DataFrame,
                     classes: pd.DataFrame) -> pd.DataFrame:
    """Claims the ledger pays that no longer appear at all because their own row was quarantined (say the
    certificate row itself): held, so that their payout stands, instead of reversed on unreadable evidence."""
    paid = state.loc[state["net_fen"].astype("int64") > 0]
    gone = paid.merge(decided[contract.CLAIM_KEY], on=contract.CLAIM_KEY, how="left", indicator=True)
    gone = gone.loc[gone["_merge"] == "left_only"].reset_index(drop=True)
    rows = holds.quarantined_rows(gone, quarantine, classes)
    gone = gone.loc[rows.notna()]
    return pd.DataFrame({
        **{k: gone[k] for k in contract.CLAIM_KEY}, "name": gone["active_name"], "decision": holds.HELD,
        "reason_code": holds.AWAITING_CORRECTION, "amount_fen": 0, "uplift_units": 0,
        "rule_id": gone["active_rule_id"], "policy_version": gone["active_policy_version"],
        "department_code": gone["active_department_code"], "fund": gone["active_fund"],
        "occupation_code": gone["active_occupation_code"], "level": gone["active_level"],
        "held_rows": rows[rows.notna()]}, columns=[*decide.DECISION_COLUMNS, "held_rows"])


def stage_decide(cfg: RunConfig, conn=None) -> dict:
    """Decide every claim (R7, the projects' budgets, then R1-R6), person partition by partition; store this
    run's decisions and their lineage (Airflow maps training_part and decisions_part instead)."""
    k = len(decide_split(cfg, conn)["partitions"])
    _run_partitions(cfg, training_part, k)
    training_budget(cfg, conn)
    with _partitions_done(cfg, decisions_part, k) as done:
        return decide_combine(cfg, conn, done)


def _decisions(cfg: RunConfig, conn, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """This run's decisions (only these columns, if given), as decide_combine stored them."""
    return _kept(cfg, "decisions", conn, warehouse.decisions, columns)


def _latest_night(conn, run_id: str) -> dt.date | None:
    """The latest as-of date any other run has taken through posting (whether or not it posted a line)."""
    r = warehouse.runs
    value = conn.execute(sa.select(sa.func.max(r.c.as_of)).where(
        r.c.run_id != run_id, r.c.ledger_seq_after_post.is_not(None),
        sa.or_(r.c.mode.is_(None), r.c.mode != "replay"))).scalar()
    return dt.date.fromisoformat(str(value)[:10]) if value is not None else None


def is_replay(conn, cfg: RunConfig) -> bool:
    """An as-of date before a night already taken through posting is a replay: it posts nothing."""
    later = [d for d in (ledger.last_posted_on(conn), _latest_night(conn, cfg.run_id)) if d is not None]
    return any(cfg.as_of_date < d for d in later)


def stage_post(cfg: RunConfig) -> dict:
    """Post the difference to the ledger: under the warehouse's posting lock, all lines in one transaction.

    A run whose as-of date lies before a night already posted (even one that posted nothing) is a replay
    and posts nothing. If another run posted after this one decided, this one decides again (in full)
    before posting. The reversal gate stops the night, with nothing posted, when it would reverse too much.
    """
    enter(cfg, "post")
    engine = _engine(cfg)
    findings: list[gate.Finding] = []
    with engine.begin() as conn:
        ledger.acquire_lock(conn, cfg.run_id)
        replay = is_replay(conn, cfg)
        if replay:
            log.warning("as-of %s is before a night already posted: replay, nothing posted", cfg.as_of)
            lines = pd.DataFrame({"amount_fen": pd.Series(dtype="int64")})
            _set_run(conn, cfg.run_id, mode="replay")
        else:
            if _run_row(conn, cfg.run_id).get("ledger_seq_at_decide") != ledger.high_water(conn):
                log.warning("the ledger moved since run %s decided; deciding again before posting", cfg.run_id)
                stage_eligibility(cfg, conn)
                stage_decide(cfg, conn)
            decisions = _decisions(cfg, conn)
            state = ledger.claim_state(conn, contract.SUBSIDY_TYPES)
            entering, status = publicity.plan(decisions, state, warehouse.read_frame(conn, warehouse.publicity),
                                              cfg.as_of_date, PolicyBook.load(cfg.policy_dir))
            decisions = publicity.with_payability(decisions, status)
            lines = ledger.plan_postings(decisions, state, cfg.as_of_date, cfg.run_id)
            rev = lines.loc[lines["entry_type"] == "reversal", "amount_fen"]
            findings = gate.reversal_findings(len(rev), -int(rev.sum()), int(state["active_id"].notna().sum()),
                                              cfg.max_reversal_share, cfg.max_reversal_fen)
            if not gate.split_accepted(findings, set(cfg.accept_drop_change))[0]:
                warehouse.insert_frame(conn, warehouse.publicity, entering.assign(run_id=cfg.run_id))
                ledger.append(conn, lines, decisions, contract.SUBSIDY_TYPES)
                faults.checkpoint("post:inserted")
                _set_run(conn, cfg.run_id, ledger_seq_after_post=ledger.high_water(conn))
        if replay:
            _set_run(conn, cfg.run_id, ledger_seq_after_post=ledger.high_water(conn))
    # outside the posting transaction, so that a stopped night's alert is kept while its lines are not
    _pass_gates(engine, cfg, "post", [("reversal_gate", "reversal gate", findings)],
                [gate.REVERSALS] if gate.REVERSALS in cfg.accept_drop_change and not replay else [])
    engine.dispose()
    return {"posted": len(lines), "net_fen": int(lines["amount_fen"].sum()) if len(lines) else 0, "replay": replay,
            "publicised": 0 if replay else len(entering)}


def payment_view(conn, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger lines and each payout's payment state as they stood after the night of as_of."""
    day = sa.literal(as_of, sa.Date)
    lines = warehouse.read_frame(conn, warehouse.ledger_lines, warehouse.ledger_lines.c.posted_on <= day)
    instr = warehouse.read_frame(conn, warehouse.payment_instructions,
                                 warehouse.payment_instructions.c.instructed_on <= day)
    outs = warehouse.read_frame(conn, warehouse.payment_outcomes, warehouse.payment_outcomes.c.recorded_on <= day)
    return lines, payments.states(lines, instr, outs)


def _publicised_on(conn, as_of: dt.date) -> pd.DataFrame:
    """The publicity list of a night: the claims whose latest record entered publicity that night."""
    t = warehouse.publicity
    rows = warehouse.read_frame(conn, t, t.c.publicity_start == sa.literal(as_of, sa.Date))
    return rows.sort_values("seq").groupby(contract.CLAIM_KEY, sort=False).tail(1)


def _instructed_on(conn, lines: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The payment instructions issued on a night, with their claim's subsidy type and reference."""
    t = warehouse.payment_instructions
    instr = warehouse.read_frame(conn, t, (t.c.instructed_on == sa.literal(as_of, sa.Date)) & (t.c.kind == "payment"))
    return instr.merge(lines[["payout_id", "subsidy_type", "reference"]], on="payout_id", how="left")


def stage_pay(cfg: RunConfig) -> dict:
    """Record the bank's results, instruct every payout that has an account and is not in transit or paid, open
    recoveries for reversed paid payouts; then check owed = paid + in transit + waiting. One transaction under
    the posting lock: a killed run leaves all of the night's instructions or none. A replay instructs nothing."""
    enter(cfg, "pay")
    engine = _engine(cfg)
    with engine.begin() as conn:
        ledger.acquire_lock(conn, cfg.run_id)
        new = pd.DataFrame(columns=payments.INSTRUCTION_COLUMNS)
        if _run_row(conn, cfg.run_id).get("mode") != "replay":
            stg = _accepted(cfg, conn, "pay")
            recorded = warehouse.read_frame(conn, warehouse.payment_outcomes)
            outcomes = payments.new_outcomes(stg["payment_results"], recorded, cfg.as_of_date, cfg.run_id)
            warehouse.insert_frame(conn, warehouse.payment_outcomes, outcomes)
            _, st = payment_view(conn, cfg.as_of_date)
            new = payments.plan_instructions(
                st, stg["training_classes"], payments.person_accounts(stg["payee_accounts"], cfg.as_of_date),
                payments.institution_accounts(stg["training_institutions"], cfg.as_of_date), cfg.as_of_date,
                cfg.run_id)
            warehouse.insert_frame(conn, warehouse.payment_instructions, new)
            faults.checkpoint("pay:inserted")
        lines, st = payment_view(conn, cfg.as_of_date)
        payments.check(payments.reconcile(lines, st))
    engine.dispose()
    counts = st["state"].value_counts().to_dict() if len(st) else {}
    return {"instructed": int((new["kind"] == payments.PAYMENT).sum()),
            "recoveries_opened": int((new["kind"] == payments.RECOVERY).sum()),
            "states": {k: int(v) for k, v in sorted(counts.items())}}


def _forget_old_runs(conn, keep: str) -> None:
    """Drop staging and intermediate rows of runs that ended or were abandoned; this run's snapshot stays as
    the next run's base. Decisions, quarantine and reconciliation stay for the audit trail."""
    r = warehouse.runs
    stale = sa.select(r.c.run_id).where(r.c.run_id != keep, sa.or_(
        r.c.status == "succeeded", r.c.started_at < _now() - dt.timedelta(days=1), r.c.started_at.is_(None)))
    for table in [*warehouse.STAGING.values(), *(t for t, _, _ in ELIGIBILITY)]:
        conn.execute(table.delete().where(table.c.run_id.in_(stale)))


@contextlib.contextmanager
def night_lock(cfg: RunConfig, purpose: str, wait_s: float = 0.0):
    """Hold <out>/.locks/<as-of>.<purpose>.lock, freed by the kernel when this process dies.

    A POSIX record lock (lockf), not an flock: it belongs to this process alone, so the processes it forks
    (stages, A1's report beside export) never hold it, and a night killed with -9 can be rerun at once.
    It excludes other processes only; one process holds a night's lock once.
    Waits up to wait_s for another holder, then raises RunBusyError with one clear line.
    """
    folder = Path(cfg.out) / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cfg.as_of}.{purpose}.lock"
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:  # EAGAIN or EACCES, as the platform has it
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise RunBusyError(f"another run is already working on {cfg.as_of} in {cfg.out} (lock {path}); "
                                       "nothing was done: run again when it has finished") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.lockf(fh, fcntl.LOCK_UN)


EXPORT_LOCK_WAIT_S = 600.0


def _union(*reads: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Per registry, every column any of these readers names (in the order first named)."""
    out: dict[str, tuple[str, ...]] = {}
    for r in reads:
        for name, cols in r.items():
            out[name] = tuple(dict.fromkeys([*out.get(name, ()), *cols]))
    return out


# what export reads of the accepted registries (a registry named by none of its readers is read whole) and of
# the decisions: at 10,000,000 persons the columns nobody reads were gigabytes of export's process
EXPORT_READS = _union(assessment.READS, supervision.READS, {"certificates": ("occupation_code", "occupation_name")})
EXPORT_DECISION_READS = tuple(dict.fromkeys([*export.DECISION_READS, *assessment.DECISION_READS]))


def stage_export(cfg: RunConfig) -> dict:
    """Write the extracts for the as-of date, all at once, and mark the run done.

    A failure while writing (a full disk, permissions) leaves the previous folder as it was, marks the run
    failed with an alert, and raises ExportError; the ledger is already committed, so a rerun writes the
    extracts and posts nothing.
    """
    enter(cfg, "export")
    book = PolicyBook.load(cfg.policy_dir)
    engine = _engine(cfg)
    try:
        with night_lock(cfg, "export", EXPORT_LOCK_WAIT_S), engine.begin() as conn:
            lines = ledger.lines_posted_on(conn, cfg.as_of_date)
            decisions = _decisions(cfg, conn, EXPORT_DECISION_READS)
            rec = warehouse.read_frame(conn, warehouse.reconciliation,
                                       warehouse.reconciliation.c.run_id == cfg.run_id)
            q = warehouse.read_frame(conn, warehouse.quarantine, warehouse.quarantine.c.run_id == cfg.run_id)
            overlaps = warehouse.read_frame(conn, warehouse.city_overlaps,
                                            warehouse.city_overlaps.c.run_id == cfg.run_id)
            stg = _accepted(cfg, conn, "export", EXPORT_READS)
            all_lines, pay_states = payment_view(conn, cfg.as_of_date)
            # A1's figures and report (its charts are most of it) in a process beside the extracts: what comes
            # before the workbooks' pool here is one process's work, and the other core would idle through it
            with partition.beside(make_assessment, stg, decisions, all_lines, book, cfg.as_of_date,
                                  processes=partition.workers(2, cfg.partition_workers)) as report:
                signals = supervision.signals(stg, eligibility.overlapping_entries(stg["class_enrollments"],
                                                                                  stg["training_classes"]))
                funding = export.funding_extract(stg["training_projects"], decisions,
                                                 ledger.claim_state(conn, contract.SUBSIDY_TYPES, cfg.as_of_date),
                                                 pay_states)
                recon = payments.reconcile(all_lines, pay_states) if len(all_lines) else None
                occupations = occupation_names(stg["certificates"])
                del stg  # the registries are spent: the workbooks' processes are forked without them
                instructed = _instructed_on(conn, all_lines, cfg.as_of_date)
                publicised = _publicised_on(conn, cfg.as_of_date)
                try:
                    export.write_bank_files(Path(cfg.out), cfg.as_of_date, instructed)
                    ctx = export.Context(person_key=warehouse.person_code_key(conn),
                                         occupations=occupations, run_id=cfg.run_id)
                    root = export.write_extracts(Path(cfg.out), cfg.as_of_date, book.departments, lines,
                                                 decisions, rec, q, overlaps, funding, signals, publicised,
                                                 pay_states, recon, ctx, cfg.max_quarantine_share,
                                                 cfg.gate_min_rows, report, processes=cfg.partition_workers)
                except OSError as exc:
                    raise ExportError(f"the extracts for {cfg.as_of} could not be written ({exc.strerror or exc}: "
                                      f"{exc.filename or cfg.out}); the previous extracts are unchanged and the "
                                      "ledger is posted: run the night again to write them (it posts nothing)") \
                        from exc
                assessed = report().assessment
            store_assessment(conn, cfg.run_id, assessed)
            faults.checkpoint("export:written")
            run_record.move(conn, cfg.run_id, run_record.Status.SUCCEEDED, "export")
            if _run_row(conn, cfg.run_id).get("mode") != "replay":  # a replay is never the next run's base
                _forget_old_runs(conn, cfg.run_id)
    except ExportError as exc:
        record_failure(cfg, "export", exc)
        raise
    finally:
        engine.dispose()
    discard_work(cfg)
    net = str(decimal_yuan(int(lines["amount_fen"].sum()))) if len(lines) else "0.00"
    return {"extracts": str(root), "ledger_lines": len(lines), "net": net, "departments": len(book.departments),
            "publicised": len(publicised), "bank_instructions": len(instructed),
            "behind_plan": len(assessed.views["behind"])}


def make_assessment(stg: dict[str, pd.DataFrame], decisions: pd.DataFrame, lines: pd.DataFrame, book: PolicyBook,
                    as_of: dt.date) -> assessment_report.Rendered:
    """A1 for the night (its figures) and its report made (charts, page, workbook)."""
    return assessment_report.render(assessment.assess(stg, decisions, lines, book.targets, as_of,
                                                      book.versions[-1].certificate_department))


def store_assessment(conn, run_id: str, report: assessment.Assessment) -> None:
    """Keep the night's A1 figures (one row per view) for the leading group's page; a rerun replaces its own."""
    t = warehouse.assessment
    conn.execute(t.delete().where(t.c.run_id == run_id))
    now = _now()
    conn.execute(t.insert(), [{"run_id": run_id, "as_of": report.as_of, "view": view, "figures": text,
                               "created_at": now} for view, text in report.to_records().items()])


def load_assessment(conn, as_of: dt.date) -> assessment.Assessment | None:
    """The A1 figures of the latest run that stored them for a night (None: no night assessed that date)."""
    t = warehouse.assessment
    day = sa.literal(as_of, sa.Date)
    latest = conn.execute(sa.select(t.c.run_id).where(t.c.as_of == day).order_by(t.c.created_at.desc(),
                                                                                  t.c.run_id.desc()).limit(1)).scalar()
    if latest is None:
        return None
    rows = conn.execute(sa.select(t.c.view, t.c.figures).where(t.c.run_id == latest)).all()
    return assessment.Assessment.from_records(as_of, dict(rows))


def assessed_dates(conn) -> list[dt.date]:
    """Every as-of date with stored A1 figures, latest first."""
    t = warehouse.assessment
    days = conn.execute(sa.select(t.c.as_of).distinct()).scalars().all()
    return sorted((d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)[:10]) for d in days), reverse=True)


def occupation_names(certificates: pd.DataFrame) -> dict:
    """occupation_code -> the name the certificate registry gives it most often (classes carry codes only)."""
    c = certificates[["occupation_code", "occupation_name"]].dropna()
    if c.empty:
        return {}
    counts = c.value_counts().reset_index(name="n").sort_values(["occupation_code", "n", "occupation_name"],
                                                                ascending=[True, False, True], kind="stable")
    return dict(counts.drop_duplicates("occupation_code")[["occupation_code", "occupation_name"]].itertuples(
        index=False, name=None))


def record_failure(cfg: RunConfig, stage: str, exc: BaseException) -> None:
    """Mark the run failed at a stage and raise an alert; best effort, never hides the original error."""
    try:
        engine = _engine(cfg)
        with engine.begin() as conn:
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            run_record.fail(conn, cfg.run_id, stage, message)
            raise_alert(conn, cfg.run_id, cfg.dag_id, stage, f"{stage}_failed", message)
        engine.dispose()
    except Exception as failed:  # noqa: BLE001 - best effort: the stage's own error is what the caller sees
        # one line, no traceback: the warehouse that cannot take the record is usually the stage's error too
        log.error("could not record the failure of run %s at %s in the warehouse: %s: %s", cfg.run_id, stage,
                  type(failed).__name__, str(failed).splitlines()[0] if str(failed) else "")


def describe(name: str, result: dict) -> str:
    """One line of what a stage did (rows, claims, lines, amounts): counts only, never a person."""
    if name == "validate":
        rec = result["reconciliation"].values()
        return (f"rows in {sum(r['rows_in'] for r in rec)}, accepted {sum(r['accepted'] for r in rec)}, "
                f"quarantined {sum(r['quarantined'] for r in rec)}")
    if name == "decide":
        return f"approved {result['approved']}, rejected {result['rejected']}, held {result.get('held', 0)}"
    if name == "post":
        if result.get("replay"):
            return "replay of an earlier date: nothing posted"
        return (f"{result['posted']} ledger lines, net {decimal_yuan(result['net_fen'])} yuan; "
                f"{result.get('publicised', 0)} claims enter publicity")
    if name == "pay":
        states = ", ".join(f"{k} {v}" for k, v in result["states"].items()) or "no payouts"
        return (f"{result['instructed']} payment instructions, {result['recoveries_opened']} recoveries opened; "
                f"payouts: {states}")
    if name == "extract":
        return f"{sum(result['rows'].values())} rows read from {len(result['rows'])} registries"
    if name == "eligibility":
        r = result["rows"]
        k = result.get("partitions", 1)
        return (f"{k} person partition{'' if k == 1 else 's'}: "
                f"{r['int_certificate_eligibility']} certificate claims, "
                f"{r['int_apprentice_eligibility']} apprentice claims, "
                f"{r['int_living_allowance_eligibility']} living-allowance claims, "
                f"{r['int_training_eligibility']} training-subsidy claims")
    if name.endswith("_split"):
        return f"{len(result['partitions'])} person partitions written to the work store"
    if name.endswith("_part"):
        return f"person partition {result['partition']} done"
    if name == "training_budget":
        return f"projects' filed budgets applied to {result['training_decisions']} R7 decisions"
    if name == "export":
        return (f"{result.get('ledger_lines', 0)} ledger lines (net {result.get('net', '0.00')} yuan) for "
                f"{result.get('departments', 0)} departments, {result.get('publicised', 0)} on publicity lists, "
                f"{result.get('bank_instructions', 0)} bank instructions, {result.get('behind_plan', 0)} plans behind "
                f"(A1), written to {result['extracts']}")
    return ""


# What Airflow runs in place of the eligibility and decide stages: the same steps, with the per-partition ones
# mapped over the partitions (.expand) so that Celery workers on different hosts share them through the work
# store; "eligibility" and "decide" are the combining steps, whose results are the stages' results.
PARTITION_STEPS = (
    ("eligibility_split", eligibility_split), ("eligibility_part", eligibility_part),
    ("eligibility", eligibility_combine), ("decide_split", decide_split), ("training_part", training_part),
    ("training_budget", training_budget), ("decisions_part", decisions_part), ("decide", decide_combine),
)


STAGES = (
    ("extract", stage_extract), ("validate", stage_validate), ("eligibility", stage_eligibility),
    ("decide", stage_decide), ("post", stage_post), ("pay", stage_pay), ("export", stage_export),
)
ALERTED = (DataQualityError, ExportError)  # these stages record their own alert


def run(cfg: RunConfig, on_stage=None, wait_s: float = 0.0, call=None) -> dict:
    """Run every stage in order, holding the night's run lock; on_stage(name, result, seconds) after each.

    A second run of the same as-of date into the same --out waits up to wait_s, then stops (RunBusyError).
    A failing stage marks the run failed, raises an alert and deletes the work folder before the error
    propagates. call(name, cfg) runs a stage instead of this process (the CLI and the benchmarks pass
    stage_process.call: each stage in a process of its own, as Airflow runs each task).
    """
    results = {}
    # the checkpointer (a forked process) before the lock; no forked process holds the lock, a lockf, either way
    with warehouse.checkpointer(cfg.warehouse) as checkpoint, night_lock(cfg, "run", wait_s):
        cfg = dataclasses.replace(cfg, checkpointer=True)
        for name, fn in STAGES:
            t0 = time.perf_counter()
            faults.checkpoint(f"before:{name}")
            try:
                results[name] = call(name, cfg) if call else fn(cfg)
            except Exception as exc:
                if not isinstance(exc, ALERTED):
                    record_failure(cfg, name, exc)
                discard_work(cfg)
                raise
            release_work(cfg, name)
            checkpoint()  # the stage's writes copied into the file beside the next stage
            if on_stage:
                on_stage(name, results[name], time.perf_counter() - t0)
    return results
