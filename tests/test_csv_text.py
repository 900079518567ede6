"""The CSV extracts built with Arrow are byte for byte what pandas' to_csv writes, for hostile text and for
every CSV of a generated night."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from subsidy_ledger import csv_text, pipeline


def _pandas(frame: pd.DataFrame, path: Path) -> bytes:
    frame.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path.read_bytes()


def _hostile() -> pd.DataFrame:
    text = ["plain", "a,b", 'say "hi"', "line\nbreak", "cr\ronly", "crlf\r\nend", " edge ", "\u3000全角\u3000",
            "=SUM(A1)", "", None, "tab\there", '"', ",", "中文，逗号", "\x0b\x1c", "_x0041_"]
    n = len(text)
    return pd.DataFrame({
        "text": pd.Series(text, dtype="string"),
        "str": pd.Series(text, dtype="str"),
        "object": pd.Series(text, dtype=object),
        "all missing": pd.Series([None] * n, dtype=object),
        "Int64": pd.Series([i if i % 3 else None for i in range(-5, n - 5)], dtype="Int64"),
        "int64": pd.Series(range(10**12, 10**12 + n), dtype="int64"),
        "bool": pd.Series([i % 2 == 0 for i in range(n)]),
        "boolean": pd.Series([None if i % 4 == 0 else i % 2 == 0 for i in range(n)], dtype="boolean"),
        'head,"quoted"': pd.Series(["x"] * n, dtype="string"),
    })


@pytest.mark.parametrize("chunk_rows", [None, 3])
def test_hostile_text_is_written_as_pandas_writes_it(tmp_path, chunk_rows):
    frame = _hostile()
    body = csv_text.lines(frame, chunk_rows=chunk_rows)
    assert body is not None  # every column of this frame takes the Arrow path
    ours = b"\xef\xbb\xbf" + b"".join(bytes(chunk) for chunk in body)
    assert ours == _pandas(frame, tmp_path / "pandas.csv")
    csv_text.write(frame, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == ours


def test_an_empty_frame_is_its_header(tmp_path):
    frame = _hostile().iloc[:0]
    csv_text.write(frame, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == _pandas(frame, tmp_path / "pandas.csv")


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"amount": [1.5, None], "name": ["a", "b"]}),  # floats: pandas' own repr
    pd.DataFrame({"day": pd.to_datetime(["2022-06-30", None]), "name": ["a", "b"]}),
    pd.DataFrame({"mixed": ["a", 1], "name": ["a", "b"]}),
    pd.DataFrame({"only": ["", "b"]}),  # csv quotes a row that is one empty field
], ids=["float", "datetime", "mixed", "one column"])
def test_other_types_are_left_to_pandas(tmp_path, frame):
    assert csv_text.lines(frame) is None
    csv_text.write(frame, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == _pandas(frame, tmp_path / "pandas.csv")


def test_every_csv_of_a_night_is_what_pandas_writes(small_drop, tmp_path, monkeypatch, immediate_payment):
    checked, by_pandas = [], []
    real = csv_text.write

    def both(frame: pd.DataFrame, path: Path) -> None:
        real(frame, path)
        if csv_text.lines(frame) is None:
            by_pandas.append(path.name)
        assert path.read_bytes() == _pandas(frame, tmp_path / "reference.csv"), path.name
        checked.append((path.name, len(frame)))

    monkeypatch.setattr(csv_text, "write", both)
    cfg = pipeline.RunConfig(sources=str(small_drop), as_of="2022-06-30", warehouse=f"sqlite:///{tmp_path}/w.sqlite",
                             out=str(tmp_path / "out"), run_id="csv__2022-06-30")
    pipeline.run(cfg)
    names = {name for name, _ in checked}
    assert {"ledger.csv", "decisions.csv", "publicity.csv", "summary.csv", "quarantine.csv"} <= names
    assert by_pandas == []  # every extract of a night takes the Arrow path
    rows = {name: sum(n for file, n in checked if file == name) for name in ("ledger.csv", "decisions.csv",
                                                                           "publicity.csv")}
    assert min(rows.values()) > 0, rows  # compared with rows in them, not headers alone
