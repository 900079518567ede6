"""Copies of a test warehouse, so that tests start many runs from one state that was paid for once."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa


def clone_warehouse(base_url: str, tag: str) -> tuple[str, Callable[[], None]]:
    """A copy of the warehouse at base_url and the function that drops it: an SQLite file copied beside the
    original, or a PostgreSQL database made from it as a template (nothing may be connected to it meanwhile)."""
    if base_url.startswith("sqlite"):
        src = Path(base_url.removeprefix("sqlite:///"))
        dst = src.with_name(f"{src.stem}_{tag}{src.suffix}")
        source, copy = sqlite3.connect(src), sqlite3.connect(dst)
        source.backup(copy)
        source.close()
        copy.close()
        return f"sqlite:///{dst}", lambda: dst.unlink(missing_ok=True)
    server, base_name = base_url.rsplit("/", 1)
    name = f"{base_name}_{tag}"
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{base_name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return f"{server}/{name}", drop
