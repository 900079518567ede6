"""Person partitions (issue 16): a stable split, shared tables whole, and the same night whatever K is."""

from __future__ import annotations

import hashlib
import os
import time
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from subsidy_ledger import contract, export, partition, pipeline, stage_process, warehouse, workstore
from subsidy_ledger.cli import main
from subsidy_ledger.generate import change, generate

from tests.conftest import S3_BUCKET

# two nights on one drop (the first publicises, the second posts and instructs the bank), then a changed drop
# whose night reverses what it revoked
NIGHTS = (("a", "2021-06-10"), ("a", "2021-06-21"), ("b", "2021-06-30"))
SEAL = workstore.Seal(bytes(range(32)))


def test_partition_of_a_person_is_fixed():
    """Pinned: a pandas upgrade that moved persons between partitions would show here, not in a ledger."""
    ids = pd.Series(["330503199001011234", "33050319850505432X", "110101200001010011", None], dtype="string")
    assert partition.of(ids, 7).tolist() == partition.of(ids.iloc[::-1], 7).tolist()[::-1]
    assert partition.of(ids, 7).tolist() == [1, 4, 5, 0]
    assert partition.of(ids, 1).tolist() == [0, 0, 0, 0]
    assert partition.of(pd.concat([ids, ids], ignore_index=True), 7).tolist() == [1, 4, 5, 0] * 2  # repeated
    assert partition.of(pd.Series([None, None], dtype="string"), 7).tolist() == [0, 0]
    assert partition.of(pd.Series([], dtype="string"), 7).tolist() == []


def test_save_cuts_person_registries_and_shares_the_rest(tmp_path):
    """Person rows go to their person's partition; low_income's also to every partition where another member
    of their household is (R6 reads a school leaver's household); the tables without persons go whole."""
    frames = {
        "certificates": pd.DataFrame({"person_id": [f"P{i}" for i in range(50)], "n": range(50)}),
        # P1 (partition 1) and P2 (partition 0) share household H; P7 (2) is alone in G; P3 (3) names none
        "low_income": pd.DataFrame({"person_id": ["P1", "P2", "P7", "P3", "P1"],
                                    "household_id": ["H", "H", "G", None, "H"], "n": range(5)}),
        "training_classes": pd.DataFrame({"class_id": ["C1"]}),
        "~quarantine": pd.DataFrame({"person_id": ["P3"], "reason": ["x"]}),
    }
    assert partition.save(tmp_path, frames, 4, SEAL, whole=("~quarantine",)) == [0, 1, 2, 3]
    assert partition.plan(tmp_path) == {"k": 4, "shared": ["training_classes", "~quarantine"],
                                        "person": ["certificates", "low_income"]}
    parts = [partition.load(tmp_path, i, SEAL) for i in range(4)]
    assert sum(len(p["certificates"]) for p in parts) == 50
    assert all(len(p["certificates"]) < 50 for p in parts)
    for i, p in enumerate(parts):  # each person in exactly its own partition; the shared frames whole
        assert (partition.of(p["certificates"]["person_id"], 4) == i).all()
        for name in ("training_classes", "~quarantine"):
            assert p[name].equals(frames[name])
    # household H's three rows in both its members' partitions, in the registry's order; the others alone
    assert [p["low_income"]["n"].tolist() for p in parts] == [[0, 1, 4], [0, 1, 4], [2], [3]]
    assert not (tmp_path / "p0" / "training_classes.parquet").exists()  # shared frames are written once
    again = partition.combine([p["certificates"] for p in parts], ["person_id"])
    assert again.equals(frames["certificates"].sort_values("person_id", kind="stable").reset_index(drop=True))
    assert partition.persons(frames) == 50


def test_save_takes_frames_one_at_a_time_and_lets_each_go_before_the_next(tmp_path):
    """Eligibility's split reads the registries one at a time: save holds no frame once it asks for the next."""
    held: list[weakref.ref] = []

    def made(name: str, n: int) -> pd.DataFrame:
        frame = pd.DataFrame({"person_id": [f"{name}{i}" for i in range(n)], "n": range(n)})
        held.append(weakref.ref(frame))
        return frame

    def one_at_a_time():
        for name in ("certificates", "veterans", "social_insurance"):
            assert [r() for r in held] == [None] * len(held), f"a frame is still held when {name} is read"
            yield name, made(name, 30)
        yield "training_classes", pd.DataFrame({"class_id": ["C1"]})

    assert partition.save(tmp_path, one_at_a_time(), 3, SEAL) == [0, 1, 2]
    assert len(held) == 3 and partition.plan(tmp_path) == {
        "k": 3, "shared": ["training_classes"], "person": ["certificates", "veterans", "social_insurance"]}
    assert sum(len(partition.get(tmp_path, i, "veterans", SEAL)) for i in range(3)) == 30


def test_partition_count(monkeypatch):
    monkeypatch.delenv(partition.PARTITIONS_ENV, raising=False)
    monkeypatch.delenv(partition.PERSONS_PER_PARTITION_ENV, raising=False)
    def drop(n: int) -> dict[str, pd.DataFrame]:  # n persons, each on two rows, and n households
        ids = pd.Series([f"P{i:07d}" for i in range(n)] * 2, dtype="string")
        return {"certificates": pd.DataFrame({"person_id": ids}),
                "low_income": pd.DataFrame({"person_id": ids.str.replace("P", "H")})}

    assert [partition.count(drop(n)) for n in (0, 1, 250_000, 250_001)] == [1, 1, 1, 2]
    assert partition.count(drop(10), requested=7) == 7
    monkeypatch.setenv(partition.PERSONS_PER_PARTITION_ENV, "4")
    assert partition.count(drop(10)) == 3
    monkeypatch.setenv(partition.PERSONS_PER_PARTITION_ENV, "25")  # 10,000,000 persons at 250,000 a partition
    assert partition.count(drop(1000)) == 40
    monkeypatch.setenv(partition.PARTITIONS_ENV, "3")
    assert partition.count(drop(100)) == 3
    with pytest.raises(ValueError, match="between 1 and 256"):
        partition.count(drop(10), requested=1000)
    assert partition.workers(7, 2) == 2 and partition.workers(1, 2) == 1


def _square_and_start(x: int) -> tuple[int, float]:
    """x squared, and when it began (the monotonic clock is the machine's, so processes compare)."""
    return x * x, time.monotonic()


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("part 3 failed")
    return x


@pytest.mark.parametrize("processes", [1, 2])
def test_meanwhile_runs_the_parts_beside_the_block_and_waits_for_them(processes):
    """Results come in part order once the block ends; in a pool the parts start before the block ends, with
    one process after it; a part's error is raised on leaving, the block's own error wins and stops the rest."""
    with partition.meanwhile(_square_and_start, list(range(5)), processes=processes) as results:
        time.sleep(1.0 if processes > 1 else 0)
        assert results == []
        ended = time.monotonic()
    assert [r for r, _ in results] == [0, 1, 4, 9, 16]
    started = [t for _, t in results]
    assert (max(started) < ended) if processes > 1 else (min(started) >= ended)
    with (pytest.raises(ValueError, match="part 3 failed"),
          partition.meanwhile(_fail_on_three, list(range(5)), processes=processes)):
        pass
    with (pytest.raises(KeyError, match="the block"),
          partition.meanwhile(_fail_on_three, list(range(5)), processes=processes)):
        raise KeyError("the block")


def _sleep_then_give(x: int) -> int:
    """Part 0 is the slowest, so that the parts finish out of their order."""
    time.sleep(1.5 if x == 0 else 0.1)
    return _fail_on_three(x)


@pytest.mark.parametrize("processes", [1, 2])
def test_as_done_gives_each_part_once_it_has_finished(processes):
    """Every part once; in a pool as they finish (the slow part 0 last), with one process in part order, each run
    when reached; a part's error is raised where the iterator gives it."""
    with partition.as_done(_sleep_then_give, [0, 1, 2], processes=processes) as done:
        order = list(done)
    assert sorted(order) == [0, 1, 2]
    assert order[-1] == 0 if processes > 1 else order == [0, 1, 2]
    with (pytest.raises(ValueError, match="part 3 failed"),
          partition.as_done(_sleep_then_give, [1, 3, 4], processes=processes) as done):
        list(done)


def _pid_and_size(lock, frame: pd.DataFrame) -> tuple[int, int]:
    """Which process ran it, and the rows of a frame it was handed (with a lock, which cannot be pickled)."""
    with lock:
        return os.getpid(), len(frame)


@pytest.mark.parametrize("processes", [1, 2])
def test_beside_runs_in_a_forked_process_with_unpickled_arguments_and_gives_its_answer_or_error(processes):
    """With two processes fn runs in another process, started before the block, from arguments it inherited;
    with one, in this process when first asked; fn's error is raised where its answer is asked for."""
    import threading

    with partition.beside(_pid_and_size, threading.Lock(), pd.DataFrame({"a": range(5)}),
                          processes=processes) as answer:
        pid, rows = answer()
        assert answer() == (pid, rows)  # asked again: the same answer, nothing run again
    assert rows == 5 and (pid != os.getpid()) == (processes > 1)
    with (partition.beside(_fail_on_three, 3, processes=processes) as answer,
          pytest.raises(ValueError, match="part 3 failed")):
        answer()


def _frozen(_part=None) -> int:
    """How many objects this process's garbage collector leaves alone (gc.freeze)."""
    import gc

    return gc.get_freeze_count()


def test_forked_children_leave_the_objects_they_inherited_to_the_collector_of_their_parent():
    """A stage's process, beside's child and a pool's forked workers freeze what they inherited (their collector
    never walks it, so its pages stay shared with this process); this process freezes nothing."""
    import gc

    from subsidy_ledger import stage_process

    held = [[i] for i in range(50_000)]  # tracked objects the children inherit
    assert gc.get_freeze_count() == 0
    assert stage_process.alone(_frozen, what="a stage") >= len(held)
    with partition.beside(_frozen, processes=2) as answer:
        assert answer() >= len(held)
    with partition.meanwhile(_frozen, [0, 1], processes=2) as counts:
        pass
    assert min(counts) >= len(held)
    assert gc.get_freeze_count() == 0


def _note_pid_then_sleep(path: Path, seconds: float) -> None:
    path.write_text(str(os.getpid()))
    time.sleep(seconds)


def test_beside_stops_its_process_when_the_block_leaves_without_asking(tmp_path):
    """An error in the block: the process is not waited for (it would sleep a minute), and is gone after."""
    started, noted = time.monotonic(), tmp_path / "pid"
    with pytest.raises(KeyError, match="the block"), partition.beside(_note_pid_then_sleep, noted, 60,
                                                                        processes=2):
        while not noted.exists() or not noted.read_text():
            time.sleep(0.05)
        raise KeyError("the block")
    assert time.monotonic() - started < 30
    assert _gone(int(noted.read_text()))


def test_beside_lets_go_of_the_arguments_in_this_process():
    """The caller drops its frame inside the block and it is freed here (the child keeps its own copy)."""
    frame = pd.DataFrame({"a": range(10)})
    freed = []
    weakref.finalize(frame, freed.append, True)
    with partition.beside(len, frame, processes=2) as answer:
        del frame
        assert freed == [True]
        assert answer() == 10


KILLED_PARENT = """
import fcntl, os, sys, time
from subsidy_ledger import partition, stage_process

def tell(pid):  # one write of the whole line: the processes' lines must not interleave on the pipe
    os.write(1, f"{pid}\\n".encode())

def tell_then_sleep(*_):
    tell(os.getpid())
    time.sleep(120)

def stage_with_pool():
    tell(os.getpid())
    with partition.as_done(tell_then_sleep, range(2), processes=2) as done:
        for _ in done:
            pass

with open(sys.argv[1], "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if sys.argv[2] == "beside":
        with partition.beside(tell_then_sleep, processes=2):
            time.sleep(120)
    elif sys.argv[2] == "pool":
        with partition.as_done(tell_then_sleep, range(2), processes=2) as done:
            for _ in done:
                pass
    else:  # a stage in its own process, working in a pool of its own
        stage_process.alone(stage_with_pool, what="stage")
"""


def _gone(pid: int) -> bool:
    """The process has ended: every thread of it a zombie or gone (a zombie holds no files; who reaps it depends
    on the machine). Its first thread turns zombie while the others may still be closing the files they share."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for t in threads:
        try:
            if Path(f"/proc/{pid}/task/{t}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return False
        except OSError:
            continue
    return True


@pytest.mark.parametrize(("kind", "forked"), [("beside", 1), ("pool", 2), ("stage", 3)])
def test_forked_processes_die_with_their_parent_and_free_the_lock_they_inherited(tmp_path, kind, forked):
    """A night killed with -9 while its forked processes work (beside's child; a pool's two workers; a stage's
    process and, below it, its pool's two workers): they go too, and with them the files they inherited (an
    flock here), not when they would have ended. Nothing is left waiting on work that will never come."""
    import fcntl
    import signal
    import subprocess
    import sys

    lock = tmp_path / "night.lock"
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(lock), kind], stdout=subprocess.PIPE,
                              text=True)
    children = [int(parent.stdout.readline()) for _ in range(forked)]
    assert len(set(children)) == forked and parent.pid not in children
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(30)
    deadline = time.monotonic() + 30  # their own sleep would last 120 s
    while not all(_gone(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [c for c in children if not _gone(c)] == []
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if a child still held it


def _chunked(frame: pd.DataFrame, rows: int, drawn: list[int], s: int):
    for start in range(0, max(len(frame), 1), rows):
        drawn[s] += 1
        yield frame.iloc[start:start + rows]


def test_merge_puts_sorted_streams_in_key_order_a_chunk_of_each_at_a_time():
    """Streams of chunks, each sorted (ties, an empty stream, a key shared by two streams): one stream in key
    order with every row once, each frame no more than a chunk of each stream."""
    rng = np.random.default_rng(7)
    key = ["subsidy_type", "reference"]
    frames = []
    for n in (0, 1, 500, 1234, 2000):
        frames.append(pd.DataFrame({
            "subsidy_type": pd.array(rng.choice(["certificate", "living", "apprentice"], n), dtype="string"),
            "reference": pd.array(rng.integers(0, 300, n).astype(str), dtype="string"),
            "row": np.arange(n) + 10_000 * len(frames)}).sort_values(key, kind="stable", ignore_index=True))
    drawn = [0] * len(frames)
    out = list(partition.merge([_chunked(f, 97, drawn, s) for s, f in enumerate(frames)], key))
    assert max(len(f) for f in out) <= 97 * len(frames)
    assert len(out) > len(frames)  # in many frames, not all at once
    merged = pd.concat(out, ignore_index=True)
    everything = pd.concat(frames, ignore_index=True)
    assert merged[key].equals(everything.sort_values(key, kind="stable", ignore_index=True)[key])
    assert sorted(merged["row"]) == sorted(everything["row"])
    assert drawn == [1, 1, 6, 13, 21]  # every chunk read, once


def test_put_chunks_and_chunks_give_the_frame_back_in_order(tmp_path):
    frame = pd.DataFrame({"person_id": [f"P{i}" for i in range(10)], "n": range(10)})
    partition.put_chunks(tmp_path, 2, "out/x", frame, SEAL, rows=4)
    parts = list(partition.chunks(tmp_path, 2, "out/x", SEAL))
    assert [len(p) for p in parts] == [4, 4, 2]
    assert pd.concat(parts, ignore_index=True).equals(frame)
    partition.put_chunks(tmp_path, 3, "out/x", frame.iloc[:0], SEAL, rows=4)
    assert [list(p.columns) for p in partition.chunks(tmp_path, 3, "out/x", SEAL)] == [["person_id", "n"]]


def test_in_groups_takes_the_parts_as_they_come():
    assert list(partition.in_groups(iter([3, 1, 0, 2, 5, 4, 6]), 7, 4)) == [[3, 1], [0, 2], [5, 4], [6]]
    assert list(partition.in_groups(range(4), 4, 4)) == [[0], [1], [2], [3]]
    assert list(partition.in_groups(range(3), 3, 1)) == [[0, 1, 2]]


def _rss_and_parent(_: int) -> tuple[float, int]:
    """This process's resident memory (MiB) and its parent's process id."""
    rss = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return rss / 1024, os.getppid()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_lean_processes_do_not_start_with_what_the_parent_holds():
    """A forked process starts resident with all its parent holds; a lean one comes from the fork server, so
    256 MiB the parent holds (a night's frames, say) are not in it."""
    held = bytearray(256 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])  # resident, page by page
    forked = partition.run(_rss_and_parent, [0, 1], processes=2)
    with partition.meanwhile(_rss_and_parent, [0, 1], processes=2, lean=True) as lean:
        pass
    assert all(parent == os.getpid() for _, parent in forked)
    assert all(parent != os.getpid() for _, parent in lean)
    assert max(rss for rss, _ in lean) < min(rss for rss, _ in forked) - 200
    del held


def test_cli_refuses_a_partition_count_out_of_range(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--sources", "x", "--as-of", "2021-06-30", "--partitions", "0"])
    assert exit_.value.code == 2
    assert "not a whole number from 1 to 256" in capsys.readouterr().err


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    root = tmp_path_factory.mktemp("partition")
    generate(400, 21, root / "a")
    change(root / "a", root / "b", 0.05, 3)
    return root


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _tables(url: str) -> dict[str, list[tuple]]:
    """Every table a night writes that an auditor reads, in the order of all its columns but wall-clock ones."""
    names = ("ledger_lines", "decisions", "claim_sources", "publicity", "payment_instructions", "payment_outcomes",
             "city_overlaps", "int_certificate_eligibility", "int_apprentice_eligibility",
             "int_living_allowance_eligibility", "int_training_eligibility", "assessment")
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as c:
        for name in names:
            t = warehouse.metadata.tables[name]
            cols = [col for col in t.columns if col.name not in ("created_at", "recorded_at", "decided_at")]
            out[name] = sorted((tuple(r) for r in c.execute(sa.select(*cols)).all()), key=repr)
    engine.dispose()
    return out


def _ascending_runs(url: str, table: sa.Table, key: tuple[str, ...]) -> dict[str, int]:
    """Per night, into how many ascending runs of the key the table's rows fall in SQLite's insertion (rowid)
    order: 1 if they went in in key order."""
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(sa.select(table.c.run_id, *(table.c[k] for k in key)).order_by(
            sa.literal_column("rowid"))).all()
    engine.dispose()
    runs: dict[str, int] = {}
    for before, row in zip([None, *rows], rows, strict=False):
        fresh = before is None or before[0] != row[0]
        runs[row[0]] = runs.get(row[0], 0) + (fresh or tuple(row[1:]) < tuple(before[1:]))
    return runs


def _nights(drops, url: str, out, k: int, processes: int) -> list[dict]:
    results = []
    for drop, night in NIGHTS:
        results.append(pipeline.run(pipeline.RunConfig(
            sources=str(drops / drop), as_of=night, warehouse=url, out=str(out), run_id=f"cli__{night}",
            partitions=k, partition_workers=processes)))
    return results


@pytest.mark.usefixtures("relaxed_gates")
def test_one_or_seven_partitions_give_the_same_extracts_and_ledger(drops, warehouse_url, tmp_path, monkeypatch):
    """The same three nights with K = 1 and with K = 7 (in two processes): byte-identical extracts and bank
    files, and the same ledger, decisions, lineage, publicity, payments and eligibility tables. The K = 7
    nights also write their workbooks in two processes (the pool a large night uses), the K = 1 nights in one."""
    monkeypatch.setattr(export, "POOLED_BOOK_ROWS", 0)
    pools, meanwhile = [], partition.meanwhile

    def counted(fn, parts, *args, processes=1, lean=False):
        if fn is export._write_book:
            pools.append((processes, lean))
        return meanwhile(fn, parts, *args, processes=processes, lean=lean)

    monkeypatch.setattr(partition, "meanwhile", counted)
    # one person-code key for both warehouses (each would make its own), so that the extracts can be compared
    monkeypatch.setenv(warehouse.PERSON_CODE_KEY_ENV, "partition-test-key")
    one = _nights(drops, warehouse_url, tmp_path / "k1", 1, 1)
    other_url = f"sqlite:///{tmp_path / 'k7.sqlite'}" if warehouse_url.startswith("sqlite") else None
    drop_db = None
    if other_url is None:  # a second PostgreSQL database beside the fixture's
        base = warehouse_url.rsplit("/", 1)
        admin = sa.create_engine(f"{base[0]}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{base[1]}_k7"'))
        other_url = f"{base[0]}/{base[1]}_k7"

        def drop_db():
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{base[1]}_k7" WITH (FORCE)'))
            admin.dispose()
    try:
        seven = _nights(drops, other_url, tmp_path / "k7", 7, 2)
        assert pools == [(1, True)] * 3 + [(2, True)] * 3  # K = 7 nights: two lean processes
        assert [r["eligibility"]["partitions"] for r in one] == [1, 1, 1]
        assert [r["eligibility"]["partitions"] for r in seven] == [7, 7, 7]
        assert [r["decide"]["partitions"] for r in seven] == [7, 7, 7]
        how = ("partition_seconds", "partitions")
        counts = [{k: v for k, v in r["decide"].items() if k not in how} for r in one]
        assert counts == [{k: v for k, v in r["decide"].items() if k not in how} for r in seven]
        assert [[len(r["decide"]["partition_seconds"][s]) for s in ("training", "decisions")] for r in seven] == [
            [7, 7]] * 3
        lines = _tables(warehouse_url)["ledger_lines"]
        assert {"payout", "reversal"} <= {line[2] for line in lines}, "the nights should pay and correct"
        assert _tables(warehouse_url) == _tables(other_url)
        if other_url.startswith("sqlite"):  # the partitions' tables went in merged, in LOAD_GROUPS groups
            for table, key in ((warehouse.claim_sources, contract.CLAIM_KEY), (warehouse.decisions, contract.CLAIM_KEY),
                               *((t, k) for t, _, k in pipeline.ELIGIBILITY)):
                runs = _ascending_runs(other_url, table, key)
                assert runs and max(runs.values()) <= pipeline.LOAD_GROUPS, (table.name, runs)
        for _, night in NIGHTS:
            assert _digest(tmp_path / "k1" / night) == _digest(tmp_path / "k7" / night)
        assert _digest(tmp_path / "k1" / "payments") == _digest(tmp_path / "k7" / "payments")
        assert _digest(tmp_path / "k1" / "payments"), "the nights should instruct the bank"
    finally:
        if drop_db:
            drop_db()


def test_cli_partitions_in_processes_share_an_s3_work_store(small_drop, s3, tmp_path, monkeypatch):
    """The CLI's night with its work store in a bucket (moto's S3 server on 127.0.0.1), three partitions in two
    processes: every stage (as the CLI runs them), validate's staging, extract's pool and the partitions run in
    forked processes, each with an S3 client of its own. The work goes through the bucket and goes with the run;
    the night answers as a one-partition night with a local folder does."""
    monkeypatch.setenv(warehouse.PERSON_CODE_KEY_ENV, "s3-cli-test-key")  # comparable extracts
    s3_out, s3_wh = tmp_path / "s3", f"sqlite:///{tmp_path / 's3.sqlite'}"
    result = pipeline.run(pipeline.RunConfig(sources=str(small_drop), as_of="2022-06-30", warehouse=s3_wh,
                                             out=str(s3_out), run_id="s3__2022-06-30", partitions=3,
                                             partition_workers=2), call=stage_process.call)
    assert result["decide"]["partitions"] == 3
    written = {v["Key"] for v in s3.list_object_versions(Bucket=S3_BUCKET).get("Versions", [])}
    assert any(k.endswith("/raw/social_insurance.parquet") for k in written)  # parked by extract's pool
    for v in s3.list_object_versions(Bucket=S3_BUCKET).get("Versions", []):  # every frame went in sealed
        if v["Key"].endswith(".parquet"):
            body = s3.get_object(Bucket=S3_BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            assert body.startswith(workstore.MAGIC), v["Key"]
    for step in ("eligibility", "decide"):
        for i in range(3):
            assert any(f"/{step}/p{i}/" in k for k in written), (step, i)
    assert not s3.list_objects_v2(Bucket=S3_BUCKET).get("Contents"), "the run leaves no work (full identity numbers)"

    monkeypatch.setenv(pipeline.WORK_ENV, str(tmp_path / "work"))
    monkeypatch.delenv(pipeline.WORK_CONN_ENV)
    local_out, local_wh = tmp_path / "local", f"sqlite:///{tmp_path / 'local.sqlite'}"
    pipeline.run(pipeline.RunConfig(sources=str(small_drop), as_of="2022-06-30", warehouse=local_wh,
                                    out=str(local_out), run_id="s3__2022-06-30", partitions=1))
    assert _digest(s3_out / "2022-06-30") == _digest(local_out / "2022-06-30")
    assert _tables(s3_wh) == _tables(local_wh)
