"""The warehouse's bulk load: every row, in chunks, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from subsidy_ledger import warehouse


def test_insert_frame_loads_every_row_chunk_by_chunk(warehouse_url):
    """250 rows in chunks of 100 (the last one short; a chunk whose levels are all empty, and one with a tab and
    a backslash for COPY's escapes) come back exactly."""
    n = 250
    frame = pd.DataFrame({
        "run_id": "r1", "reference": [f"C{i:04d}" for i in range(n)], "person_id": [f"P{i:017d}" for i in range(n)],
        "name": ["a\tb\\c" if i == 7 else f"name {i}" for i in range(n)], "department_code": "HRSS",
        "occupation_code": None, "level": pd.array([None] * 100 + [i % 5 + 1 for i in range(100, n)], dtype="Int64"),
        "district_amount_fen": range(n), "city_certificate_no": "X",
        "city_paid_on": pd.to_datetime(["2021-03-01"] * n), "city_amount_fen": pd.array([None] * n, dtype="Int64")})
    engine = warehouse.connect(warehouse_url)
    with engine.begin() as conn:
        assert warehouse.insert_frame(conn, warehouse.city_overlaps, frame, chunk=100) == n
    with engine.connect() as conn:
        back = warehouse.read_frame(conn, warehouse.city_overlaps).sort_values("reference").reset_index(drop=True)
    engine.dispose()
    assert len(back) == n
    assert back["reference"].tolist() == frame["reference"].tolist()
    assert back["name"].tolist() == frame["name"].tolist()
    assert back["level"].tolist() == frame["level"].tolist()
    assert back["district_amount_fen"].astype("int64").tolist() == list(range(n))
    assert back["city_paid_on"].dt.strftime("%Y-%m-%d").eq("2021-03-01").all()
    assert back["city_amount_fen"].isna().all() and back["occupation_code"].isna().all()


def test_dates_are_stored_as_their_day_whatever_their_time_or_zone(warehouse_url):
    """A date column keeps the day: a time of day dropped (before 1970 too), a zoned time's local day, a missing
    date missing; as read back, the same as strftime('%Y-%m-%d') gave before Arrow's cast took its place."""
    after_midnight = pd.Timestamp("2022-07-01 00:30", tz="Asia/Shanghai")  # 2022-06-30 16:30 in UTC
    for paid_on, want in (
            (pd.to_datetime(["1969-12-31 23:00:00", "2022-06-30 13:45:10", None]),
             ["1969-12-31", "2022-06-30", None]),
            (pd.Series([dt.date(2021, 3, 4), None, dt.date(1899, 12, 31)], dtype=object),
             ["2021-03-04", None, "1899-12-31"]),
            (pd.Series([after_midnight] * 3), ["2022-07-01"] * 3)):
        frame = pd.DataFrame({"run_id": f"r{want[0]}", "reference": ["A", "B", "C"], "person_id": "P",
                              "department_code": "HRSS", "district_amount_fen": 1, "city_certificate_no": "X",
                              "city_paid_on": paid_on})
        engine = warehouse.connect(warehouse_url)
        with engine.begin() as conn:
            warehouse.insert_frame(conn, warehouse.city_overlaps, frame)
        with engine.connect() as conn:
            back = warehouse.read_frame(conn, warehouse.city_overlaps,
                                        warehouse.city_overlaps.c.run_id == f"r{want[0]}").sort_values("reference")
        engine.dispose()
        assert [None if pd.isna(d) else d.strftime("%Y-%m-%d") for d in back["city_paid_on"]] == want


def test_sqlite_rows_go_several_to_a_statement_within_its_limits_and_a_duplicate_stops_them_all(tmp_path,
                                                                                                 monkeypatch):
    """SQLite: with no row count of their own (SQLITE_ROWS_PER_INSERT above any limit) the statements keep within
    SQLite's limits on parameters and on a statement's length, for one row more than the parameters' limit lets
    into one statement (7 bound columns a row); 2,503 rows in statements of 400 leave a short one at the end;
    every row comes back as inserted. A duplicate key in the last statement raises SQLAlchemy's IntegrityError
    and the transaction keeps none of the rows."""
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.sqlite'}")
    t = warehouse.city_overlaps

    def rows(run_id: str, n: int) -> pd.DataFrame:
        return pd.DataFrame({"run_id": run_id, "reference": [f"C{i:05d}" for i in range(n)],
                             "person_id": [f"P{i % 97}" for i in range(n)], "name": [f"n'{i}" for i in range(n)],
                             "department_code": "HRSS", "level": [i % 5 for i in range(n)],
                             "district_amount_fen": range(n), "city_certificate_no": [f"X{i % 3}" for i in range(n)],
                             "city_amount_fen": [i * 7 for i in range(n)]})

    with engine.connect() as conn:
        wide = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 7 + 1
    for run_id, n, per in (("wide", wide, 10**9), ("short", 2_503, 400)):
        monkeypatch.setattr(warehouse, "SQLITE_ROWS_PER_INSERT", per)
        frame = rows(run_id, n)
        with engine.begin() as conn:
            assert warehouse.insert_frame(conn, t, frame, chunk=n) == n
        with engine.connect() as conn:
            back = warehouse.read_frame(conn, t, t.c.run_id == run_id).sort_values("reference", ignore_index=True)
        for col in ("reference", "person_id", "name", "city_certificate_no"):
            assert back[col].tolist() == frame[col].tolist(), col
        for col in ("level", "district_amount_fen", "city_amount_fen"):
            assert back[col].astype("int64").tolist() == list(frame[col]), col
    doubled = pd.concat([rows("dup", 1_000), rows("dup", 1)], ignore_index=True)
    monkeypatch.setattr(warehouse, "SQLITE_ROWS_PER_INSERT", 400)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        warehouse.insert_frame(conn, t, doubled)
    with engine.connect() as conn:
        assert warehouse.read_frame(conn, t, t.c.run_id == "dup").empty
    engine.dispose()


def _sorted_values(s: pd.Series) -> list:
    """A column's values, sorted, None for every kind of missing."""
    return sorted((None if pd.isna(v) else v for v in s.tolist()), key=lambda v: (v is None, str(v)))


def test_a_column_with_one_value_in_every_row_is_stored_as_bound_ones_are(warehouse_url, monkeypatch):
    """On SQLite a chunk's one-valued columns go into the statement as literals (a quote in the text, an
    integer, a date); what comes back is what was inserted, on both warehouses, whether some columns of a chunk
    have one value or all of them do, and (SQLite: PostgreSQL stores no NUL) when the one value holds a
    character no literal can."""
    statements = []
    insert = warehouse._insert_rows_sqlite
    monkeypatch.setattr(warehouse, "_insert_rows_sqlite",
                        lambda conn, head, row, bound: (statements.append(head + row), insert(conn, head, row, bound)))
    sqlite = warehouse_url.startswith("sqlite")
    n = 5
    some = pd.DataFrame({"run_id": "r1", "reference": [f"C{i}" for i in range(n)], "person_id": "P'1",
                         "name": "O'Brien", "district_amount_fen": 1234, "department_code": "HRSS",
                         "city_paid_on": pd.to_datetime(["2021-03-01"] * n),
                         "city_certificate_no": [f"X{i}" for i in range(n)]})
    every = pd.DataFrame({"run_id": ["r1"] * n, "subsidy_type": "certificate", "reference": "C'1", "person_id": "P",
                          "role": "certificate", "registry": "certificates", "source_row": 2**30,
                          "record_key": "a'b", "validated_run": "r1"})
    nul = every.assign(run_id="r2", record_key="a\x00b")
    gap = every.assign(run_id="r3", record_key=["k"] * (n - 1) + [None])  # one value, but one row has none
    engine = warehouse.connect(warehouse_url)
    for table, frame in ((warehouse.city_overlaps, some), (warehouse.claim_sources, every),
                         (warehouse.claim_sources, gap), *([(warehouse.claim_sources, nul)] if sqlite else [])):
        with engine.begin() as conn:
            assert warehouse.insert_frame(conn, table, frame) == n
        with engine.connect() as conn:
            back = warehouse.read_frame(conn, table, table.c.run_id == frame["run_id"].iloc[0])
        assert len(back) == n
        for col in frame.columns:
            got = back[col].dt.strftime("%Y-%m-%d") if col == "city_paid_on" else back[col].astype(object)
            want = frame[col].dt.strftime("%Y-%m-%d") if col == "city_paid_on" else frame[col]
            assert _sorted_values(got) == _sorted_values(want), col
    engine.dispose()
    if sqlite:
        assert "'O''Brien'" in statements[0] and "1234" in statements[0] and "'2021-03-01'" in statements[0]
        assert "?" in statements[1] and "'C''1'" in statements[1] and "'a''b'" in statements[1]
        assert "'k'" not in statements[2] and "'r3'" in statements[2]


def test_every_sqlite_connection_gets_the_page_cache_for_bulk_loads(tmp_path):
    """Each pooled connection of an SQLite warehouse runs with SQLITE_CACHE_KIB of page cache, in WAL mode."""
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with engine.connect() as a, engine.connect() as b:
        for conn in (a, b):
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -warehouse.SQLITE_CACHE_KIB
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_a_new_sqlite_warehouse_has_the_bulk_load_page_size_and_an_old_one_keeps_its_own(tmp_path):
    """A warehouse file created by connect gets SQLITE_PAGE_BYTES pages; a file made before with SQLite's
    default keeps its pages (SQLite cannot change a WAL file's page size) and still opens and migrates."""
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'new.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == warehouse.SQLITE_PAGE_BYTES
    engine.dispose()
    old = tmp_path / "old.sqlite"
    with contextlib.closing(sqlite3.connect(old)) as raw:
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("CREATE TABLE before_us (x INTEGER)")
        default = raw.execute("PRAGMA page_size").fetchone()[0]
    assert default != warehouse.SQLITE_PAGE_BYTES
    engine = warehouse.connect(f"sqlite:///{old}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == default
        assert "ledger_lines" in sa.inspect(conn).get_table_names()
    engine.dispose()


def test_the_checkpointer_copies_a_nights_log_beside_its_stages_and_leaves_none(tmp_path):
    """A night's stages connect with checkpoints=False: their commits stay in the write-ahead log, even when
    their connection closes, while the checkpointer holds the file open; a kick copies them into the file beside
    whatever runs next, and the block's end copies the rest and removes the log."""
    db = tmp_path / "w.sqlite"
    url, wal = f"sqlite:///{db}", Path(f"{db}-wal")
    n = 20_000
    rows = pd.DataFrame({"run_id": "r", "subsidy_type": "skill_upgrade", "reference": [f"C{i}" for i in range(n)],
                         "person_id": "3305031990", "role": "certificate", "registry": "certificates",
                         "source_row": range(n)})
    with warehouse.checkpointer(url) as kick:
        before = db.stat().st_size
        stage = warehouse.connect(url, pooled=False, checkpoints=False)
        with stage.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            warehouse.insert_frame(conn, warehouse.claim_sources, rows)
        stage.dispose()
        assert db.stat().st_size == before and wal.stat().st_size > 1_000_000  # the stage copied nothing
        kick()
        deadline = time.monotonic() + 60
        while db.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size > before  # copied while the block goes on
    assert not wal.exists()
    with contextlib.closing(sqlite3.connect(db)) as raw:
        assert raw.execute("SELECT count(*) FROM claim_sources").fetchone()[0] == n


def test_the_checkpointer_of_another_warehouse_does_nothing():
    """PostgreSQL has no write-ahead log to copy: the checkpointer connects to nothing (port 1 would refuse)."""
    with warehouse.checkpointer("postgresql+psycopg2://nobody@127.0.0.1:1/none") as kick:
        assert kick() is None
