"""The leading group's page on its own: strangers go to the login; any as-of date the warehouse assessed."""

from __future__ import annotations

import pytest
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient
from subsidy_ledger import assessment_app
from subsidy_ledger.cli import main

OFFICE = {"Authorization": "Bearer office-token"}
STRANGER = {"Authorization": "Bearer unmapped-token"}
USERS = {OFFICE["Authorization"]: "office", STRANGER["Authorization"]: "visitor"}


def _auth(authorization: str | None = Header(default=None)):
    """Stands in for Airflow's JWT check: the token's user name."""
    if authorization not in USERS:
        raise HTTPException(status_code=401, detail="Not authenticated")
    return USERS[authorization]


@pytest.fixture(scope="module")
def client(small_drop, tmp_path_factory, suite_env):
    """Two assessed nights, shared by this module's tests (read only)."""
    tmp = tmp_path_factory.mktemp("assessment_app")
    url, out = f"sqlite:///{tmp / 'w.sqlite'}", tmp / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SUBSIDY_LEDGER_USER_DEPARTMENTS", '{"office": "*"}')
        suite_env(mp, tmp / "work")
        app = assessment_app.create_app(lambda: url, authenticate=_auth)
        empty = TestClient(app).get("/", headers=OFFICE)
        assert empty.status_code == 200 and "还没有任何一晚的考核数据" in empty.text
        for night in ("2021-06-30", "2022-06-30"):
            assert main(["run", "--sources", str(small_drop), "--as-of", night, "--warehouse", url,
                         "--out", str(out)]) == 0
        yield TestClient(app), out


def test_strangers_go_to_the_login_and_unmapped_users_read_a_sentence(client):
    c, _ = client
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/api/v2/auth/login?next=")
    r = c.get("/", headers=STRANGER)
    assert r.status_code == 403 and "您的账号未获授权" in r.text


def test_the_page_shows_any_assessed_night_as_the_report_did(client):
    c, out = client
    latest = c.get("/", headers=OFFICE)
    assert latest.status_code == 200
    assert '<option value="2022-06-30" selected>' in latest.text and '<option value="2021-06-30">' in latest.text
    earlier = c.get("/", params={"as_of": "2021-06-30"}, headers=OFFICE).text
    assert "统计截止 as of 2021-06-30" in earlier and earlier.count("data:image/png;base64,") == 5
    # the page's figures are the night's report: the same tables as assessment.html of that night
    written = (out / "2021-06-30" / "assessment" / "assessment.html").read_text("utf-8")
    tables = written[written.index('<section id="target">'):written.index("</body>")]
    assert tables in earlier
    missing = c.get("/", params={"as_of": "2020-01-01"}, headers=OFFICE)
    assert missing.status_code == 404 and "2020-01-01 没有考核数据" in missing.text
    bad = c.get("/", params={"as_of": "<b>x</b>"}, headers=OFFICE)
    assert bad.status_code == 404 and "<b>x</b>" not in bad.text and "&lt;b&gt;" in bad.text
