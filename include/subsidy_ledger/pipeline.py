"""The nightly sync as stages (extract, validate, eligibility, decide, post, export).

Each stage reads what the previous one persisted (raw parquet in the run's work folder, then
warehouse tables) and returns a small dict, so the CLI and the Airflow DAG run the same code and
tasks pass only paths and table names between them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from . import decide, eligibility, export, extract, ledger, validate, warehouse
from .policy import PolicyBook
from .registries import REGISTRIES

log = logging.getLogger(__name__)
CERTIFICATE_TYPES = ["skill_upgrade", "special_ability"]


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


def stage_extract(cfg: RunConfig) -> dict:
    """Read the drop (stops with DropError if a file cannot be read) and park raw frames as parquet."""
    raws = extract.extract_drop(Path(cfg.sources))
    work = cfg.work / "raw"
    work.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, raw in raws.items():
        path = work / f"{name}.parquet"
        raw.frame.to_parquet(path, index=False)
        manifest[name] = {"path": str(path), "present": raw.present, "encoding": raw.encoding,
                          "sha256": raw.sha256, "rows": len(raw.frame), "extra_columns": list(raw.extra_columns)}
    (cfg.work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    engine = _engine(cfg)
    with engine.begin() as conn:
        conn.execute(warehouse.runs.delete().where(warehouse.runs.c.run_id == cfg.run_id))
        conn.execute(warehouse.runs.insert().values(
            run_id=cfg.run_id, as_of=cfg.as_of_date, sources=str(cfg.sources), dag_id=cfg.dag_id,
            logical_date=cfg.logical_date, status="running"))
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


def stage_validate(cfg: RunConfig) -> dict:
    """Validate every registry with GX; stage accepted rows, record quarantine and reconciliation."""
    raws = _load_raw(cfg)
    exp_dir = Path(cfg.expectations) if cfg.expectations else None
    results = validate.validate_drop(raws, cfg.as_of_date, exp_dir)
    engine = _engine(cfg)
    with engine.begin() as conn:
        for name, v in results.items():
            table = warehouse.STAGING[name]
            conn.execute(table.delete())
            staged = v.accepted.rename(columns={extract.ROW_COL: "source_row"}).assign(run_id=cfg.run_id)
            warehouse.insert_frame(conn, table, staged)
        for t in (warehouse.quarantine, warehouse.reconciliation):
            conn.execute(t.delete().where(t.c.run_id == cfg.run_id))
        q = pd.concat([v.quarantine for v in results.values()], ignore_index=True).assign(run_id=cfg.run_id)
        warehouse.insert_frame(conn, warehouse.quarantine, q)
        rec = pd.DataFrame([{**v.reconciliation, "file_name": raws[n].registry.filename,
                             "present": raws[n].present, "encoding": raws[n].encoding, "sha256": raws[n].sha256,
                             "gx_success": v.gx_summary["success"], "gx_evaluated": v.gx_summary["evaluated"],
                             "run_id": cfg.run_id} for n, v in results.items()])
        warehouse.insert_frame(conn, warehouse.reconciliation, rec)
    engine.dispose()
    return {"reconciliation": {n: v.reconciliation for n, v in results.items()}}


def load_staging(conn, run_id: str) -> dict[str, pd.DataFrame]:
    """The staged registries of a run, typed."""
    out = {}
    for name, table in warehouse.STAGING.items():
        frame = warehouse.read_frame(conn, table, table.c.run_id == run_id)
        if "passed" in frame:
            frame["passed"] = frame["passed"].fillna(False).astype(bool)
        out[name] = frame
    return out


ELIGIBILITY = (  # intermediate table, builder
    (warehouse.certificate_eligibility, eligibility.build_certificate_eligibility),
    (warehouse.apprentice_eligibility, eligibility.build_apprentice_eligibility),
    (warehouse.living_allowance_eligibility, eligibility.build_living_allowance_eligibility),
)


def stage_eligibility(cfg: RunConfig) -> dict:
    """Join the staged registries into the intermediate eligibility tables (one per claim kind)."""
    book = PolicyBook.load(cfg.policy_dir)
    engine = _engine(cfg)
    rows = {}
    with engine.begin() as conn:
        stg = load_staging(conn, cfg.run_id)
        for table, build in ELIGIBILITY:
            frame = build(stg, cfg.as_of_date, book)
            conn.execute(table.delete())
            warehouse.insert_frame(conn, table, frame.assign(run_id=cfg.run_id))
            rows[table.name] = len(frame)
    engine.dispose()
    return {"rows": rows}


def _eligibility(conn, table: sa.Table, run_id: str, flags: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = warehouse.read_frame(conn, table, table.c.run_id == run_id)
    for c in flags:
        frame[c] = frame[c].fillna(False).astype(bool)
    return frame


def stage_decide(cfg: RunConfig) -> dict:
    """Decide every claim (R1-R6); store this run's decisions."""
    book = PolicyBook.load(cfg.policy_dir)
    engine = _engine(cfg)
    with engine.begin() as conn:
        certs = _eligibility(conn, warehouse.certificate_eligibility, cfg.run_id,
                             ("civil_servant", "insured", "key_group", "paid_by_city"))
        state = ledger.claim_state(conn, CERTIFICATE_TYPES)
        paid = state.loc[state["net_fen"].astype("int64") > 0, decide.CLAIM_KEY]
        d = pd.concat([
            decide.decide_certificates(certs, book, paid),
            decide.decide_apprentices(_eligibility(conn, warehouse.apprentice_eligibility, cfg.run_id),
                                      book, cfg.as_of_date),
            decide.decide_living_allowances(
                _eligibility(conn, warehouse.living_allowance_eligibility, cfg.run_id,
                             ("filed_in_advance", "qualifying_group")), book, cfg.as_of_date),
        ], ignore_index=True)
        conn.execute(warehouse.decisions.delete().where(warehouse.decisions.c.run_id == cfg.run_id))
        warehouse.insert_frame(conn, warehouse.decisions, d.assign(run_id=cfg.run_id, as_of=cfg.as_of_date))
    engine.dispose()
    counts = d["decision"].value_counts().to_dict()
    return {"table": warehouse.decisions.name, "approved": int(counts.get("approved", 0)),
            "rejected": int(counts.get("rejected", 0))}


def _decisions(conn, run_id: str) -> pd.DataFrame:
    t = warehouse.decisions
    return warehouse.read_frame(conn, t, t.c.run_id == run_id)


def stage_post(cfg: RunConfig) -> dict:
    """Post the difference to the ledger, all lines in one transaction."""
    engine = _engine(cfg)
    with engine.begin() as conn:
        lines = ledger.post(conn, _decisions(conn, cfg.run_id), decide.SUBSIDY_TYPES, cfg.as_of_date,
                            cfg.run_id)
    engine.dispose()
    return {"posted": len(lines), "net_fen": int(lines["amount_fen"].sum()) if len(lines) else 0}


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
        conn.execute(sa.update(warehouse.runs).where(warehouse.runs.c.run_id == cfg.run_id).values(
            status="succeeded"))
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
        results[name] = fn(cfg)
        if on_stage:
            on_stage(name, results[name], time.perf_counter() - t0)
    return results
