"""A corpus of broken drops, each kept as a recipe applied to a generated drop.

Every recipe ends one of three ways: a one-line error naming the file and the problem with nothing
posted (exit 2); the drop gate stopping the night with nothing posted (exit 3), until an operator
accepts the change; or the bad rows quarantined with their reasons (rows in = accepted + quarantined)
and the run going on. Never a traceback, never a silent drop. A quarantine recipe returns the record
numbers it broke, and the test asserts on exactly those rows, so a recipe that does nothing fails.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from stdnum.cn import ric
from subsidy_ledger.cli import main
from subsidy_ledger.extract import sniff_encoding
from subsidy_ledger.generate import generate

AS_OF = "2022-06-30"


def _id(first17: str, wrong: bool = False) -> str:
    """A resident id with its real check character (or a wrong one)."""
    check = ric.calc_check_digit(first17 + "0")
    return first17 + ({"0": "1"}.get(check, "0") if wrong else check)

FORMULA = '=HYPERLINK("http://example.invalid","点我")'


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("broken") / "base"
    generate(300, 41, path)
    return path


# ---- helpers that edit a drop the way real exports go wrong ------------------------------------------

def _read(drop: Path, file: str) -> tuple[list[list[str]], str]:
    enc, _ = sniff_encoding(drop / file)
    with open(drop / file, encoding=enc, newline="") as fh:
        return list(csv.reader(fh)), enc


def _write(drop: Path, file: str, rows: list[list[str]], enc: str = "utf-8-sig") -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (drop / file).write_text(buf.getvalue(), encoding=enc)


def set_cell(file: str, column: str, value: str, row: int = 1):
    """Recipe: put value into one cell (row counts data rows from 1); returns the record number it broke."""
    def apply(drop: Path) -> list[int]:
        rows, enc = _read(drop, file)
        rows[row][rows[0].index(column)] = value
        _write(drop, file, rows, enc)
        return [row + 1]  # the header is record 1
    return apply


def edit_rows(file: str, fn, broken=lambda rows: []):
    """Recipe: rewrite a file's records; broken(new_rows) gives the record numbers the edit broke."""
    def apply(drop: Path) -> list[int]:
        rows, enc = _read(drop, file)
        new = fn(rows)
        _write(drop, file, new, enc)
        return broken(new)
    return apply


def raw_bytes(file: str, fn):
    def apply(drop: Path):
        (drop / file).write_bytes(fn((drop / file).read_bytes()))
    return apply


def _replace_with(file: str, kind: str):
    """Recipe: put a directory, a FIFO or a dangling symbolic link where the file was."""
    def apply(drop: Path):
        path = drop / file
        path.unlink()
        if kind == "directory":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to(drop / "gone" / file)
    return apply


def _cut_inside_character(file: str):
    """Recipe: the transfer stopped in the middle of the file's last Chinese character."""
    def apply(drop: Path):
        data = (drop / file).read_bytes()
        text = data.decode("utf-8-sig")
        last = max(i for i, ch in enumerate(text) if ord(ch) > 127)
        cut = len(text[:last].encode("utf-8")) + (3 if data.startswith(b"\xef\xbb\xbf") else 0) + 1
        (drop / file).write_bytes(data[:cut])
    return apply


def _truncated_mid_record(rows):
    rows[-1] = rows[-1][:3]
    return rows


def _huge_field(rows):
    # over Arrow's block and Python's 131,072-character field limit: no registry export holds such a field
    rows[1][rows[0].index("name")] = "王" * 3_000_000
    return rows


def _bom_inside(rows):
    rows[3][0] = "\ufeff" + rows[3][0]
    return rows


def _spaced_id(rows):
    i = rows[0].index("person_id")
    pid = rows[1][i]
    rows[1][i] = f"{pid[:6]} {pid[6:14]} {pid[14:]}"
    return rows


def _extra_twice(rows):
    return [row + (["备注", "备注"] if i == 0 else ["a", "b"]) for i, row in enumerate(rows)]


def _rename(rows, old, new):
    rows[0][rows[0].index(old)] = new
    return rows


def _drop_col(rows, col):
    i = rows[0].index(col)
    return [r[:i] + r[i + 1:] for r in rows]


def _dup_row(rows, k=1):
    return [*rows, list(rows[k])]


def _quoted_newline(rows):
    rows[1][rows[0].index("name")] = "张\n三"
    return rows


def _field_count(rows, delta):
    rows[2] = rows[2] + ["x"] * delta if delta > 0 else rows[2][:delta]
    return rows


def _reencode(file, enc):
    def apply(drop):
        rows, _ = _read(drop, file)
        _write(drop, file, rows, enc)
    return apply


def _unlink(file):
    def apply(drop):
        (drop / file).unlink()
    return apply


ERRORS = {  # recipe -> (file named in the error, words in the error)
    "missing_required_file": (_unlink("veterans.csv"), "veterans.csv", "missing from the drop"),
    "missing_column": (edit_rows("certificates.csv", lambda r: _drop_col(r, "status")), "certificates.csv",
                       "missing required column(s) status"),
    "renamed_column": (edit_rows("social_insurance.csv", lambda r: _rename(r, "start_date", "开始日期")),
                       "social_insurance.csv", "missing required column(s) start_date"),
    "duplicate_column": (edit_rows("veterans.csv", lambda r: _rename(r, "town_code", "name")), "veterans.csv",
                         "duplicate column"),
    "empty_file": (raw_bytes("low_income.csv", lambda b: b""), "low_income.csv", "empty"),
    "utf16_file": (_reencode("veterans.csv", "utf-16"), "veterans.csv", "UTF-16"),
    "utf32_file": (_reencode("veterans.csv", "utf-32"), "veterans.csv", "UTF-32"),
    "required_is_directory": (_replace_with("certificates.csv", "directory"), "certificates.csv", "is a directory"),
    "required_is_fifo": (_replace_with("social_insurance.csv", "fifo"), "social_insurance.csv", "FIFO"),
    "required_dangling_symlink": (_replace_with("veterans.csv", "symlink"), "veterans.csv",
                                  "dangling symbolic link"),
    "field_over_csv_limit": (edit_rows("certificates.csv", _huge_field), "certificates.csv",
                             "record 2 is not readable as CSV"),
    "cut_inside_multibyte_character": (_cut_inside_character("certificates.csv"), "certificates.csv",
                                       "cut short"),
    "undecodable_bytes": (raw_bytes("certificates.csv", lambda b: b[:200] + b"\xff\xfe\x80\x81" * 50 + b[200:]),
                          "certificates.csv", "cannot be decoded as UTF-8 or GB18030"),
    "header_with_spaces": (edit_rows("unemployment_registrations.csv", lambda r: _rename(r, "area", " area ")),
                           "unemployment_registrations.csv", "missing required column(s) area"),
    "double_bom": (raw_bytes("certificates.csv", lambda b: b"\xef\xbb\xbf" + b), "certificates.csv", ""),
}

QUARANTINED = {  # recipe -> (registry, reason prefix)
    "wrong_check_character": (set_cell("certificates.csv", "person_id", _id("33050319830225371", wrong=True)),
                              "certificates", "invalid_person_id"),
    "id_17_characters": (set_cell("veterans.csv", "person_id", _id("33050319830225371")[:17]), "veterans",
                         "invalid_person_id"),
    "id_19_characters": (set_cell("low_income.csv", "person_id", _id("33050319830225371") + "0"), "low_income",
                         "invalid_person_id"),
    "future_birth_date": (set_cell("social_insurance.csv", "person_id", _id("33050320990101001")), "social_insurance",
                          "invalid_person_id"),
    "missing_person_id": (set_cell("city_payouts.csv", "person_id", ""), "city_payouts", "missing_person_id"),
    "impossible_date": (set_cell("certificates.csv", "issued_on", "2021-02-30"), "certificates",
                        "invalid_issued_on"),
    "slash_date": (set_cell("veterans.csv", "discharged_on", "2019/05/06"), "veterans", "invalid_discharged_on"),
    "far_future_date": (set_cell("certificates.csv", "issued_on", "2150-01-01"), "certificates",
                        "invalid_issued_on"),
    "date_with_spaces": (set_cell("low_income.csv", "valid_from", " 2020-01-01"), "low_income",
                         "invalid_valid_from"),
    "end_before_start": (set_cell("social_insurance.csv", "end_date", "1990-01-01"), "social_insurance",
                         "end_date_after_start_date"),
    "negative_amount": (set_cell("city_payouts.csv", "amount", "-1500.00"), "city_payouts", "invalid_amount"),
    "absurd_amount": (set_cell("city_payouts.csv", "amount", "150000000000.00"), "city_payouts",
                      "invalid_amount"),
    "three_decimals": (set_cell("city_payouts.csv", "amount", "1500.005"), "city_payouts", "invalid_amount"),
    "negative_allowance": (set_cell("apprenticeships.csv", "monthly_allowance", "-300.00"), "apprenticeships",
                           "invalid_monthly_allowance"),
    "negative_attendance": (set_cell("class_enrollments.csv", "attendance_days", "-5"), "class_enrollments",
                            "invalid_attendance_days"),
    # more days than the class has (POLICY.md revision 2: quarantined, never capped)
    "attendance_beyond_class_days": (set_cell("class_enrollments.csv", "attendance_days", "999"),
                                     "class_enrollments", "attendance_exceeds_class_days"),
    "unknown_certificate_type": (set_cell("certificates.csv", "certificate_type", "荣誉证书"), "certificates",
                                 "unknown_certificate_type"),
    "unknown_level": (set_cell("certificates.csv", "level", "6"), "certificates", "unknown_level"),
    "unknown_category": (set_cell("low_income.csv", "category", "poor"), "low_income", "unknown_category"),
    "unknown_employer_category": (set_cell("social_insurance.csv", "employer_category", "机关"),
                                  "social_insurance", "unknown_employer_category"),
    "unknown_passed": (set_cell("class_enrollments.csv", "passed", "yes"), "class_enrollments",
                       "unknown_passed"),
    "unknown_department": (set_cell("apprenticeships.csv", "department_code", "FINANCE"), "apprenticeships",
                           "unknown_department_code"),
    "bad_credit_code": (set_cell("social_insurance.csv", "employer_credit_code", "91330503MA2B3C4D5X"),
                        "social_insurance", "invalid_employer_credit_code"),
    "bad_uplift_rate": (set_cell("affected_enterprises.csv", "uplift_rate", "twenty"), "affected_enterprises",
                        "invalid_uplift_rate"),
    "duplicate_key": (edit_rows("certificates.csv", _dup_row, lambda r: [2, len(r)]), "certificates",
                      "duplicate_key"),
    "duplicate_compound_key": (edit_rows("class_enrollments.csv", _dup_row, lambda r: [2, len(r)]),
                               "class_enrollments", "duplicate_key"),
    "too_many_fields": (edit_rows("veterans.csv", lambda r: _field_count(r, 2), lambda r: [3]), "veterans",
                        "malformed_record"),
    "too_few_fields": (edit_rows("veterans.csv", lambda r: _field_count(r, -2), lambda r: [3]), "veterans",
                       "malformed_record"),
    "truncated_mid_record": (edit_rows("certificates.csv", _truncated_mid_record, lambda r: [len(r)]),
                             "certificates", "malformed_record"),
    "nul_byte_in_value": (set_cell("certificates.csv", "name", "张\x00三"), "certificates", "control_character"),
    "nul_byte_in_key": (set_cell("veterans.csv", "record_id", "VT\x00001"), "veterans", "control_character"),
    "bom_in_the_middle": (edit_rows("veterans.csv", _bom_inside, lambda r: [4]), "veterans", "control_character"),
    "excel_serial_date": (set_cell("certificates.csv", "issued_on", "43676"), "certificates", "invalid_issued_on"),
    "amount_with_thousands_comma": (set_cell("city_payouts.csv", "amount", "1,500.00"), "city_payouts",
                                    "invalid_amount"),
    "amount_with_yuan": (set_cell("city_payouts.csv", "amount", "1500元"), "city_payouts", "invalid_amount"),
    "very_long_name": (set_cell("social_insurance.csv", "name", "王" * 10_000), "social_insurance",
                       "overlong_name"),
    "very_long_key": (set_cell("certificates.csv", "certificate_no", "9" * 300), "certificates",
                      "invalid_certificate_no"),
    "formula_as_key": (set_cell("certificates.csv", "certificate_no", "=1+2"), "certificates",
                       "invalid_certificate_no"),
    "missing_key": (set_cell("training_classes.csv", "class_id", ""), "training_classes", "missing_class_id"),
}

ACCEPTED = {  # recipe -> files that must still be read in full (nothing quarantined for it)
    "extra_column": edit_rows("veterans.csv", lambda r: [row + ["备注" if i == 0 else "x"]
                                                         for i, row in enumerate(r)]),
    "columns_reordered": edit_rows("veterans.csv", lambda r: [row[::-1] for row in r]),
    "header_only": edit_rows("city_payouts.csv", lambda r: r[:1]),
    "quoted_newline_in_name": edit_rows("veterans.csv", _quoted_newline),
    "gb18030_instead_of_utf8": _reencode("certificates.csv", "gb18030"),
    "utf8_without_bom": _reencode("class_enrollments.csv", "utf-8"),
    "crlf_line_endings": raw_bytes("certificates.csv", lambda b: b.replace(b"\n", b"\r\n")),
    "lowercase_x_check_character": set_cell("veterans.csv", "person_id", "33050319760920018x"),
    "optional_file_absent": _unlink("subsidy_catalog.csv"),
    "identity_number_with_spaces": edit_rows("veterans.csv", _spaced_id),
    # typed in a full-width input mode: stdnum's clean() reads it as the same (valid) number
    "full_width_digits": set_cell("certificates.csv", "person_id", "３３０５０３１９８３０２２５３７１６"),
    "extra_column_twice": edit_rows("veterans.csv", _extra_twice),
}

STOPPED = {  # recipe -> (registry the drop gate names, words): exit 3 on the first night, accepted on request
    "required_header_only": (edit_rows("certificates.csv", lambda r: r[:1]), "certificates", "no accepted rows"),
    "optional_is_directory": (_replace_with("training_classes.csv", "directory"), "training_classes",
                              "is a directory"),
    "optional_is_fifo": (_replace_with("city_payouts.csv", "fifo"), "city_payouts", "FIFO"),
    "optional_dangling_symlink": (_replace_with("subsidy_catalog.csv", "symlink"), "subsidy_catalog",
                                  "dangling symbolic link"),
}


def _run(drop: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str, Path, str]:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    out = tmp_path / "out"
    code = main(["run", "--sources", str(drop), "--as-of", AS_OF, "--warehouse", url, "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip(), out / AS_OF, url


def _copy(base, tmp_path) -> Path:
    drop = tmp_path / "drop"
    shutil.copytree(base, drop)
    return drop


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.read_text("utf-8-sig").splitlines()))


def test_the_corpus_has_at_least_sixty_broken_drops():
    assert len(ERRORS) + len(QUARANTINED) + len(ACCEPTED) + len(STOPPED) >= 60


@pytest.fixture(scope="module")
def clean(base, tmp_path_factory, suite_env) -> Path:
    """The extracts of the untouched base drop's night."""
    tmp = tmp_path_factory.mktemp("clean")
    out = tmp / "out"
    with pytest.MonkeyPatch.context() as mp:
        suite_env(mp, tmp / "work")
        assert main(["run", "--sources", str(base), "--as-of", AS_OF, "--warehouse",
                     f"sqlite:///{tmp / 'w.sqlite'}", "--out", str(out)]) == 0
    return out / AS_OF


@pytest.fixture(scope="module")
def clean_quarantine(clean) -> set[tuple[str, int]]:
    """(registry, row) pairs the untouched base drop already quarantines."""
    return {(q["registry"], int(q["row_number"])) for q in _rows(clean / "quarantine.csv")}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_unreadable_files_stop_the_run_with_one_line_naming_the_file(name, base, tmp_path, capsys):
    recipe, file, words = ERRORS[name]
    drop = _copy(base, tmp_path)
    recipe(drop)
    code, err, root, url = _run(drop, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {file}: ") and words in err and "nothing was posted" in err
    assert not root.exists()
    engine = sa.create_engine(url)
    with engine.connect() as c:
        if "ledger_lines" in sa.inspect(c).get_table_names():
            assert c.execute(sa.text("select count(*) from ledger_lines")).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("name", sorted(QUARANTINED))
def test_bad_rows_are_quarantined_with_their_reason(name, base, tmp_path, capsys, clean_quarantine):
    recipe, registry, reason = QUARANTINED[name]
    drop = _copy(base, tmp_path)
    broken = recipe(drop)
    assert broken, f"{name} names no row it broke"
    # the rows the recipe broke were fine before it, so a recipe that does nothing fails below
    assert not {(registry, n) for n in broken} & clean_quarantine, (name, broken)
    code, err, root, _ = _run(drop, tmp_path, capsys)
    assert code == 0, err
    quarantined = [q for q in _rows(root / "quarantine.csv") if q["registry"] == registry]
    reasons = {int(q["row_number"]): q["reasons"].split(";") for q in quarantined}
    for n in broken:
        assert n in reasons and any(x == reason or x.startswith(reason) for x in reasons[n]), (name, n, reasons)
    for r in _rows(root / "reconciliation.csv"):
        assert int(r["rows_in"]) == int(r["accepted"]) + int(r["quarantined"])
    for q in quarantined:  # keys and reasons that look like formulas are neutralised in the extract
        assert not q["key"].startswith(("=", "+", "-", "@"))


@pytest.mark.parametrize("name", sorted(STOPPED))
def test_the_drop_gate_stops_a_first_night_until_the_change_is_accepted(name, base, tmp_path, capsys):
    recipe, registry, words = STOPPED[name]
    drop = _copy(base, tmp_path)
    recipe(drop)
    code, err, root, url = _run(drop, tmp_path, capsys)
    assert code == 3 and len(err.splitlines()) == 1, err
    assert err.startswith("error: drop gate: ") and words in err and "nothing was posted" in err, err
    assert f"--accept-drop-change {registry}" in err
    assert not root.exists()
    code, err, root, url = _run(drop, tmp_path, capsys, "--accept-drop-change", registry, "--accepted-by", "王科长")
    assert code == 0, err
    engine = sa.create_engine(url)
    with engine.connect() as c:
        who = c.execute(sa.text("select subject, accepted_by, finding from gate_acceptances")).all()
    engine.dispose()
    assert [(w[0], w[1]) for w in who] == [(registry, "王科长")] and words in who[0][2]
    rec = {r["registry"]: r for r in _rows(root / "reconciliation.csv")}
    assert rec[registry]["accepted"] == "0"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_tolerable_variations_are_read_in_full(name, base, clean, tmp_path, capsys):
    drop = _copy(base, tmp_path)
    before = {r["registry"]: r for r in _rows(clean / "reconciliation.csv")}
    ACCEPTED[name](drop)
    code, err, root, _ = _run(drop, tmp_path, capsys)
    assert code == 0, err
    for r in _rows(root / "reconciliation.csv"):
        c = before[r["registry"]]
        assert int(r["rows_in"]) == int(r["accepted"]) + int(r["quarantined"])
        if name == "header_only" and r["registry"] == "city_payouts":
            assert r["rows_in"] == "0"
        elif name == "optional_file_absent" and r["registry"] == "subsidy_catalog":
            assert r["present"] == "False" and r["rows_in"] == "0"
        else:
            assert (r["rows_in"], r["quarantined"]) == (c["rows_in"], c["quarantined"]), (name, r)


def test_formula_text_is_neutralised_in_csv_and_xlsx(base, tmp_path, capsys):
    drop = _copy(base, tmp_path)
    rows, enc = _read(drop, "certificates.csv")
    col = rows[0].index("name")
    for row in rows[1:]:
        row[col] = FORMULA
    _write(drop, "certificates.csv", rows, enc)
    code, err, root, _ = _run(drop, tmp_path, capsys)
    assert code == 0, err
    hits = 0
    for dept in (p for p in root.iterdir() if p.is_dir() and p.name != "assessment"):  # A1's folder: no names
        for r in _rows(dept / "decisions.csv"):
            if r["subsidy_type"] in ("skill_upgrade", "special_ability"):
                assert r["name"] == "'" + FORMULA
                hits += 1
        for book in ("ledger.xlsx", "decisions.xlsx"):
            wb = openpyxl.load_workbook(dept / book)
            for ws in wb.worksheets:
                for row in ws.iter_rows():
                    for cell in row:
                        assert cell.data_type != "f", f"{dept.name}/{book} {ws.title}!{cell.coordinate} is a formula"
    assert hits > 0
