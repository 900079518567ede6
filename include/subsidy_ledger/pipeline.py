"""The nightly sync as stages (extract, validate, eligibility, decide, post, export).

Each stage reads what the previous one persisted (raw parquet in the run's work folder, then
warehouse tables) and returns a small dict, so the CLI and the Airflow DAG run the same code and
tasks pass only paths and table names between them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from . import decide, eligibility, export, extract, faults, ledger, lineage, scope, validate, warehouse
from .policy import PolicyBook
from .registries import REGISTRIES

log = logging.getLogger(__name__)
CERTIFICATE_TYPES = ["skill_upgrade", "special_ability"]
DATA_DOCS_ENV = "SUBSIDY_LEDGER_DATA_DOCS"
MAX_SHARE_ENV = "SUBSIDY_LEDGER_MAX_QUARANTINE_SHARE"
GATE_MIN_ROWS_ENV = "SUBSIDY_LEDGER_GATE_MIN_ROWS"


class DataQualityError(RuntimeError):
    """A registry quarantined more rows than the gate allows: the run stops before posting."""


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
    incremental: bool = True  # compare with the last accepted snapshot; False re-validates and re-decides all
    # Data-quality gate: stop before posting if any registry quarantines more than this share of its rows
    # (registries with fewer rows than gate_min_rows are too small for a share to mean much)
    max_quarantine_share: float = field(default_factory=lambda: float(os.environ.get(MAX_SHARE_ENV, "0.10")))
    gate_min_rows: int = field(default_factory=lambda: int(os.environ.get(GATE_MIN_ROWS_ENV, "100")))
    # GX Data Docs under <out>/data_docs/<run>/; $SUBSIDY_LEDGER_DATA_DOCS=0 turns them off (about 1 s a night)
    data_docs: bool = field(default_factory=lambda: os.environ.get(DATA_DOCS_ENV, "1") != "0")

    @property
    def as_of_date(self) -> dt.date:
        """The as-of date as a date."""
        return dt.date.fromisoformat(self.as_of)

    @property
    def work(self) -> Path:
        """Scratch folder of this run (raw frames between extract and validate)."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.run_id)
        return Path(self.out) / ".work" / safe

    def to_dict(self) -> dict:
        """Plain dict for XCom."""
        return asdict(self)


def _engine(cfg: RunConfig):
    return warehouse.connect(cfg.warehouse)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _set_run(conn, run_id: str, **values) -> None:
    conn.execute(sa.update(warehouse.runs).where(warehouse.runs.c.run_id == run_id).values(**values))


def _run_row(conn, run_id: str) -> dict:
    row = conn.execute(sa.select(warehouse.runs).where(warehouse.runs.c.run_id == run_id)).mappings().first()
    return dict(row) if row else {}


def stage_extract(cfg: RunConfig) -> dict:
    """Read the drop folder or registry database (DropError if a registry cannot be read as such) and park
    the raw rows as parquet."""
    work = cfg.work / "raw"
    work.mkdir(parents=True, exist_ok=True)
    if extract.is_database_url(cfg.sources):
        manifest = extract.database_to_parquet(cfg.sources, work)
    else:
        manifest = {}
        for name, raw in extract.extract_drop(Path(cfg.sources)).items():
            path = work / f"{name}.parquet"
            raw.frame.to_parquet(path, index=False)
            manifest[name] = {"path": str(path), "present": raw.present, "encoding": raw.encoding,
                              "sha256": raw.sha256, "rows": len(raw.frame), "extra_columns": list(raw.extra_columns)}
    (cfg.work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    engine = _engine(cfg)
    with engine.begin() as conn:
        conn.execute(warehouse.runs.delete().where(warehouse.runs.c.run_id == cfg.run_id))
        conn.execute(warehouse.runs.insert().values(
            run_id=cfg.run_id, as_of=cfg.as_of_date, sources=extract.describe_sources(cfg.sources), dag_id=cfg.dag_id,
            logical_date=cfg.logical_date, status="running", started_at=_now()))
    engine.dispose()
    return {"manifest": str(cfg.work / "manifest.json"), "rows": {k: v["rows"] for k, v in manifest.items()}}


def _load_raw(cfg: RunConfig) -> dict[str, extract.RawRegistry]:
    manifest = json.loads((cfg.work / "manifest.json").read_text())
    raws = {}
    for name, m in manifest.items():
        frame = pd.read_parquet(m["path"])
        for c in frame.columns:
            if c != extract.ROW_COL:
                frame[c] = frame[c].astype("string")
        raws[name] = extract.RawRegistry(REGISTRIES[name], frame, m["present"], m["encoding"], m["sha256"],
                                         tuple(m["extra_columns"]))
    return raws


def _fingerprint(cfg: RunConfig, book: PolicyBook) -> str:
    exp_dir = Path(cfg.expectations) if cfg.expectations else None
    return hashlib.sha256(f"{validate.suites_fingerprint(exp_dir)}|{book.fingerprint}".encode()).hexdigest()


def _base_run(conn, cfg: RunConfig, fingerprint: str) -> dict | None:
    """The snapshot an incremental run compares against: the latest succeeded run with the same suites and
    policy, on or before this as-of date, after which nothing else was posted."""
    if not cfg.incremental:
        return None
    r = warehouse.runs
    row = conn.execute(
        sa.select(r).where(r.c.status == "succeeded", r.c.run_id != cfg.run_id, r.c.as_of <= cfg.as_of_date,
                           r.c.fingerprint == fingerprint, r.c.mode != "replay")
        .order_by(r.c.finished_at.desc()).limit(1)).mappings().first()
    if row is None or row["ledger_seq_after_post"] != ledger.high_water(conn):
        return None
    return dict(row)


def _previous_rows(conn, base_run: str) -> dict[str, pd.DataFrame]:
    """Content hash -> the run whose GX validation accepted that content, per registry of the base run."""
    out = {}
    for name, table in warehouse.STAGING.items():
        stmt = sa.select(table.c.row_hash, table.c.validated_run).where(table.c.run_id == base_run)
        out[name] = pd.read_sql_query(stmt, conn, dtype_backend="pyarrow").drop_duplicates("row_hash")
    return out


def _validated_run(accepted: pd.DataFrame, previous: pd.DataFrame | None, run_id: str) -> pd.Series:
    """Rows checked now were accepted by this run; the others by whichever run accepted that content first."""
    if previous is None or previous.empty:
        return pd.Series(run_id, index=accepted.index, dtype="string")
    earlier = accepted[extract.HASH_COL].map(previous.set_index("row_hash")["validated_run"]).astype("string")
    return earlier.where(~accepted[validate.CHECKED_COL] & earlier.notna(), run_id)


def stage_validate(cfg: RunConfig) -> dict:
    """Validate every registry with GX (only changed rows when a base snapshot exists); stage accepted rows,
    record quarantine and reconciliation."""
    raws = _load_raw(cfg)
    book = PolicyBook.load(cfg.policy_dir)
    fingerprint = _fingerprint(cfg, book)
    engine = _engine(cfg)
    with engine.connect() as conn:
        base = _base_run(conn, cfg, fingerprint)
        previous = _previous_rows(conn, base["run_id"]) if base else {}
    exp_dir = Path(cfg.expectations) if cfg.expectations else None
    hashes = {n: set(f["row_hash"]) for n, f in previous.items()} if base else None
    docs = Path(cfg.out) / "data_docs" / cfg.work.name if cfg.data_docs else None
    if docs:
        shutil.rmtree(docs, ignore_errors=True)
    results = validate.validate_drop(raws, cfg.as_of_date, exp_dir, hashes, docs_dir=docs, run_name=cfg.run_id)
    accepted_dir = cfg.work / "accepted"
    accepted_dir.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        for name, v in results.items():
            table = warehouse.STAGING[name]
            conn.execute(table.delete().where(table.c.run_id == cfg.run_id))
            v.accepted["validated_run"] = _validated_run(v.accepted, previous.get(name), cfg.run_id)
            staged = v.accepted.rename(columns={extract.ROW_COL: "source_row", extract.HASH_COL: "row_hash"})
            warehouse.insert_frame(conn, table, staged.assign(run_id=cfg.run_id))
            v.accepted.drop(columns=[validate.CHECKED_COL]).to_parquet(accepted_dir / f"{name}.parquet", index=False)
            faults.checkpoint(f"validate:staged:{name}")
        for t in (warehouse.quarantine, warehouse.reconciliation, warehouse.validation_results):
            conn.execute(t.delete().where(t.c.run_id == cfg.run_id))
        warehouse.insert_frame(conn, warehouse.validation_results, pd.DataFrame([{
            "run_id": cfg.run_id, "registry": n, "suite": v.gx_summary["suite"], "success": v.gx_summary["success"],
            "evaluated": v.gx_summary["evaluated"], "successful": v.gx_summary["successful"],
            "rows_checked": v.gx_summary["rows_checked"],
            "result_json": json.dumps(v.gx_summary["expectations"], ensure_ascii=False),
            "data_docs": v.gx_summary.get("data_docs")} for n, v in results.items()]))
        q = pd.concat([v.quarantine for v in results.values()], ignore_index=True).assign(run_id=cfg.run_id)
        warehouse.insert_frame(conn, warehouse.quarantine, q)
        rec = pd.DataFrame([{**v.reconciliation,
                             "file_name": n if raws[n].encoding == "database" else raws[n].registry.filename,
                             "present": raws[n].present, "encoding": raws[n].encoding, "sha256": raws[n].sha256,
                             "gx_success": v.gx_summary["success"], "gx_evaluated": v.gx_summary["evaluated"],
                             "run_id": cfg.run_id} for n, v in results.items()])
        warehouse.insert_frame(conn, warehouse.reconciliation, rec)
        _set_run(conn, cfg.run_id, fingerprint=fingerprint, base_run=base["run_id"] if base else None,
                 mode="incremental" if base else "full")
    too_bad = quality_gate(results, cfg.max_quarantine_share, cfg.gate_min_rows)
    if too_bad:
        with engine.begin() as conn:
            _set_run(conn, cfg.run_id, status="failed_quality_gate")
            raise_alert(conn, cfg.run_id, cfg.dag_id, "validate", "quality_gate", too_bad)
        engine.dispose()
        raise DataQualityError(too_bad)
    engine.dispose()
    return {"reconciliation": {n: v.reconciliation for n, v in results.items()},
            "quality": {n: {"suite": v.gx_summary["suite"], "success": v.gx_summary["success"],
                            "rows_checked": v.gx_summary["rows_checked"],
                            "expectations": v.gx_summary["expectations"]} for n, v in results.items()},
            "mode": "incremental" if base else "full",
            "gx_rows_checked": sum(v.gx_summary["rows_checked"] for v in results.values())}


def quality_gate(results: dict, max_share: float, min_rows: int = 0) -> str | None:
    """The reason to stop, if some registry of at least min_rows rows quarantined more than max_share of them."""
    worst = []
    for v in results.values():
        r = v.reconciliation
        if r["rows_in"] >= max(min_rows, 1) and r["quarantined"] / r["rows_in"] > max_share:
            worst.append(f"{v.registry.filename}: {r['quarantined']} of {r['rows_in']} rows quarantined "
                         f"({r['quarantined'] / r['rows_in']:.1%})")
    if not worst:
        return None
    return (f"data-quality gate: {'; '.join(worst)}, more than the {max_share:.0%} allowed "
            f"(the rows and reasons are in the warehouse's quarantine table); nothing was posted")


def raise_alert(conn, run_id: str | None, dag_id: str | None, task_id: str | None, kind: str, message: str) -> None:
    """Record an alert in the warehouse (and the log) for whoever watches the nightly sync."""
    log.info("alert %s %s/%s/%s: %s", kind, dag_id, run_id, task_id, message)
    conn.execute(warehouse.alerts.insert().values(raised_at=_now(), run_id=run_id, dag_id=dag_id, task_id=task_id,
                                                  kind=kind, message=message[:4000]))


def load_staging(conn, run_id: str) -> dict[str, pd.DataFrame]:
    """The staged registries of a run, typed."""
    out = {}
    for name, table in warehouse.STAGING.items():
        frame = warehouse.read_frame(conn, table, table.c.run_id == run_id)
        if "passed" in frame:
            frame["passed"] = frame["passed"].fillna(False).astype(bool)
        out[name] = frame.rename(columns={"row_hash": extract.HASH_COL, "source_row": extract.ROW_COL})
    return out


def _accepted(cfg: RunConfig, conn) -> dict[str, pd.DataFrame]:
    """This run's accepted rows: the parquet the validate task left, else the warehouse staging tables."""
    folder = cfg.work / "accepted"
    if not all((folder / f"{n}.parquet").is_file() for n in REGISTRIES):
        return load_staging(conn, cfg.run_id)
    return {n: pd.read_parquet(folder / f"{n}.parquet") for n in REGISTRIES}


def _base_links(conn, base_run: str) -> dict[str, pd.DataFrame]:
    out = {}
    for name, table in warehouse.STAGING.items():
        cols = [table.c.row_hash, *[table.c[c] for c in scope.LINK_COLUMNS if c in table.c]]
        out[name] = pd.read_sql_query(sa.select(*cols).where(table.c.run_id == base_run), conn)
    return out


def _certificate_scope(conn, cfg: RunConfig, stg: dict[str, pd.DataFrame]) -> tuple[set[str] | None, dict]:
    """(persons to re-decide, base run) for an incremental run; (None, {}) decides everyone."""
    run = _run_row(conn, cfg.run_id)
    if run.get("mode") != "incremental" or not run.get("base_run"):
        return None, {}
    base = _run_row(conn, run["base_run"])
    if not base or base.get("ledger_seq_after_post") != ledger.high_water(conn):
        return None, {}
    persons = scope.changed_persons(stg, _base_links(conn, base["run_id"]), base["as_of"], cfg.as_of_date)
    return persons, base


def _only(stg: dict[str, pd.DataFrame], persons: set[str]) -> dict[str, pd.DataFrame]:
    return {n: (f.loc[f["person_id"].isin(persons)] if "person_id" in f else f) for n, f in stg.items()}


ELIGIBILITY = (  # intermediate table, builder
    (warehouse.certificate_eligibility, eligibility.build_certificate_eligibility),
    (warehouse.apprentice_eligibility, eligibility.build_apprentice_eligibility),
    (warehouse.living_allowance_eligibility, eligibility.build_living_allowance_eligibility),
)


def _build_eligibility(conn, cfg: RunConfig, book: PolicyBook, full: bool) -> dict:
    stg = _accepted(cfg, conn)
    persons, base = (None, {}) if full else _certificate_scope(conn, cfg, stg)
    rows = {}
    for table, build in ELIGIBILITY:
        scoped = persons is not None and table is warehouse.certificate_eligibility
        frame = build(_only(stg, persons) if scoped else stg, cfg.as_of_date, book)
        conn.execute(table.delete().where(table.c.run_id == cfg.run_id))
        warehouse.insert_frame(conn, table, frame.assign(run_id=cfg.run_id))
        rows[table.name] = len(frame)
    scope_file = cfg.work / "scope.parquet"
    if persons is None:
        _set_run(conn, cfg.run_id, mode="full", base_run=None)
        scope_file.unlink(missing_ok=True)
    else:
        pd.DataFrame({"person_id": sorted(persons)}, dtype="string").to_parquet(scope_file, index=False)
    return {"rows": rows, "scoped_persons": None if persons is None else len(persons),
            "base_run": base.get("run_id")}


def stage_eligibility(cfg: RunConfig) -> dict:
    """Join the accepted registries into the intermediate eligibility tables (one per claim kind); an
    incremental run joins certificate facts only for the persons whose inputs changed."""
    book = PolicyBook.load(cfg.policy_dir)
    engine = _engine(cfg)
    with engine.begin() as conn:
        out = _build_eligibility(conn, cfg, book, full=False)
    engine.dispose()
    return out


def _eligibility(conn, table: sa.Table, run_id: str, flags: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = warehouse.read_frame(conn, table, table.c.run_id == run_id)
    for c in flags:
        frame[c] = frame[c].fillna(False).astype(bool)
    return frame


def _make_decisions(conn, cfg: RunConfig, book: PolicyBook) -> pd.DataFrame:
    """Decide every claim from this run's eligibility tables (R1 of unchanged persons: the base run's)."""
    run = _run_row(conn, cfg.run_id)
    scope_file = cfg.work / "scope.parquet"
    if run.get("mode") == "incremental" and not scope_file.is_file():
        # the scope did not survive (work folder lost): decide everyone
        _build_eligibility(conn, cfg, book, full=True)
        run = _run_row(conn, cfg.run_id)
    certs = _eligibility(conn, warehouse.certificate_eligibility, cfg.run_id,
                         ("civil_servant", "insured", "key_group", "paid_by_city"))
    state = ledger.claim_state(conn, CERTIFICATE_TYPES)
    paid = state.loc[state["net_fen"].astype("int64") > 0, decide.CLAIM_KEY]
    parts = [decide.decide_certificates(certs, book, paid)]
    kept = pd.DataFrame(columns=[*decide.DECISION_COLUMNS, "decided_in_run"])
    if run.get("mode") == "incremental":
        t = warehouse.decisions
        kept = warehouse.read_frame(conn, t, (t.c.run_id == run["base_run"]) & t.c.subsidy_type.in_(CERTIFICATE_TYPES))
        scoped = pd.read_parquet(scope_file)["person_id"]
        kept = kept.loc[~kept["person_id"].isin(scoped)]
        kept["decided_in_run"] = kept["decided_in_run"].fillna(run["base_run"])
    parts += [
        decide.decide_apprentices(_eligibility(conn, warehouse.apprentice_eligibility, cfg.run_id), book,
                                  cfg.as_of_date),
        decide.decide_living_allowances(
            _eligibility(conn, warehouse.living_allowance_eligibility, cfg.run_id,
                         ("filed_in_advance", "qualifying_group")), book, cfg.as_of_date),
    ]
    fresh = [p for p in parts if len(p)]
    fresh = pd.concat(fresh, ignore_index=True) if fresh else parts[0]
    # lineage of the claims decided now; kept decisions point at the run that decided them
    sources = lineage.claim_sources(_accepted(cfg, conn), fresh)
    t = warehouse.claim_sources
    conn.execute(t.delete().where(t.c.run_id == cfg.run_id))
    warehouse.insert_frame(conn, t, sources.assign(run_id=cfg.run_id))
    fresh = fresh.assign(decided_in_run=cfg.run_id)
    d = pd.concat([fresh, kept[fresh.columns]], ignore_index=True) if len(kept) else fresh
    d = d.sort_values(decide.CLAIM_KEY, kind="stable").reset_index(drop=True)
    conn.execute(warehouse.decisions.delete().where(warehouse.decisions.c.run_id == cfg.run_id))
    warehouse.insert_frame(conn, warehouse.decisions, d.assign(run_id=cfg.run_id, as_of=cfg.as_of_date))
    _set_run(conn, cfg.run_id, ledger_seq_at_decide=ledger.high_water(conn))
    return d


def stage_decide(cfg: RunConfig) -> dict:
    """Decide every claim (R1-R6); store this run's decisions."""
    book = PolicyBook.load(cfg.policy_dir)
    engine = _engine(cfg)
    with engine.begin() as conn:
        d = _make_decisions(conn, cfg, book)
    engine.dispose()
    counts = d["decision"].value_counts().to_dict()
    return {"table": warehouse.decisions.name, "approved": int(counts.get("approved", 0)),
            "rejected": int(counts.get("rejected", 0))}


def _decisions(conn, run_id: str) -> pd.DataFrame:
    t = warehouse.decisions
    return warehouse.read_frame(conn, t, t.c.run_id == run_id)


def stage_post(cfg: RunConfig) -> dict:
    """Post the difference to the ledger: under the warehouse's posting lock, all lines in one transaction.

    A run whose as-of date lies before the ledger's latest posting date is a replay and posts nothing.
    If another run posted after this one decided, this one decides again (in full) before posting.
    """
    engine = _engine(cfg)
    with engine.begin() as conn:
        ledger.acquire_lock(conn, cfg.run_id)
        last = ledger.last_posted_on(conn)
        replay = last is not None and cfg.as_of_date < last
        if replay:
            log.warning("as-of %s is before the ledger's last posting date %s: replay, nothing posted",
                        cfg.as_of, last)
            lines = pd.DataFrame({"amount_fen": pd.Series(dtype="int64")})
            _set_run(conn, cfg.run_id, mode="replay")
        else:
            if _run_row(conn, cfg.run_id).get("ledger_seq_at_decide") != ledger.high_water(conn):
                log.warning("the ledger moved since run %s decided; deciding again before posting", cfg.run_id)
                book = PolicyBook.load(cfg.policy_dir)
                _build_eligibility(conn, cfg, book, full=True)
                _make_decisions(conn, cfg, book)
            lines = ledger.post(conn, _decisions(conn, cfg.run_id), decide.SUBSIDY_TYPES, cfg.as_of_date,
                                cfg.run_id)
            faults.checkpoint("post:inserted")
        _set_run(conn, cfg.run_id, ledger_seq_after_post=ledger.high_water(conn))
    engine.dispose()
    return {"posted": len(lines), "net_fen": int(lines["amount_fen"].sum()) if len(lines) else 0, "replay": replay}


def _forget_old_runs(conn, keep: str) -> None:
    """Drop staging and intermediate rows of runs that ended or were abandoned; this run's snapshot stays as
    the next run's base. Decisions, quarantine and reconciliation stay for the audit trail."""
    r = warehouse.runs
    stale = sa.select(r.c.run_id).where(r.c.run_id != keep, sa.or_(
        r.c.status == "succeeded", r.c.started_at < _now() - dt.timedelta(days=1), r.c.started_at.is_(None)))
    for table in [*warehouse.STAGING.values(), *(t for t, _ in ELIGIBILITY)]:
        conn.execute(table.delete().where(table.c.run_id.in_(stale)))


def stage_export(cfg: RunConfig) -> dict:
    """Write the extracts for the as-of date and mark the run done."""
    book = PolicyBook.load(cfg.policy_dir)
    engine = _engine(cfg)
    with engine.begin() as conn:
        lines = ledger.lines_posted_on(conn, cfg.as_of_date)
        decisions = _decisions(conn, cfg.run_id)
        rec = warehouse.read_frame(conn, warehouse.reconciliation,
                                   warehouse.reconciliation.c.run_id == cfg.run_id)
        q = warehouse.read_frame(conn, warehouse.quarantine, warehouse.quarantine.c.run_id == cfg.run_id)
        root = export.write_extracts(Path(cfg.out), cfg.as_of_date, book.departments, lines, decisions, rec, q)
        faults.checkpoint("export:written")
        _set_run(conn, cfg.run_id, status="succeeded", finished_at=_now())
        if _run_row(conn, cfg.run_id).get("mode") != "replay":  # a replay is never the next run's base
            _forget_old_runs(conn, cfg.run_id)
    engine.dispose()
    shutil.rmtree(cfg.work, ignore_errors=True)
    with contextlib.suppress(OSError):  # leave no empty scratch folder beside the extracts
        cfg.work.parent.rmdir()
    return {"extracts": str(root)}


STAGES = (
    ("extract", stage_extract), ("validate", stage_validate), ("eligibility", stage_eligibility),
    ("decide", stage_decide), ("post", stage_post), ("export", stage_export),
)


def run(cfg: RunConfig, on_stage=None) -> dict:
    """Run every stage in order; on_stage(name, result, seconds) is told after each."""
    import time

    results = {}
    for name, fn in STAGES:
        t0 = time.perf_counter()
        faults.checkpoint(f"before:{name}")
        results[name] = fn(cfg)
        if on_stage:
            on_stage(name, results[name], time.perf_counter() - t0)
    return results
