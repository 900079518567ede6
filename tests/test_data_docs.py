"""GX Data Docs work with no internet and say what the gate decided (data_docs.py)."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from subsidy_ledger import data_docs
from subsidy_ledger.cli import main

REMOTE_LOAD = re.compile(r"""<(?:script|img)[^>]*\bsrc=["']https?:|<link[^>]*\bhref=["']https?:""", re.I)


@pytest.fixture(scope="module")
def docs(small_drop, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    mp = pytest.MonkeyPatch()
    mp.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
    try:
        assert main(["run", "--sources", str(small_drop), "--as-of", "2022-06-30", "--warehouse",
                     f"sqlite:///{tmp / 'w.sqlite'}", "--out", str(tmp / "out")]) == 0
    finally:
        mp.undo()
    with open(tmp / "out" / "2022-06-30" / "reconciliation.csv", encoding="utf-8-sig") as fh:
        rec = {r["registry"]: r for r in csv.DictReader(fh)}
    return tmp / "out" / "data_docs", rec


def test_no_page_loads_anything_from_the_internet(docs):
    root, _ = docs
    pages = list(root.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        text = page.read_text("utf-8")
        assert not REMOTE_LOAD.search(text), f"{page.relative_to(root)} loads {REMOTE_LOAD.search(text).group(0)}"
    for rel in data_docs.CDN_FILES.values():  # every page's reference resolves to a shipped file
        assert (root / data_docs.ASSETS_FOLDER / rel).is_file(), rel
    page = next(root.rglob("validations/certificates/**/*.html"))
    for ref in re.findall(r'(?:src|href)="([^"]*_assets/[^"]+)"', page.read_text("utf-8")):
        assert (page.parent / ref).resolve().is_file(), ref


def test_a_registry_with_quarantined_rows_passed_the_gate_and_says_so(docs):
    root, rec = docs
    n = int(rec["certificates"]["quarantined"])
    assert n > 0 and rec["certificates"]["gx_success"] == "False" and rec["certificates"]["gate"] == \
        "passed_with_quarantine"
    page = next(root.rglob("validations/certificates/**/*.html")).read_text("utf-8")
    assert f"Passed with {n} rows quarantined" in page and data_docs.FAILED_STATUS not in page
    index = next(root.glob("*/index.html")).read_text("utf-8")
    assert f"{n} quarantined" in index and "ge-failed-icon" not in index


def test_restate_leaves_a_failure_without_quarantined_rows_alone(tmp_path):
    page = tmp_path / "validations" / "drop_veterans-veterans.html"
    page.parent.mkdir(parents=True)
    page.write_text(f"<p>{data_docs.FAILED_STATUS}</p>", "utf-8")
    data_docs.restate(tmp_path, {"veterans": 0})
    assert data_docs.FAILED_STATUS in page.read_text("utf-8")
    data_docs.restate(tmp_path, {"veterans": 3})
    assert "Passed with 3 rows quarantined" in page.read_text("utf-8")


def test_missing_assets_are_named(tmp_path):
    with pytest.raises(data_docs.AssetsMissing, match="scripts/setup.sh"):
        data_docs.install_assets(tmp_path / "docs", modules=tmp_path / "nothing")


@pytest.mark.skipif(not shutil.which("chromedriver") and not Path("/usr/bin/chromedriver").exists(),
                    reason="needs Debian's chromium and chromium-driver (scripts/ensure_chromium.sh)")
def test_pages_render_styled_with_the_network_cut_off(docs):
    from selenium import webdriver

    root, _ = docs
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"):
        opts.add_argument(arg)  # no name resolves and no proxy answers: as on a network with no internet
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))
    try:
        driver.get(next(root.rglob("validations/certificates/**/*.html")).as_uri())
        assert driver.execute_script("return typeof jQuery") == "function"
        assert driver.execute_script("return typeof vegaEmbed") == "function"
        assert driver.execute_script("return typeof jQuery.fn.bootstrapTable") == "function"
        assert driver.execute_script("return getComputedStyle(document.body).marginTop") == "0px"  # Bootstrap's
        assert "Passed with" in driver.page_source
    finally:
        driver.quit()


def test_no_page_shows_a_hash_of_the_registrys_values(docs):
    """GX would hash every value of a batch under 1 GB for a batch marker (2.3 s of a 1,000,000-person night); the
    night turns that off: the files' sha256 in the reconciliation already identify what was validated."""
    root, _ = docs
    pages = list(root.rglob("validations/**/*.html"))
    assert pages
    assert not [p.name for p in pages if "pandas_data_fingerprint" in p.read_text("utf-8")]
