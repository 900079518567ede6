"""The run's work store: the frames one stage (or person partition) hands to the next.

A plain folder for one machine (the CLI's default), or a URL — `file:///shared/work`, `s3://bucket/work` —
read and written through Airflow's object storage (`ObjectStoragePath`, with the credentials of an Airflow
connection), so that tasks on different Celery workers see the same files. The store holds full identity
numbers: a folder is the pipeline user's only (0700); a bucket must be private, and every run removes its
own prefix when it ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

STALE_S = 86_400  # work a killed run left behind is removed after a day (no night runs that long)


def is_url(location: str | None) -> bool:
    """Whether a work location names an object store (scheme://...) rather than a folder."""
    return bool(location) and "://" in str(location)


def _forget_object_stores() -> None:
    """In a forked child: drop the object-store clients Airflow cached in the parent (its `attach` keeps one
    filesystem per protocol and connection for the life of the process). An fsspec async filesystem made in
    another process refuses to run ("This class is not fork-safe": fsspec/s3fs#914), and the stages, the
    validate workers and the partitions all run in forked processes; the child makes its own on first use."""
    store = sys.modules.get("airflow.sdk.io.store")
    if store is not None:
        store._STORE_CACHE.clear()


if hasattr(os, "register_at_fork"):  # POSIX; spawned and fork-server children start with an empty cache anyway
    os.register_at_fork(after_in_child=_forget_object_stores)


def root(location: str, conn_id: str | None = None):
    """The store's root: a Path for a folder, an ObjectStoragePath for a URL (conn_id: its credentials)."""
    if not is_url(location):
        return Path(location)
    from airflow.sdk import ObjectStoragePath  # only when a URL is configured: the CLI stays free of Airflow

    return ObjectStoragePath(location, conn_id=conn_id)


def make_dirs(path) -> None:
    """Create a folder (0700) and its parents; object stores have no folders, only key prefixes."""
    if isinstance(path, Path):
        for p in reversed([path, *path.parents]):
            if not p.exists():
                p.mkdir(mode=0o700, exist_ok=True)
    elif getattr(path, "protocol", None) in ("file", "local"):  # file:// writes need their folder
        path.mkdir(parents=True, exist_ok=True)


def write_frame(path, frame: pd.DataFrame) -> None:
    """Write a frame as parquet (folders created as needed)."""
    make_dirs(path.parent)
    if isinstance(path, Path):
        with open(path, "wb") as f:  # through Python's file: a full disk is an OSError that names its cause
            frame.to_parquet(f, index=False)
        return
    buffer = io.BytesIO()  # an object is put whole; parquet wants a seekable file to write its footer
    frame.to_parquet(buffer, index=False)
    with path.open("wb") as f:
        f.write(buffer.getvalue())


def read_frame(path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a parquet frame written by write_frame (only these columns, if given)."""
    cols = list(columns) if columns is not None else None
    if isinstance(path, Path):
        return pd.read_parquet(path, columns=cols)
    with path.open("rb") as f:
        return pd.read_parquet(io.BytesIO(f.read()), columns=cols)


def write_json(path, value: Any) -> None:
    """Write a small JSON document (manifests, partition plans)."""
    make_dirs(path.parent)
    with path.open("w") as f:
        f.write(json.dumps(value, indent=1))


def read_json(path) -> Any:
    """Read a JSON document written by write_json."""
    with path.open("r") as f:
        return json.loads(f.read())


def has(path) -> bool:
    """Whether a file exists in the store."""
    return path.exists()


def remove(path) -> None:
    """Remove a folder or prefix and everything under it; nothing there is fine."""
    if isinstance(path, Path):
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        if path.exists():
            path.rmdir(recursive=True)


def sweep_stale(path) -> None:
    """Remove the work of runs killed more than a day ago (a folder's; an object store's by its own rule)."""
    if not isinstance(path, Path) or not path.is_dir():
        return  # a bucket expires old prefixes with a lifecycle rule (README: object storage)
    cutoff = time.time() - STALE_S
    for folder in path.iterdir():
        with contextlib.suppress(OSError):
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
