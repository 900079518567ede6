"""Dataset-level lineage of each stage, as plain data for OpenLineage (the operator turns it into events).

Inputs and outputs are named the OpenLineage way: files by `file://<host>` and their absolute path,
warehouse tables by the database's scheme, host and port and `<database>.<table>`.
"""

from __future__ import annotations

import socket
from pathlib import Path

import sqlalchemy as sa

from .registries import REGISTRIES


def warehouse_namespace(url: str) -> tuple[str, str]:
    """(namespace, database) of a warehouse URL, without credentials."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        path = str(Path(u.database or "memory").resolve()) if u.database else "memory"
        return f"sqlite://{socket.gethostname()}", path
    scheme = {"postgresql": "postgres"}.get(u.get_backend_name(), u.get_backend_name())
    return f"{scheme}://{u.host or 'localhost'}:{u.port or 5432}", u.database or ""


def _table(url: str, name: str, **extra) -> dict:
    ns, db = warehouse_namespace(url)
    return {"namespace": ns, "name": f"{db}.{name}", **extra}


def _file(path: Path, **extra) -> dict:
    return {"namespace": f"file://{socket.gethostname()}", "name": str(Path(path).resolve()), **extra}


def _work(cfg, step: str) -> dict:
    """The run's part of the work store a partitioned step reads or writes (named by path, never its content)."""
    where = cfg.work / step
    if isinstance(where, Path):
        return _file(where)
    return {"namespace": f"{where.protocol}://{str(where).split('://', 1)[1].split('/', 1)[0]}",
            "name": "/" + str(where).split("://", 1)[1].split("/", 1)[1]}


STAGING = [r.table for r in REGISTRIES.values()]
ELIGIBILITY = ["int_certificate_eligibility", "int_apprentice_eligibility", "int_living_allowance_eligibility",
               "int_training_eligibility"]


def stage_datasets(stage: str, cfg, result: dict) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) of a stage; validate's inputs carry GX assertions and row counts."""
    url = cfg.warehouse
    files = [Path(cfg.sources) / r.filename for r in REGISTRIES.values() if (Path(cfg.sources) / r.filename).exists()]
    if stage == "extract":
        return [_file(f) for f in files], [_table(url, "runs")]
    if stage == "validate":
        quality = result.get("quality", {})
        rec = result.get("reconciliation", {})
        inputs = []
        for f in files:
            name = f.stem
            q = quality.get(name, {})
            inputs.append(_file(f, rows=rec.get(name, {}).get("rows_in"), suite=q.get("suite"),
                                assertions=q.get("expectations", [])))
        return inputs, [_table(url, t) for t in [*STAGING, "quarantine", "reconciliation", "validation_results"]]
    if stage == "eligibility_split":
        return [_table(url, t) for t in STAGING], [_work(cfg, "eligibility")]
    if stage == "eligibility_part":
        return [_work(cfg, "eligibility")], [_work(cfg, "eligibility")]
    if stage == "decide_split":
        return ([_table(url, t) for t in [*STAGING, *ELIGIBILITY, "ledger_lines", "quarantine"]],
                [_work(cfg, "decide")])
    if stage in ("training_part", "training_budget", "decisions_part"):
        return [_work(cfg, "decide")], [_work(cfg, "decide")]
    if stage == "eligibility":
        return [_table(url, t) for t in STAGING], [_table(url, t) for t in ELIGIBILITY]
    if stage == "decide":
        return [_table(url, t) for t in [*ELIGIBILITY, "ledger_lines"]], [_table(url, "decisions"),
                                                                          _table(url, "claim_sources")]
    if stage == "post":
        return [_table(url, "decisions"), _table(url, "publicity")], [_table(url, "ledger_lines"),
                                                                      _table(url, "publicity")]
    if stage == "pay":
        return ([_table(url, t) for t in ("ledger_lines", "stg_payee_accounts", "stg_training_institutions",
                                          "stg_payment_results")],
                [_table(url, "payment_instructions"), _table(url, "payment_outcomes")])
    if stage == "export":
        root = Path(cfg.out) / cfg.as_of
        a1 = ("stg_training_classes", "stg_class_enrollments", "stg_apprenticeships", "stg_social_insurance",
              "stg_certificates", "stg_annual_plans")  # A1's measures
        return ([_table(url, t) for t in ("ledger_lines", "decisions", "reconciliation", "quarantine", "publicity",
                                          "payment_instructions", "payment_outcomes", *a1)],
                [_file(root / "summary.csv"), _file(root / "reconciliation.csv"), _file(root / "quarantine.csv"),
                 _file(root / "payments_reconciliation.csv"), _file(Path(cfg.out) / "payments" / cfg.as_of),
                 _file(root / "assessment" / "behind_plan.csv"), _table(url, "assessment")])
    return [], []
