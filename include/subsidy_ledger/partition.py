"""Person partitions: a night's per-person work split by a stable hash of the compacted identity number.

Every registry row that names a person goes to that person's partition; the small shared tables (classes,
projects, institutions, enterprises, catalog, plans) go to every partition whole. R6 reads other members of a
school leaver's household from `low_income`, so it is the one person registry whose rows matter to other
persons: a partition gets its persons' rows of it and every row of the households they are in. The results of
the partitions are put back together in one canonical order (each table's key), so a night gives the same
tables, extracts and ledger whatever K is.
"""

from __future__ import annotations

import bisect
import concurrent.futures as cf
import contextlib
import ctypes
import gc
import math
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from . import workstore

PARTITIONS_ENV = "SUBSIDY_LEDGER_PARTITIONS"                    # K; unset: chosen from the drop's size
PERSONS_PER_PARTITION_ENV = "SUBSIDY_LEDGER_PERSONS_PER_PARTITION"
WORKERS_ENV = "SUBSIDY_LEDGER_PARTITION_WORKERS"                # processes; unset: one per core
PERSONS_PER_PARTITION = 250_000
MAX_PARTITIONS = 256
# rows of these registries matter to the other persons of their group (column): R6 reads a school leaver's
# whole household. A partition gets its persons' rows and every row of a group one of them is in (every
# partition got all of them before: 34 copies of low_income at 10,000,000 persons, work that grew with K)
GROUPED_PERSON_REGISTRIES = {"low_income": "household_id"}
# siphash key of pandas' hash_array, spelled out so that a change of pandas' default cannot move a person
HASH_KEY = "subsidy-ledger-p"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def of(person_id: pd.Series, k: int) -> np.ndarray:
    """Partition number (0..k-1) of each compacted identity number; a missing one goes to partition 0."""
    if k <= 1:
        return np.zeros(len(person_id), dtype=np.int64)
    # each distinct number hashed once; Arrow finds them, so only those become Python objects (under half the
    # time of hashing every row's number as an object). As in identifiers.each_distinct, a missing number's
    # code is -1, which takes the 0 put last.
    codes, distinct = pd.factorize(person_id.astype("string"))
    hashed = pd.util.hash_array(distinct.to_numpy(dtype=object), hash_key=HASH_KEY, categorize=False)
    return np.append((hashed % np.uint64(k)).astype(np.int64), 0)[codes]


def persons(frames: dict[str, pd.DataFrame]) -> int:
    """How many distinct persons the split registries name (low_income's left out, so that K stays what it was
    when that registry went whole to every partition)."""
    ids = [f["person_id"].dropna().unique() for n, f in frames.items()
           if "person_id" in f and n not in GROUPED_PERSON_REGISTRIES]
    return len(pd.unique(np.concatenate(ids))) if ids else 0


def count(frames: dict[str, pd.DataFrame], requested: int | None = None) -> int:
    """K: the requested count, else $SUBSIDY_LEDGER_PARTITIONS, else one partition per 250,000 persons the
    frames name ($SUBSIDY_LEDGER_PERSONS_PER_PARTITION); the persons are counted only in that last case."""
    k = requested or int(os.environ.get(PARTITIONS_ENV) or 0)
    if not k:
        per = int(os.environ.get(PERSONS_PER_PARTITION_ENV) or PERSONS_PER_PARTITION)
        k = max(1, math.ceil(persons(frames) / per))
    if not 1 <= k <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, not {k}")
    return k


def save(folder, frames: Mapping[str, pd.DataFrame] | Iterable[tuple[str, pd.DataFrame]], k: int,
         seal: workstore.Seal, whole: Sequence[str] = ()) -> list[int]:
    """Write the frames cut into K partitions to the work store, sealed: shared frames (and the names in `whole`)
    once under shared/, the per-person ones under p<i>/; the plan records which is which. The frames may come as
    (name, frame) pairs read one at a time: each is written and let go before the next is taken. Returns the
    partition numbers (what Airflow maps its partition tasks over)."""
    shared, person = [], []
    for name, frame in (frames.items() if isinstance(frames, Mapping) else frames):
        (shared if put_cut(folder, name, frame, k, seal, whole) else person).append(name)
        del frame  # before the next one is read
    return write_plan(folder, k, shared, person)


def put_cut(folder, name: str, frame: pd.DataFrame, k: int, seal: workstore.Seal, whole: Sequence[str] = ()) -> bool:
    """Write one frame of save's cut into K partitions (a shared one, or one named in `whole`, once under
    shared/); whether it went whole. Frames cut apart (in other processes) are then named in write_plan."""
    if "person_id" not in frame or name in whole:
        workstore.write_frame(folder / "shared" / f"{name}.parquet", frame, seal=seal)
        return True
    for i, part in enumerate(cut(frame, k, GROUPED_PERSON_REGISTRIES.get(name))):
        put(folder, i, name, part, seal)
    return False


def write_plan(folder, k: int, shared: Sequence[str], person: Sequence[str]) -> list[int]:
    """Record which frames put_cut wrote whole and which cut (last: the plan's presence means all are written);
    the partition numbers."""
    workstore.write_json(folder / "plan.json", {"k": k, "shared": list(shared), "person": list(person)})
    return list(range(k))


def cut(frame: pd.DataFrame, k: int, group: str | None = None) -> Iterator[pd.DataFrame]:
    """Partition 0..k-1's rows of a per-person frame, in the frame's order: its persons' rows and, with a group
    column, every row of a group one of its persons' rows is in (a row may then go to several partitions)."""
    if k <= 1:
        yield frame
        return
    which = of(frame["person_id"], k)
    groups = frame[group] if group else None
    for i in range(k):
        rows = which == i
        if groups is not None:
            rows = rows | groups.isin(groups[rows].dropna().unique()).to_numpy(dtype=bool)
        yield frame.loc[rows].reset_index(drop=True)


def plan(folder) -> dict:
    """The plan save wrote: {"k": K, "shared": [names], "person": [names]}."""
    return workstore.read_json(folder / "plan.json")


def load(folder, i: int, seal: workstore.Seal, extra: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """Partition i's frames from the work store: the shared ones, its own cut of the per-person ones, and the
    named `extra` frames an earlier step wrote to p<i>/."""
    p = plan(folder)
    frames = {n: workstore.read_frame(folder / "shared" / f"{n}.parquet", seal=seal) for n in p["shared"]}
    frames |= {n: get(folder, i, n, seal) for n in (*p["person"], *extra)}
    return frames


def put(folder, i: int, name: str, frame: pd.DataFrame, seal: workstore.Seal) -> None:
    """Write partition i's frame `name` (a path under p<i>/, without .parquet), sealed."""
    workstore.write_frame(folder / f"p{i}" / f"{name}.parquet", frame, seal=seal)


def get(folder, i: int, name: str, seal: workstore.Seal) -> pd.DataFrame:
    """Read partition i's frame `name`, as put wrote it."""
    return workstore.read_frame(folder / f"p{i}" / f"{name}.parquet", seal=seal)


def put_chunks(folder, i: int, name: str, frame: pd.DataFrame, seal: workstore.Seal, rows: int) -> None:
    """Write partition i's frame `name` as numbered chunks of `rows` rows, in its order (chunks reads them back
    one at a time)."""
    n = max(1, math.ceil(len(frame) / rows))
    for j in range(n):
        put(folder, i, f"{name}/{j:05d}", frame.iloc[j * rows:(j + 1) * rows], seal)
    workstore.write_json(_chunk_count(folder, i, name), n)


def _chunk_count(folder, i: int, name: str):
    """Where put_chunks records how many chunks it wrote (last, so that its presence means all of them)."""
    return folder / f"p{i}" / name / "chunks.json"


def chunks(folder, i: int, name: str, seal: workstore.Seal) -> Iterator[pd.DataFrame]:
    """Partition i's frame `name` as put_chunks wrote it, a chunk at a time."""
    for j in range(workstore.read_json(_chunk_count(folder, i, name))):
        yield get(folder, i, f"{name}/{j:05d}", seal)


def has_chunks(folder, i: int, name: str) -> bool:
    """Whether partition i's frame `name` was written by put_chunks (to its end)."""
    return workstore.has(_chunk_count(folder, i, name))


def get_chunked(folder, i: int, name: str, seal: workstore.Seal) -> pd.DataFrame:
    """Partition i's frame `name` as put_chunks wrote it, whole."""
    return pd.concat(chunks(folder, i, name, seal), ignore_index=True)


def merge(streams: Iterable[Iterable[pd.DataFrame]], key: Sequence[str]) -> Iterator[pd.DataFrame]:
    """The rows of several streams of chunks, each stream in key order, as one stream of frames in key order,
    holding one chunk of each stream at a time: each frame is every row held up to the least of the held chunks'
    last keys (nothing unread can come before it)."""
    streams = [iter(s) for s in streams]
    held: dict[int, pd.DataFrame] = {}

    def refill(s: int) -> None:
        held.pop(s, None)
        for chunk in streams[s]:
            if len(chunk):
                held[s] = chunk.reset_index(drop=True)
                return

    for s in range(len(streams)):
        refill(s)
    while held:
        bound = min(_row_key(f, len(f) - 1, key) for f in held.values())
        out = []
        for s, f in list(held.items()):
            n = bisect.bisect_right(range(len(f)), bound, key=lambda r, f=f: _row_key(f, r, key))
            if n:
                out.append(f.iloc[:n])
            if n == len(f):
                refill(s)
            else:
                held[s] = f.iloc[n:].reset_index(drop=True)
        yield out[0] if len(out) == 1 else combine(out, key)  # one stream's rows are in order already


def _row_key(frame: pd.DataFrame, r: int, key: Sequence[str]) -> tuple:
    return tuple(frame[c].iat[r] for c in key)


def in_groups(parts: Iterable, k: int, groups: int) -> Iterator[list]:
    """The parts (K of them, in the order they come) in lists of ceil(K / groups), the last one shorter."""
    size, group = max(1, math.ceil(k / groups)), []
    for p in parts:
        group.append(p)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def gather(folder, k: int, name: str, seal: workstore.Seal) -> list[pd.DataFrame]:
    """Frame `name` of every partition, in partition order."""
    return [get(folder, i, name, seal) for i in range(k)]


def combine(frames: Sequence[pd.DataFrame], key: Sequence[str]) -> pd.DataFrame:
    """The partitions' frames as one, in key order (stable: a person's rows keep the order their partition
    gave them, and all of them come from one partition)."""
    frames = [f for f in frames if len(f)] or list(frames[:1])
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    del frames  # the parts go before the sorted copy is made: three copies of a night's rows are too many
    return out.sort_values(list(key), kind="stable").reset_index(drop=True)


def workers(k: int, requested: int | None = None) -> int:
    """Processes to run K partitions in: the requested number, else $SUBSIDY_LEDGER_PARTITION_WORKERS, else one
    per core, never more than K."""
    n = requested or int(os.environ.get(WORKERS_ENV) or 0) or os.cpu_count() or 1
    return max(1, min(n, k))


def run(fn: Callable, parts: Sequence, *args, processes: int = 1) -> list:
    """fn(part, *args) for every part, in a pool of processes when there is more than one (results in part
    order); the parent keeps nothing of a child but its result."""
    with meanwhile(fn, parts, *args, processes=processes) as results:
        pass
    return results


@contextlib.contextmanager
def as_done(fn: Callable, parts: Sequence, *args, processes: int = 1) -> Iterator[Iterator]:
    """fn(part, *args) for every part, in a pool of processes when there is more than one; the with-block gets
    an iterator of the parts, each given once its fn has returned, in the order they finish (in part order with
    one process: each part runs in this process when the iterator reaches it). The block may do the parts'
    serial follow-up meanwhile (a single-writer load) instead of after the slowest part. Leaving the block
    cancels the parts not started; an error in a part is raised where the iterator gives it."""
    if processes <= 1 or len(parts) <= 1:
        def inline() -> Iterator:
            for p in parts:
                fn(p, *args)
                yield p
        yield inline()
        return
    with _pool(processes, multiprocessing.get_context("fork")) as pool:
        futures = {pool.submit(fn, p, *args): p for p in parts}

        def finished() -> Iterator:
            for f in cf.as_completed(futures):
                f.result()  # a part's error, here
                yield futures[f]
        try:
            yield finished()
        finally:
            for f in futures:
                f.cancel()


def _pool(processes: int, context) -> cf.ProcessPoolExecutor:
    """A pool of processes started by context. Its forked workers die with this process (die_with); a fork
    server's are that server's children, and end when their work queue does, as this process's end of it closes."""
    forked = context.get_start_method() == "fork"
    return cf.ProcessPoolExecutor(processes, mp_context=context, initializer=forked_child if forked else None,
                                  initargs=(os.getpid(),) if forked else ())


@contextlib.contextmanager
def meanwhile(fn: Callable, parts: Sequence, *args, processes: int = 1, lean: bool = False) -> Iterator[list]:
    """fn(part, *args) for every part in a pool of processes while the with-block runs in this one; leaving the
    block waits for them and fills the yielded list with their results in part order. An error in the block
    cancels the parts not yet started; one in a part is raised on leaving. With one process the parts run in
    this process after the block. lean: the processes start from a fork server that has imported only fn's
    module, not from this process with everything it holds (the parts must then carry or name their data)."""
    results: list = []
    if processes <= 1 or len(parts) <= 1:
        yield results
        results.extend(fn(p, *args) for p in parts)
        return
    # fork: the children start with the parent's imports (pandas, the policy book) instead of paying them again;
    # but a forked child's resident memory starts at its parent's, so a parent holding a night's frames starts
    # children as large as itself: lean ones come from a server process that holds nothing but the imports
    context = multiprocessing.get_context("forkserver" if lean else "fork")
    if lean:
        context.set_forkserver_preload([fn.__module__])
    with _pool(processes, context) as pool:
        futures = [pool.submit(fn, p, *args) for p in parts]
        try:
            yield results
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        results.extend(f.result() for f in futures)


@contextlib.contextmanager
def beside(fn: Callable, *args, processes: int = 1) -> Iterator[Callable[[], object]]:
    """fn(*args) in one forked process while the with-block runs in this one; the block gets a function that
    returns fn's result, waiting for it, and raises fn's error. With one process fn runs in this process when
    the function is first called. The child inherits the arguments (nothing is pickled but the result), so
    they may be a night's frames, and this process lets go of them: a caller that drops its own references
    frees them here. Leaving the block without asking stops the child."""
    if processes <= 1:
        yield _once(fn, args)
        return
    name = getattr(fn, "__name__", "fn")
    child, ours = _fork(fn, args)
    del fn, args
    got: list = []

    def result():
        if not got:
            try:
                got.append(ours.recv())
            except EOFError:  # killed, or its answer could not be pickled
                got.append((False, RuntimeError(f"{name} ended without an answer in its process")))
        ok, value = got[0]
        if not ok:
            raise value
        return value

    try:
        yield result
    finally:
        if not got:
            child.kill()
        child.join()
        ours.close()


def _once(fn: Callable, args: tuple) -> Callable[[], object]:
    """fn(*args) in this process when first asked; the same answer after."""
    got: list = []

    def here():
        if not got:
            got.append(fn(*args))
        return got[0]
    return here


def _fork(fn: Callable, args: tuple):
    """beside's child started (multiprocessing's fork: its queues, such as a stage's log queue, work in the
    child); the process, and the end of the pipe its answer comes through."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=False)
    # Process.start drops its own references to the target's arguments once the child is forked
    child = context.Process(target=_answer, args=(theirs, ours, os.getpid(), fn, args), daemon=True,
                            name=f"beside-{getattr(fn, '__name__', 'fn')}")
    child.start()
    theirs.close()
    return child, ours


def _answer(channel, parents, parent: int, fn: Callable, args: tuple) -> None:
    """beside's child: fn's result or its error, sent back once."""
    parents.close()  # the parent's end: kept open here, a dead parent's pipe would still have a reader
    forked_child(parent)
    try:
        answer = (True, fn(*args))
    except BaseException as exc:  # noqa: BLE001 - raised again in the parent, where it is reported
        answer = (False, exc)
    channel.send(answer)
    channel.close()


def forked_child(parent: int) -> None:
    """What a forked child does first: die with its parent (die_with), and leave the objects it inherited to the
    parent (gc.freeze): the child's garbage collector then never walks them, and writing its counts into every
    object it walked copied each page of the parent's memory it touched (a twentieth of a night's page faults)."""
    die_with(parent)
    gc.freeze()


def die_with(parent: int) -> None:
    """Linux: the kernel kills this forked process when its parent dies, so a night killed with -9 leaves no
    work running on, holding the files and connections it inherited (beside's child, a pool's forked workers, a
    stage's process: stage_process). Elsewhere nothing. The parent must fork from a thread that lives as long as
    the child (the kernel's signal follows the forking thread). (The night's lock is
    the parent's own, a lockf, which no child holds: the kill is asynchronous, a rerun must not wait for it.)"""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
