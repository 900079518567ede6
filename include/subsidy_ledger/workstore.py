"""The run's work store: the frames one stage (or person partition) hands to the next.

A plain folder for one machine (the CLI's default), or a URL — `file:///shared/work`, `s3://bucket/work` —
read and written through Airflow's object storage (`ObjectStoragePath`, with the credentials of an Airflow
connection), so that tasks on different Celery workers see the same files. The frames hold full identity
and account numbers, so every frame is sealed (AES-256-GCM) with its run's key, which only the warehouse can
give (`warehouse.work_store_key`): a copy of the store is unreadable without the warehouse, and a file of
another run, cut short or altered, is refused. Besides, a folder is the pipeline user's only (0700); a bucket
must be private, and every run removes its own prefix when it ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

STALE_S = 86_400  # work a killed run left behind is removed after a day (no night runs that long)
MAGIC = b"SLW1"  # a sealed work file, format 1: MAGIC, then chunks of [nonce 12][length 4][ciphertext + tag]
CHUNK_BYTES = 4 << 20  # plaintext per chunk: a reader or writer holds one chunk beyond the frame's own bytes
_NONCE, _LENGTH = 12, 4


class SealError(ValueError):
    """A work file that is not sealed with this run's key, or was cut short or altered."""


class Seal:
    """The AES-256-GCM key of one run's work files. Each chunk is authenticated with its position and whether
    it is the last, so that a file cut short, reordered or spliced from another is refused, not misread."""

    def __init__(self, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._key = bytes(key)
        self._aead = AESGCM(self._key)

    @classmethod
    def for_run(cls, secret: bytes, run_id: str) -> Seal:
        """The run's key, derived from the warehouse's work-store key (HMAC-SHA256 over the run id)."""
        return cls(hmac.new(secret, b"subsidy-ledger work store\x00" + run_id.encode(), hashlib.sha256).digest())

    def __reduce__(self):  # a pool hands the seal to its processes (AESGCM itself does not pickle)
        return Seal, (self._key,)

    def __repr__(self) -> str:  # never the key, in a log or a traceback
        return "Seal(<hidden>)"

    @staticmethod
    def _aad(index: int, last: bool) -> bytes:
        return MAGIC + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")

    def chunk(self, plain: bytes, index: int, last: bool) -> bytes:
        """One sealed chunk: nonce, length, ciphertext with its tag."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plain, self._aad(index, last))
        return nonce + len(sealed).to_bytes(_LENGTH, "big") + sealed

    def _open(self, nonce: bytes, sealed: bytes, index: int, last: bool) -> bytes | None:
        """A chunk's plaintext; None if it is not this key's chunk at this place."""
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(nonce, sealed, self._aad(index, last))
        except InvalidTag:
            return None

    def unseal(self, f, name: str) -> memoryview:
        """The plaintext of a sealed file read from the binary file f (name: for the error only), decrypted chunk
        by chunk into one buffer: the file's bytes and a chunk are all that is held beside it."""
        if f.read(len(MAGIC)) != MAGIC:
            raise SealError(f"work file {name} is not a sealed work file")
        f.seek(0, io.SEEK_END)
        end = f.tell()
        plain = bytearray(max(0, end - len(MAGIC)))  # at least as long as the plaintext (nonces, tags)
        f.seek(len(MAGIC))
        size, index, last = 0, 0, False
        while not last:
            head = f.read(_NONCE + _LENGTH)
            if len(head) < _NONCE + _LENGTH:
                raise SealError(f"work file {name} is cut short")
            length = int.from_bytes(head[_NONCE:], "big")
            sealed = f.read(length)
            if len(sealed) < length:
                raise SealError(f"work file {name} is cut short")
            last = f.tell() >= end  # the chunk the file ends with must have been sealed as the last
            opened = self._open(head[:_NONCE], sealed, index, last)
            if opened is None:  # for the message only: a chunk that opens as the other kind is in the wrong place
                if self._open(head[:_NONCE], sealed, index, not last) is not None:
                    raise SealError(f"work file {name} " + ("is cut short" if last else "goes on after its last chunk"))
                raise SealError(f"work file {name} is not sealed with this run's key, or was altered")
            plain[size:size + len(opened)] = opened
            size, index = size + len(opened), index + 1
        return memoryview(plain)[:size]


class _SealingWriter(io.RawIOBase):
    """A binary file that seals what is written to it, a chunk at a time, into another (parquet writers need
    only write and tell)."""

    def __init__(self, raw, seal: Seal):
        super().__init__()
        self._raw, self._seal, self._buffer, self._index, self._written = raw, seal, bytearray(), 0, 0
        self.abandoned = False  # the writing failed: closing must not seal a last chunk
        raw.write(MAGIC)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        self._written += len(data)
        while len(self._buffer) > CHUNK_BYTES:  # the last chunk is sealed as such on close, however long
            self._raw.write(self._seal.chunk(bytes(self._buffer[:CHUNK_BYTES]), self._index, False))
            del self._buffer[:CHUNK_BYTES]
            self._index += 1
        return len(data)

    def tell(self) -> int:
        return self._written

    def close(self) -> None:
        if not self.closed and not self.abandoned:
            self._raw.write(self._seal.chunk(bytes(self._buffer), self._index, True))
            self._buffer = bytearray()
        super().close()


@contextlib.contextmanager
def sealed_writer(path, seal: Seal) -> Iterator[io.RawIOBase]:
    """A binary file whose bytes go to `path` sealed (folders created as needed); complete when the block
    ends without an error."""
    make_dirs(path.parent)
    with open(path, "wb") if isinstance(path, Path) else path.open("wb") as raw:
        writer = _SealingWriter(raw, seal)
        try:
            yield writer
        except BaseException:
            writer.abandoned = True
            raise
        writer.close()


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


def write_frame(path, frame: pd.DataFrame, *, seal: Seal | None) -> None:
    """Write a frame as parquet, sealed with the run's key (seal=None: plain, for rows that hold no full
    identity or account number, such as masked extract rows); folders are created as needed."""
    if seal is not None:
        # through Python's file: a full disk is an OSError that names its cause
        with sealed_writer(path, seal) as f:
            frame.to_parquet(f, index=False)
        return
    make_dirs(path.parent)
    if isinstance(path, Path):
        with open(path, "wb") as f:
            frame.to_parquet(f, index=False)
        return
    buffer = io.BytesIO()  # an object is put whole; parquet wants a seekable file to write its footer
    frame.to_parquet(buffer, index=False)
    with path.open("wb") as f:
        f.write(buffer.getvalue())


def read_frame(path, columns: Sequence[str] | None = None, *, seal: Seal | None) -> pd.DataFrame:
    """Read a parquet frame written by write_frame with the same seal (only these columns, if given)."""
    cols = list(columns) if columns is not None else None
    with open(path, "rb") if isinstance(path, Path) else path.open("rb") as f:
        data = seal.unseal(f, path.name) if seal is not None else f.read()
    return pd.read_parquet(pa.BufferReader(pa.py_buffer(data)), columns=cols)  # the buffer read where it is


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
