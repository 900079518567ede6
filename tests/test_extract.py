"""Reading drops: encodings, required files and columns, malformed records (CONTRACT.md "File drops")."""

import shutil

import pytest
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
