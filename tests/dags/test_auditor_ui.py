"""The auditors' page served by a real Airflow api-server, behind Airflow's login, in headless Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from subsidy_ledger.cli import main

from tests.dags.conftest import airflow_env

PASSWORD = "auditor-pw-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def served(airflow_home, small_drop, tmp_path, monkeypatch):
    """A warehouse with two nights (publicity, then payment), and an api-server with the plugin, a user and a
    password."""
    monkeypatch.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
    url, out = f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "out"
    for night in ("2022-06-30", "2022-07-08"):
        assert main(["run", "--sources", str(small_drop), "--as-of", night, "--warehouse", url,
                     "--out", str(out)]) == 0
    (tmp_path / "passwords.json").write_text(json.dumps({"auditor": PASSWORD}))
    port = _free_port()
    env = airflow_env(airflow_home) | {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "auditor:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-secret-for-the-auditor-page-0123456789",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "SUBSIDY_LEDGER_WAREHOUSE": url, "SUBSIDY_LEDGER_OUT": str(out),
        "SUBSIDY_LEDGER_USER_DEPARTMENTS": '{"auditor": "*"}',
    }
    env.pop("AIRFLOW_CONN_SUBSIDY_WAREHOUSE", None)
    log = (tmp_path / "api-server.log").open("w")  # noqa: SIM115  (closed in the finally below)
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--host",
                             "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if proc.poll() is not None:
                break
            try:
                if _get(f"{base}/api/v2/monitor/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
        yield base, url, tmp_path
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _payout(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        payout = c.execute(sa.text("select l.payout_id from ledger_lines l join payment_instructions i "
                                   "on i.payout_id = l.payout_id where l.uplift_units > 0 limit 1")).scalar()
    engine.dispose()
    return payout


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _one(url: str, sql: str) -> tuple:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        row = c.execute(sa.text(sql)).one()
    engine.dispose()
    return tuple(row)


def _rejected(url: str) -> tuple[str, str]:
    return _one(url, "select reference, reason_code from decisions where subsidy_type = 'skill_upgrade' "
                     "and decision = 'rejected' order by reference limit 1")


def _namesake(url: str) -> tuple[str, int]:
    name, n = _one(url, "select name, count(distinct person_id) from decisions group by name "
                        "having count(distinct person_id) between 2 and 4 order by name limit 1")
    return name, int(n)


@pytest.mark.airflow
def test_auditor_and_assessment_pages_refuse_strangers_and_show_their_figures_in_chromium(served):
    base, url, tmp_path = served
    payout = _payout(url)
    # no token: the API refuses in a sentence; the page sends the browser to Airflow's login
    for path in (f"/auditor/api/search?q={payout}", f"/auditor/api/trace/{payout}"):
        status, body = _get(base + path)
        assert status == 401 and json.loads(body)["detail"].startswith("请先登录"), path
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(base + "/auditor/", timeout=30)
        raise AssertionError("the page answered a stranger")
    except urllib.error.HTTPError as e:
        assert e.code == 303 and e.headers["location"].startswith("/api/v2/auth/login?next=")
    assert _get(base + f"/auditor/api/trace/{payout}", token="not-a-jwt")[0] in (401, 403)
    status, body = _get(base + "/auth/token", data=json.dumps({"username": "auditor",
                                                                 "password": PASSWORD}).encode())
    assert status in (200, 201), body
    token = json.loads(body)["access_token"]
    status, body = _get(base + f"/auditor/api/trace/{payout}", token=token)
    assert status == 200 and json.loads(body)["payout"]["payout_id"] == payout

    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        driver.get(base + "/auditor/")  # a stranger lands on Airflow's login page
        WebDriverWait(driver, 30).until(lambda d: "login" in d.current_url)
        assert "/auditor" not in driver.current_url.split("?")[0]
        driver.add_cookie({"name": "_token", "value": token, "path": "/"})  # what Airflow's login sets
        driver.get(f"{base}/auditor/?q={payout}")
        WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "history")))
        text = driver.find_element(By.ID, "trace").text
        assert "依据的事实 Facts the rule used" in text and "certificates.csv" in text
        assert "affected_enterprise" in text and "cap place" in text and "方案条款 clause" in text
        assert "(Asia/Shanghai)" in text and "certificate_no" in text  # the staged facts and the GX time
        # P1-P3: the publicity period and the instruction, the account masked, with the account's row
        assert "Publicity (P1)" in text and "2022-06-30" in text and "Payment (P3)" in text
        assert "payee_accounts:" in text and "********" in text
        docs = driver.find_elements(By.PARTIAL_LINK_TEXT, "Data Docs")
        assert docs and docs[0].get_attribute("target") == "_blank"
        docs_url = docs[0].get_attribute("href")
        # a rejected certificate, never paid, is found with its reason and clause
        ref, reason = _rejected(url)
        box = driver.find_element(By.ID, "q")
        box.clear()
        box.send_keys(ref)
        driver.find_element(By.CSS_SELECTOR, "#search button").click()
        WebDriverWait(driver, 60).until(lambda d: ref in d.find_element(By.ID, "trace").text)
        found = driver.find_element(By.ID, "results").text
        assert "不予补贴" in found and reason in found and "条款" in found
        # a name: the claims of every person of that name, grouped by person
        name, persons = _namesake(url)
        box = driver.find_element(By.ID, "q")
        box.clear()
        box.send_keys(name)
        driver.find_element(By.CSS_SELECTOR, "#search button").click()
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".person")) == persons)
        assert "[object Object]" not in driver.find_element(By.ID, "results").text
        driver.find_elements(By.CSS_SELECTOR, "a.claim")[0].click()
        WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "sources")))
        shot = tmp_path / "auditor.png"
        assert driver.save_screenshot(str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        keep = os.environ.get("SUBSIDY_LEDGER_SCREENSHOTS")  # a folder to keep the screenshot in, if set
        if keep:
            Path(keep, "auditor.png").write_bytes(data)
        driver.get(docs_url)
        WebDriverWait(driver, 30).until(lambda d: "validations" in d.current_url)
        assert "Passed with" in driver.page_source or "Expectation" in driver.page_source
        _assessment_page(driver, base, tmp_path)
    finally:
        driver.quit()


def _assessment_page(driver, base: str, tmp_path: Path) -> None:
    """The leading group's page (A1) behind the same login: figures, charts drawn, another night chosen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(base + "/assessment/")
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "as_of"))
    text = driver.find_element(By.TAG_NAME, "body").text
    assert "职业技能提升行动考核" in text and "统计截止 as of 2022-07-08" in text and "三年目标 30,000 人次" in text
    assert "通报名单" in text and "技能劳动者占比" in text
    images = driver.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(images) == 5
    assert all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 300", i)
               for i in images)  # the PNGs decoded in the browser
    shot = tmp_path / "assessment.png"
    assert driver.save_screenshot(str(shot))
    keep = os.environ.get("SUBSIDY_LEDGER_SCREENSHOTS")
    if keep:
        Path(keep, "assessment.png").write_bytes(shot.read_bytes())
    Select(driver.find_element(By.ID, "as_of")).select_by_value("2022-06-30")
    driver.find_element(By.CSS_SELECTOR, "form button").click()
    WebDriverWait(driver, 60).until(lambda d: d.title.endswith("2022-06-30"))  # the title names the night shown
    assert "统计截止 as of 2022-06-30" in driver.find_element(By.TAG_NAME, "body").text
    driver.delete_all_cookies()  # logged out: the page sends the browser to Airflow's login
    driver.get(base + "/assessment/")
    WebDriverWait(driver, 30).until(lambda d: "login" in d.current_url)
