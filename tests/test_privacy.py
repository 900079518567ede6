"""Personal data stays in the warehouse: every file a night writes, a failed night's too, is scanned for
the drop's identity numbers; Data Docs cannot run registry content."""

from __future__ import annotations

import csv
import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from subsidy_ledger import pipeline, warehouse, workstore
from subsidy_ledger.cli import main
from subsidy_ledger.extract import sniff_encoding
from subsidy_ledger.generate import generate

ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9X](?![0-9A-Za-z])")  # not inside a hex payout id
HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'
SCRIPT = "<script>document.title='pwned'</script>"


def _ids(drop: Path, column: str = "person_id", shape: re.Pattern = ID_SHAPE) -> set[str]:
    ids = set()
    for path in drop.glob("*.csv"):
        enc, _ = sniff_encoding(path)
        with open(path, encoding=enc, newline="") as fh:
            for row in csv.DictReader(fh):
                ids |= {v for k, v in row.items() if k == column and v and shape.fullmatch(v)}
    return ids


ACCOUNT_SHAPE = re.compile(r"(?<![0-9A-Za-z])[0-9]{12,19}(?![0-9A-Za-z])")


def _texts(root: Path):
    """(file, text) for every file under root; workbooks are opened, being zip files of XML."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data[:2] == b"PK":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    yield f"{path}!{name}", z.read(name).decode("utf-8", "replace")
        else:
            yield str(path), data.decode("utf-8", "replace")


def _hits(root: Path, ids: set[str], shape: re.Pattern = ID_SHAPE) -> list[str]:
    return [f"{where}: {m}" for where, text in _texts(root) for m in shape.findall(text) if m in ids]


@pytest.fixture
def hostile_drop(tmp_path) -> Path:
    """A generated drop with markup in values the validation rejects and in a name it accepts."""
    drop = tmp_path / "drop"
    generate(400, 17, drop)
    path = drop / "certificates.csv"
    enc, _ = sniff_encoding(path)
    with open(path, encoding=enc, newline="") as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    rows[1][head.index("certificate_type")] = HOSTILE
    rows[2][head.index("name")] = SCRIPT
    rows[3][head.index("person_id")] = rows[3][head.index("person_id")][:17] + "0"  # fails its check character
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return drop


def test_no_identity_number_outside_the_warehouse_good_night_or_failed(hostile_drop, tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
    ids = _ids(hostile_drop)
    accounts = _ids(hostile_drop, "account_no", ACCOUNT_SHAPE)
    assert len(ids) > 300 and len(accounts) > 250
    out, work = tmp_path / "out", tmp_path / "work"
    url = f"sqlite:///{tmp_path / 'warehouse' / 'w.sqlite'}"
    args = ["run", "--warehouse", url, "--out", str(out), "--work", str(work)]
    assert main([*args, "--sources", str(hostile_drop), "--as-of", "2022-06-30"]) == 0
    assert main([*args, "--sources", str(hostile_drop), "--as-of", "2022-07-08"]) == 0  # publicity over: paid
    bank = out / "payments" / "2022-07-08"
    assert _hits(bank, ids) and _hits(bank, accounts, ACCOUNT_SHAPE)  # the bank's files carry them, and only they
    night2 = tmp_path / "night2"
    shutil.copytree(hostile_drop, night2)
    (night2 / "social_insurance.csv").write_text("record_id,person_id,name,employer_credit_code,employer_name,"
                                                 "employer_category,start_date,end_date,town_code\n", "utf-8")
    assert main([*args, "--sources", str(night2), "--as-of", "2022-07-09"]) == 3  # the drop gate stops it
    printed = capsys.readouterr()
    assert (out / "data_docs").is_dir() and list((out / "data_docs").rglob("*.html"))
    shutil.rmtree(out / "payments")
    assert _hits(out, ids) == [] and _hits(out, accounts, ACCOUNT_SHAPE) == []
    assert [m for m in ID_SHAPE.findall(printed.out + printed.err) if m in ids] == []
    assert not work.exists() or not any(work.rglob("*.parquet"))  # no scratch file survives either night
    assert not any(p.name == ".work" for p in out.rglob("*"))


def test_the_work_store_holds_no_readable_identity_or_account_number(hostile_drop, tmp_path):
    """After every stage, every scratch file is scanned: the frames in it are sealed with the run's key, so no
    identity or account number is there to read; unsealed with the key from the warehouse, they are there."""
    ids, accounts = _ids(hostile_drop), _ids(hostile_drop, "account_no", ACCOUNT_SHAPE)
    work, url = tmp_path / "work", f"sqlite:///{tmp_path / 'w.sqlite'}"
    scanned: dict[str, int] = {}

    def scan(stage: str, result: dict, seconds: float) -> None:
        files = [p for p in work.rglob("*") if p.is_file()]
        assert _hits(work, ids) == [] and _hits(work, accounts, ACCOUNT_SHAPE) == [], stage
        scanned[stage] = sum(p.suffix == ".parquet" for p in files)
        assert all(p.read_bytes().startswith(workstore.MAGIC) for p in files if p.suffix == ".parquet"), stage
        if stage == "extract":  # the scan would find them: the raw rows, unsealed, hold every one
            engine = warehouse.connect(url)
            with engine.connect() as conn:
                seal = workstore.Seal.for_run(warehouse.work_store_key(conn), cfg.run_id)
            engine.dispose()
            raw = [p for p in files if p.parent.name == "raw" and p.suffix == ".parquet"]
            plain = tmp_path / "plain"
            plain.mkdir()
            named = set()
            for p in raw:
                with open(p, "rb") as f:
                    (plain / p.name).write_bytes(seal.unseal(f, p.name))
                named |= set(workstore.read_frame(p, seal=seal).get("person_id", pd.Series()).dropna())
            assert ids <= named  # every one, in the parquet read back
            assert _hits(plain, ids) and _hits(plain, accounts, ACCOUNT_SHAPE)  # many even in compressed bytes

    cfg = pipeline.RunConfig(sources=str(hostile_drop), as_of="2022-06-30", warehouse=url, out=str(tmp_path / "out"),
                             run_id="cli__2022-06-30", work_dir=str(work))
    pipeline.run(cfg, on_stage=scan)
    assert list(scanned) == [name for name, _ in pipeline.STAGES]
    assert scanned["extract"] >= 15 and scanned["validate"] >= 15 and scanned["decide"] >= 1
    assert not work.exists() or not any(work.rglob("*.parquet"))


def test_data_docs_show_no_registry_value_and_run_none_in_chromium(hostile_drop, tmp_path, monkeypatch):
    monkeypatch.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
    out = tmp_path / "out"
    assert main(["run", "--sources", str(hostile_drop), "--as-of", "2022-06-30", "--warehouse",
                 f"sqlite:///{tmp_path / 'w.sqlite'}", "--out", str(out)]) == 0
    pages = sorted((out / "data_docs").rglob("validations/certificates/**/*.html"))
    assert pages
    for path, text in _texts(out / "data_docs"):
        if "_assets" in Path(path).parts:  # the vendored Bootstrap, jQuery ... files (data_docs.py)
            continue
        assert "onerror=" not in text and "<script>document.title" not in text
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))
    try:
        driver.get(pages[-1].as_uri())
        assert "certificates" in driver.page_source
        assert driver.execute_script("return document.title") != "pwned"
    finally:
        driver.quit()
