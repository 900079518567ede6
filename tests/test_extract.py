"""Reading drops: encodings, required files and columns, malformed records (CONTRACT.md "File drops")."""

import hashlib
import shutil

import pandas as pd
import pytest
from subsidy_ledger import extract
from subsidy_ledger.contract import PARSE_ERROR_COL, ROW_COL
from subsidy_ledger.extract import DropError, extract_drop, iter_drop, read_registry
from subsidy_ledger.registries import REGISTRIES

VET = REGISTRIES["veterans"]
HEADER = "record_id,person_id,name,discharged_on,town_code"
ROW = "V1,33050319800101123X,张伟,2015-06-01,330503100"


@pytest.mark.parametrize("encoding,label", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-bom"),
                                            ("gb18030", "gb18030")])
def test_encodings_are_detected(tmp_path, encoding, label):
    path = tmp_path / "veterans.csv"
    path.write_text(f"{HEADER}\n{ROW}\n", encoding=encoding)
    raw = read_registry(path, VET)
    assert raw.encoding == label
    assert raw.frame.loc[0, "name"] == "张伟" and list(raw.frame.columns[:5]) == HEADER.split(",")


def test_undecodable_file_is_a_drop_error(tmp_path):
    path = tmp_path / "veterans.csv"
    path.write_bytes(HEADER.encode() + b"\n\x81\x30\xff\xfe,\x80\n")
    with pytest.raises(DropError, match="veterans.csv: cannot be decoded"):
        read_registry(path, VET)


def test_missing_column_names_the_file_and_column(tmp_path):
    path = tmp_path / "veterans.csv"
    path.write_text("record_id,person_id,name,town_code\n", encoding="utf-8")
    with pytest.raises(DropError, match="veterans.csv: missing required column.*discharged_on"):
        read_registry(path, VET)


def test_empty_file_is_an_error_and_header_only_is_no_rows(tmp_path):
    path = tmp_path / "veterans.csv"
    path.write_bytes(b"")
    with pytest.raises(DropError, match="empty"):
        read_registry(path, VET)
    path.write_text(HEADER + "\n", encoding="utf-8")
    assert len(read_registry(path, VET).frame) == 0


def test_extra_columns_and_any_order_are_accepted(tmp_path):
    path = tmp_path / "veterans.csv"
    path.write_text("town_code,备注,discharged_on,name,person_id,record_id\n330503100,x,2015-06-01,张伟,P,V1\n",
                    encoding="utf-8")
    raw = read_registry(path, VET)
    assert raw.extra_columns == ("备注",) and raw.frame.loc[0, "record_id"] == "V1"


def test_record_with_too_many_fields_is_kept_and_flagged(tmp_path):
    path = tmp_path / "veterans.csv"
    path.write_text(f'{HEADER}\n{ROW}\nV2,X,"李\n娜",2016-01-01,330503101,extra\n{ROW.replace("V1", "V3")}\n',
                    encoding="utf-8")
    frame = read_registry(path, VET).frame
    assert len(frame) == 3
    assert frame[PARSE_ERROR_COL].notna().tolist() == [False, True, False]
    assert frame[ROW_COL].tolist() == [2, 3, 4]


def test_row_hashes_do_not_depend_on_the_slices_they_are_made_in(monkeypatch):
    """Each row's hash is SHA-256 of its registry columns and parse error joined by U+001F, missing as empty;
    a large registry is hashed in slices, and the slices change nothing (index and type included)."""
    rows = [{c: f"{c}{i}" for c in VET.columns} for i in range(7)]
    frame = pd.DataFrame(rows, dtype="string", index=range(10, 17))
    frame.loc[12, "name"] = pd.NA
    frame.loc[13, "name"] = "李娜\x1f"  # non-ASCII text is hashed as its UTF-8 bytes
    frame[PARSE_ERROR_COL] = pd.Series([pd.NA] * 6 + ["record has 7 fields, header has 5"], index=frame.index,
                                       dtype="string")
    whole = extract.row_hashes(frame, VET)
    monkeypatch.setattr(extract, "HASH_SLICE_ROWS", 3)
    pd.testing.assert_series_equal(extract.row_hashes(frame, VET), whole, check_dtype=True)
    third = "\x1f".join([*(frame.loc[12, c] if c != "name" else "" for c in VET.columns), ""])
    assert whole[12] == hashlib.sha256(third.encode()).hexdigest()[:32] and list(whole.index) == list(range(10, 17))
    fourth = "\x1f".join([*(frame.loc[13, c] for c in VET.columns), ""])
    assert whole[13] == hashlib.sha256(fourth.encode("utf-8")).hexdigest()[:32]
    assert whole[16] != extract.row_hashes(frame.assign(**{PARSE_ERROR_COL: pd.NA}).astype("string"), VET)[16]
    assert extract.row_hashes(frame.iloc[:0], VET).empty


def test_missing_required_registry_stops_the_drop(small_drop, tmp_path):
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    (drop / "certificates.csv").unlink()
    with pytest.raises(DropError, match="certificates.csv: required registry file is missing"):
        extract_drop(drop)


def test_a_missing_required_registry_stops_the_drop_before_any_file_is_read(small_drop, tmp_path):
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    last = [r for r in REGISTRIES.values() if r.required][-1]
    (drop / last.filename).unlink()
    with pytest.raises(DropError, match=f"{last.filename}: required registry file is missing"):
        next(iter_drop(drop))  # not after the first registries were read and parked


def test_optional_registries_may_be_absent(small_drop, tmp_path):
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    (drop / "city_payouts.csv").unlink()
    (drop / "subsidy_catalog.csv").unlink()
    raws = extract_drop(drop)
    assert not raws["city_payouts"].present and len(raws["city_payouts"].frame) == 0
    assert not raws["subsidy_catalog"].present and raws["certificates"].present
