"""Dataset-level lineage of each stage, as plain data for OpenLineage (the operator turns it into events).

Inputs and outputs are named the OpenLineage way: files by `file://<host>` and their absolute path,
warehouse tables by the database's scheme, host and port and `<database>.<table>`.
"""

from __future__ import annotations

import socket
from pathlib import Path

import sqlalchemy as sa

from . import steps
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
    bucket, _, key = where.path.partition("/")  # .path, not str(): that names the connection too
    return {"namespace": f"{where.protocol}://{bucket}", "name": f"/{key}"}


def _dataset(name: str, cfg, url: str, files: list[Path]) -> list[dict]:
    kind, _, what = name.partition(":")
    if kind == "table":
        return [_table(url, what)]
    if kind == "work":
        return [_work(cfg, what)]
    if kind == "out":
        return [_file(Path(cfg.out) / cfg.as_of / what)]
    if kind == "bank":
        return [_file(Path(cfg.out) / "payments" / cfg.as_of)]
    return [_file(f) for f in files]  # the drop: its registry files


def stage_datasets(stage: str, cfg, result: dict) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) of a step, as steps.STEPS declares them; validate's drop files carry GX assertions
    and row counts."""
    step = steps.BY_NAME.get(stage)
    if step is None:
        return [], []
    url = cfg.warehouse
    files = [Path(cfg.sources) / r.filename for r in REGISTRIES.values() if (Path(cfg.sources) / r.filename).exists()]
    inputs = [d for name in step.reads for d in _dataset(name, cfg, url, files)]
    outputs = [d for name in step.writes for d in _dataset(name, cfg, url, files)]
    if stage == "validate":
        quality, rec = result.get("quality", {}), result.get("reconciliation", {})
        for d in inputs:
            name = Path(d["name"]).stem
            if d["namespace"].startswith("file://") and name in REGISTRIES and Path(d["name"]).suffix == ".csv":
                q = quality.get(name, {})
                d.update(rows=rec.get(name, {}).get("rows_in"), suite=q.get("suite"),
                         assertions=q.get("expectations", []))
    return inputs, outputs
