"""Extract: read a drop folder of registry CSV files into raw string frames, detecting the encoding."""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import workstore
from .contract import HASH_COL, PARSE_ERROR_COL, ROW_COL
from .registries import REGISTRIES, Registry

ENCODINGS = ("utf-8-sig", "gb18030")
_CHUNK = 1 << 20


class DropError(Exception):
    """A registry file cannot be read as its registry; the run stops before anything is posted."""

    def __init__(self, filename: str, problem: str):
        super().__init__(f"{filename}: {problem}")
        self.filename = filename
        self.problem = problem

    def __reduce__(self):
        # pickled by its two parts, so that a stage in a process of its own can raise it in the CLI's process
        return type(self), (self.filename, self.problem)


@dataclass
class RawRegistry:
    """One registry as read from its file: every value a string or NA, plus provenance."""

    registry: Registry
    frame: pd.DataFrame
    present: bool
    encoding: str | None = None
    sha256: str | None = None
    extra_columns: tuple[str, ...] = ()
    problem: str | None = None  # why an optional registry's path could not be read (the drop gate decides)


_WIDE_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32", codecs.BOM_UTF16_LE: "UTF-16",
              codecs.BOM_UTF16_BE: "UTF-16"}


def path_problem(path: Path) -> str | None:
    """Why a registry path cannot be read as a file (None for a readable regular file or no path at all).

    Checked without opening it: opening a FIFO would block the night forever.
    """
    if not os.path.lexists(path):
        return None
    if path.is_symlink() and not path.exists():
        return "is a dangling symbolic link, not a file"
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def sniff_encoding(path: Path) -> tuple[str, str]:
    """Return (encoding, sha256) of a file: UTF-8 (BOM or not) if it decodes, else GB18030."""
    digest = hashlib.sha256()
    decoders = {enc: codecs.getincrementaldecoder(enc)("strict") for enc in ENCODINGS}
    failed: set[str] = set()
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        for bom, name in _WIDE_BOMS.items():  # UTF-32 first: its LE mark starts like UTF-16's
            if head.startswith(bom):
                raise DropError(path.name, f"is encoded as {name}; save it as UTF-8 or GB18030")
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            for enc, dec in decoders.items():
                if enc in failed:
                    continue
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError:
                    failed.add(enc)
    cut_short = False
    for enc, dec in decoders.items():
        if enc not in failed:
            try:
                dec.decode(b"", final=True)
                return enc, digest.hexdigest()
            except UnicodeDecodeError:
                failed.add(enc)
                cut_short = True
    if cut_short:  # every byte decoded but the last character never ended: the transfer was cut
        raise DropError(path.name, "ends inside a multi-byte character: the file was cut short")
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


def _read_tolerant(path: Path, encoding: str, header: list[str], registry: Registry) -> pd.DataFrame:
    """Slow path for files with malformed records: keep every record, flag those with a wrong field count."""
    rows, errors = [], []
    width = len(header)
    wanted = [header.index(c) for c in registry.columns]
    with open(path, encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        try:
            for fields in reader:
                if not fields:
                    continue  # a blank line is no record, as in the fast path
                if len(fields) != width:
                    errors.append(f"record has {len(fields)} fields, header has {width}")
                    fields = (fields + [""] * width)[:width]
                else:
                    errors.append(None)
                rows.append([fields[i] for i in wanted])
        except csv.Error as exc:  # e.g. a field over the reader's limit: the file is not a registry export
            raise DropError(path.name, f"record {reader.line_num} is not readable as CSV ({exc})") from None
    frame = pd.DataFrame(rows, columns=list(registry.columns), dtype="string")
    frame = frame.replace("", pd.NA)
    frame[PARSE_ERROR_COL] = pd.Series(errors, dtype="string")
    return frame


def read_registry(path: Path, registry: Registry) -> RawRegistry:
    """Read one registry file; raise DropError if it cannot be read as that registry."""
    encoding, sha = sniff_encoding(path)
    header = _read_header(path, encoding)
    # a repeated registry column is ambiguous; repeated extra columns are never read, so they may repeat
    dupes = sorted({c for c in header if header.count(c) > 1 and c in registry.columns})
    if dupes:
        raise DropError(path.name, f"duplicate column(s) {', '.join(dupes)}")
    missing = [c for c in registry.columns if c not in header]
    if missing:
        raise DropError(path.name, f"missing required column(s) {', '.join(missing)}")
    try:
        # Arrow's reader is the fastest here and, unlike pandas' own, refuses records with too few fields
        frame = pd.read_csv(path, encoding=encoding, dtype="string", keep_default_na=False, na_values=[""],
                            engine="pyarrow", usecols=list(registry.columns))
        frame[PARSE_ERROR_COL] = pd.Series(pd.NA, index=frame.index, dtype="string")
    except (pd.errors.ParserError, ValueError):
        frame = _read_tolerant(path, encoding, header, registry)
    frame = frame.reset_index(drop=True)
    frame[ROW_COL] = pd.RangeIndex(2, len(frame) + 2)
    frame[HASH_COL] = row_hashes(frame, registry)
    extra = tuple(dict.fromkeys(c for c in header if c not in registry.columns))
    return RawRegistry(registry, frame, True, encoding_label(path, encoding), sha, extra)


HASH_SLICE_ROWS = 100_000
ROW_HASH_SEPARATOR = "\x1f"  # between a row's values in the text its hash is taken of


def row_hashes(frame: pd.DataFrame, registry: Registry) -> pd.Series:
    """SHA-256 (first 32 hex digits) of each row's values in the registry's column order.

    Column order in the file and extra columns do not matter; a malformed record hashes differently.
    """
    columns = (*registry.columns, PARSE_ERROR_COL)
    parts = []
    sep = pa.scalar(ROW_HASH_SEPARATOR, pa.large_string())
    sha256 = hashlib.sha256
    # in slices: each row as a Python object, for a whole registry at once, was several times the frame
    # (extract's process peaked at 9.3 GiB on a 10,000,000-person drop, and at 2.8 GiB in slices)
    for start in range(0, len(frame), HASH_SLICE_ROWS):
        rows = frame.iloc[start:start + HASH_SLICE_ROWS]
        # Arrow joins each row's values (a missing one as ""), as one UTF-8 text; Python hashes each text: half
        # the time of joining each row's values in Python (str.join, then encode)
        joined = pc.binary_join_element_wise(*(pa.array(rows[c], type=pa.large_string(), from_pandas=True)
                                               for c in columns), sep, null_handling="replace", null_replacement="")
        parts.append(pd.Series([sha256(row).hexdigest()[:32] for row in joined.cast(pa.large_binary()).to_pylist()],
                               dtype="string"))
    if not parts:
        return pd.Series([], index=frame.index, dtype="string")
    return pd.Series(pd.concat(parts, ignore_index=True).array, index=frame.index, dtype="string")


def empty_registry(registry: Registry, problem: str | None = None) -> RawRegistry:
    """An optional registry absent from the drop (or, with problem, unreadable there): no rows."""
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in registry.columns})
    frame[PARSE_ERROR_COL] = pd.Series(dtype="string")
    frame[ROW_COL] = pd.Series(dtype="int64")
    frame[HASH_COL] = pd.Series(dtype="string")
    return RawRegistry(registry, frame, False, problem=problem)


def extract_drop(sources: Path) -> dict[str, RawRegistry]:
    """Read every registry of a drop folder; a missing or unreadable required file is a DropError.

    An optional file that is there but cannot be read (a directory, a FIFO, a dangling link) comes back
    empty with its problem: the drop gate stops the night unless an operator accepts it.
    """
    return dict(iter_drop(sources))


def drop_problems(sources: Path) -> dict[str, str | None]:
    """Check every registry's path in a drop folder before any file is read: a missing or unreadable required
    file is a DropError at once; an optional one's problem (None: readable or absent) by registry name."""
    sources = Path(sources)
    if not sources.is_dir():
        raise DropError(str(sources), "drop folder does not exist")
    problems = {name: path_problem(sources / r.filename) for name, r in REGISTRIES.items()}
    for name, registry in REGISTRIES.items():
        path = sources / registry.filename
        if problems[name] and registry.required:
            raise DropError(registry.filename, f"{problems[name]} (a required registry)")
        if not problems[name] and not path.is_file() and registry.required:
            raise DropError(registry.filename, "required registry file is missing from the drop")
    return problems


def read_from_drop(sources: Path, name: str, problem: str | None = None) -> RawRegistry:
    """One registry of a drop folder whose paths drop_problems checked (`problem`: what it said of this one)."""
    registry = REGISTRIES[name]
    path = Path(sources) / registry.filename
    if problem:
        return empty_registry(registry, problem)
    return read_registry(path, registry) if path.is_file() else empty_registry(registry)


def iter_drop(sources: Path) -> Iterator[tuple[str, RawRegistry]]:
    """extract_drop one registry at a time, so that a caller which parks each one holds one in memory.

    Every path is checked before the first file is read: a missing required file stops the night at once.
    """
    problems = drop_problems(sources)
    for name in REGISTRIES:
        yield name, read_from_drop(sources, name, problems[name])


def is_database_url(sources: str | Path) -> bool:
    """True when the sources name a registry database (an SQLAlchemy URL) rather than a drop folder."""
    return "://" in str(sources)


def describe_sources(sources: str | Path) -> str:
    """The sources as they may be shown and stored: a folder, or a database URL without its password."""
    if not is_database_url(sources):
        return str(sources)
    import sqlalchemy as sa

    return sa.engine.make_url(str(sources)).render_as_string(hide_password=True)


def _as_text(values: list) -> pd.Series:
    """Database values as the strings a file drop would hold (dates ISO, booleans true/false, NULL as NA)."""
    import datetime as dt

    out = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, (dt.date, dt.datetime)):
            out.append(v.isoformat()[:10])
        else:
            text = str(v)
            out.append(text if text != "" else None)
    return pd.Series(out, dtype="string")


def database_to_parquet(url: str, folder: Path, seal: workstore.Seal, chunk_rows: int = 50_000) -> dict[str, dict]:
    """Stream every registry table (or view) of a registry database into sealed parquet, chunk by chunk, so
    memory stays flat however large the tables are. Returns the manifest entries; DropError as for files."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    safe_url = engine.url.render_as_string(hide_password=True)
    manifest: dict[str, dict] = {}
    try:
        names = set(sa.inspect(engine).get_table_names()) | set(sa.inspect(engine).get_view_names())
        for name, registry in REGISTRIES.items():
            path = folder / f"{name}.parquet"
            if name not in names:
                if registry.required:
                    raise DropError(f"{safe_url} table {name}", "required registry table or view is missing")
                workstore.write_frame(path, empty_registry(registry).frame, seal=seal)
                manifest[name] = {"path": str(path), "present": False, "encoding": None, "sha256": None, "rows": 0,
                                  "extra_columns": []}
                continue
            columns = [c["name"] for c in sa.inspect(engine).get_columns(name)]
            missing = [c for c in registry.columns if c not in columns]
            if missing:
                raise DropError(f"{safe_url} table {name}", f"missing required column(s) {', '.join(missing)}")
            table = sa.table(name, *[sa.column(c) for c in registry.columns])
            stmt = sa.select(*table.c).order_by(*[table.c[k] for k in registry.key])
            digest, rows, writer = hashlib.sha256(), 0, None
            with engine.connect() as conn, contextlib.ExitStack() as files:
                result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
                for part in result.partitions():
                    cols = list(zip(*part, strict=True))
                    frame = pd.DataFrame({c: _as_text(list(v)) for c, v in zip(registry.columns, cols, strict=True)})
                    frame[PARSE_ERROR_COL] = pd.Series(pd.NA, index=frame.index, dtype="string")
                    frame[ROW_COL] = pd.RangeIndex(rows + 1, rows + 1 + len(frame))  # position in key order
                    frame[HASH_COL] = row_hashes(frame, registry)
                    digest.update("".join(frame[HASH_COL].tolist()).encode())
                    batch = pa.Table.from_pandas(frame, preserve_index=False)
                    # the store's file (a folder's or an object's, sealed), closed after the writer that fills it
                    writer = writer or files.enter_context(contextlib.closing(
                        pq.ParquetWriter(files.enter_context(workstore.sealed_writer(path, seal)), batch.schema)))
                    writer.write_table(batch)
                    rows += len(frame)
            if writer is None:
                workstore.write_frame(path, empty_registry(registry).frame, seal=seal)
            manifest[name] = {"path": str(path), "present": True, "encoding": "database",
                              "sha256": digest.hexdigest(), "rows": rows,
                              "extra_columns": [c for c in columns if c not in registry.columns]}
    except sa.exc.SQLAlchemyError as exc:
        raise DropError(safe_url, f"cannot read the registry database: {str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()
    return manifest
