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


@pytest.mark.airflow
def test_auditor_page_refuses_strangers_and_shows_the_chain_in_chromium(served):
    base, url, tmp_path = served
    payout = _payout(url)
    # no token: the page, the API and the Data Docs all refuse
    for path in ("/auditor/", f"/auditor/api/search?q={payout}", f"/auditor/api/trace/{payout}"):
        assert _get(base + path)[0] == 401, path
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
        driver.get(base + "/auditor/")  # refused without the login cookie
        assert "Not authenticated" in driver.page_source
        driver.add_cookie({"name": "_token", "value": token, "path": "/"})  # what Airflow's login sets
        driver.get(f"{base}/auditor/?q={payout}")
        WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "history")))
        text = driver.find_element(By.ID, "trace").text
        assert payout in text and "Rests on" in text and "certificates.csv" in text
        assert "affected_enterprise" in text and "cap place" in text
        # P1-P3: the publicity period and the instruction, the account masked, with the account's row
        assert "Publicity (P1)" in text and "2022-06-30" in text and "Payment (P3)" in text
        assert "payee_accounts:" in text and "********" in text
        docs = driver.find_elements(By.LINK_TEXT, "Data Docs")
        assert docs
        shot = tmp_path / "auditor.png"
        assert driver.save_screenshot(str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        keep = os.environ.get("SUBSIDY_LEDGER_SCREENSHOTS")  # a folder to keep the screenshot in, if set
        if keep:
            Path(keep, "auditor.png").write_bytes(data)
        docs[0].click()
        WebDriverWait(driver, 30).until(lambda d: "validations" in d.current_url)
        assert "Great Expectations" in driver.page_source or "Expectation" in driver.page_source
    finally:
        driver.quit()
