"""Extract: read a drop folder of registry CSV files into raw string frames, detecting the encoding."""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .registries import REGISTRIES, Registry

ROW_COL = "__row"          # CSV record number, header = 1, so the first data row is 2 (as Excel shows it)
PARSE_ERROR_COL = "__parse_error"
HASH_COL = "__hash"        # content hash of the row: how an incremental run tells unchanged rows
ENCODINGS = ("utf-8-sig", "gb18030")
_CHUNK = 1 << 20


class DropError(Exception):
    """A registry file cannot be read as its registry; the run stops before anything is posted."""

    def __init__(self, filename: str, problem: str):
        super().__init__(f"{filename}: {problem}")
        self.filename = filename
        self.problem = problem


@dataclass
class RawRegistry:
    """One registry as read from its file: every value a string or NA, plus provenance."""

    registry: Registry
    frame: pd.DataFrame
    present: bool
    encoding: str | None = None
    sha256: str | None = None
    extra_columns: tuple[str, ...] = ()


def sniff_encoding(path: Path) -> tuple[str, str]:
    """Return (encoding, sha256) of a file: UTF-8 (BOM or not) if it decodes, else GB18030."""
    digest = hashlib.sha256()
    decoders = {enc: codecs.getincrementaldecoder(enc)("strict") for enc in ENCODINGS}
    failed: set[str] = set()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            for enc, dec in decoders.items():
                if enc in failed:
                    continue
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError:
                    failed.add(enc)
    for enc, dec in decoders.items():
        if enc not in failed:
            try:
                dec.decode(b"", final=True)
                return enc, digest.hexdigest()
            except UnicodeDecodeError:
                failed.add(enc)
    raise DropError(path.name, "cannot be decoded as UTF-8 or GB18030")


def encoding_label(path: Path, encoding: str) -> str:
    """How the file was written: utf-8-bom, utf-8 or gb18030 (utf-8-sig reads the first two alike)."""
    if encoding != "utf-8-sig":
        return encoding
    with open(path, "rb") as fh:
        return "utf-8-bom" if fh.read(3) == codecs.BOM_UTF8 else "utf-8"


def _read_header(path: Path, encoding: str) -> list[str]:
    with open(path, encoding=encoding, newline="") as fh:
        try:
            header = next(csv.reader(fh))
        except StopIteration:
            raise DropError(path.name, "is empty: no header row") from None
        except csv.Error as exc:
            raise DropError(path.name, f"header row is not valid CSV ({exc})") from None
    return header


def _read_tolerant(path: Path, encoding: str, header: list[str]) -> pd.DataFrame:
    """Slow path for files with malformed records: keep every record, flag those with a wrong field count."""
    rows, errors = [], []
    width = len(header)
    with open(path, encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for fields in reader:
            if not fields:
                continue  # a blank line is no record, as in the fast path
            if len(fields) == width:
                rows.append(fields)
                errors.append(None)
            else:
                rows.append((fields + [""] * width)[:width])
                errors.append(f"record has {len(fields)} fields, header has {width}")
    frame = pd.DataFrame(rows, columns=header, dtype="string")
    frame = frame.replace("", pd.NA)
    frame[PARSE_ERROR_COL] = pd.Series(errors, dtype="string")
    return frame


def read_registry(path: Path, registry: Registry) -> RawRegistry:
    """Read one registry file; raise DropError if it cannot be read as that registry."""
    encoding, sha = sniff_encoding(path)
    header = _read_header(path, encoding)
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DropError(path.name, f"duplicate column(s) {', '.join(dupes)}")
    missing = [c for c in registry.columns if c not in header]
    if missing:
        raise DropError(path.name, f"missing required column(s) {', '.join(missing)}")
    try:
        # Arrow's reader is the fastest here and, unlike pandas' own, refuses records with too few fields
        frame = pd.read_csv(path, encoding=encoding, dtype="string", keep_default_na=False, na_values=[""],
                            engine="pyarrow")
        frame[PARSE_ERROR_COL] = pd.Series(pd.NA, index=frame.index, dtype="string")
    except (pd.errors.ParserError, ValueError):
        frame = _read_tolerant(path, encoding, header)
    frame = frame.reset_index(drop=True)
    frame[ROW_COL] = pd.RangeIndex(2, len(frame) + 2)
    frame[HASH_COL] = row_hashes(frame, registry)
    extra = tuple(c for c in header if c not in registry.columns)
    return RawRegistry(registry, frame, True, encoding_label(path, encoding), sha, extra)


def row_hashes(frame: pd.DataFrame, registry: Registry) -> pd.Series:
    """SHA-256 (first 32 hex digits) of each row's values in the registry's column order.

    Column order in the file and extra columns do not matter; a malformed record hashes differently.
    """
    values = [frame[c].to_numpy(dtype=object, na_value="") for c in (*registry.columns, PARSE_ERROR_COL)]
    # one pass in Python over plain lists is several times faster here than pandas string concatenation
    digests = [hashlib.sha256("\x1f".join(row).encode()).hexdigest()[:32] for row in zip(*values, strict=True)]
    return pd.Series(digests, index=frame.index, dtype="string")


def empty_registry(registry: Registry) -> RawRegistry:
    """An optional registry absent from the drop: no rows."""
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in registry.columns})
    frame[PARSE_ERROR_COL] = pd.Series(dtype="string")
    frame[ROW_COL] = pd.Series(dtype="int64")
    frame[HASH_COL] = pd.Series(dtype="string")
    return RawRegistry(registry, frame, False)


def extract_drop(sources: Path) -> dict[str, RawRegistry]:
    """Read every registry of a drop folder; a missing required file or unreadable file is a DropError."""
    sources = Path(sources)
    if not sources.is_dir():
        raise DropError(str(sources), "drop folder does not exist")
    out: dict[str, RawRegistry] = {}
    for name, registry in REGISTRIES.items():
        path = sources / registry.filename
        if path.is_file():
            out[name] = read_registry(path, registry)
        elif registry.required:
            raise DropError(registry.filename, "required registry file is missing from the drop")
        else:
            out[name] = empty_registry(registry)
    return out

