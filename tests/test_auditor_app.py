"""The auditors' app on its own: every route refuses strangers; search and trace answer auditors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient
from subsidy_ledger import auditor_app
from subsidy_ledger.cli import main

# ledger semantics, not publicity (tests/test_payments.py): claims are paid the night approved
pytestmark = pytest.mark.usefixtures("immediate_payment")

GOOD = {"Authorization": "Bearer auditor-token"}
CLERK = {"Authorization": "Bearer econ-clerk-token"}
STRANGER = {"Authorization": "Bearer unmapped-token"}
USERS = {GOOD["Authorization"]: "auditor", CLERK["Authorization"]: "clerk_econ",
         STRANGER["Authorization"]: "visitor"}


def _auth(authorization: str | None = Header(default=None)):
    """Stands in for Airflow's JWT check: the token's user name."""
    if authorization not in USERS:
        raise HTTPException(status_code=401, detail="Not authenticated")
    return USERS[authorization]


@pytest.fixture
def client(small_drop, tmp_path, monkeypatch):
    monkeypatch.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
    monkeypatch.setenv("SUBSIDY_LEDGER_USER_DEPARTMENTS", '{"auditor": "*", "clerk_econ": ["ECON"]}')
    url, out = f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "out"
    assert main(["run", "--sources", str(small_drop), "--as-of", "2022-06-30", "--warehouse", url,
                 "--out", str(out)]) == 0
    app = auditor_app.create_app(lambda: url, lambda: str(out), authenticate=_auth)
    return TestClient(app), url


def _payout(url):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        row = c.execute(sa.text("select payout_id, reference, person_id from ledger_lines "
                                "where subsidy_type = 'skill_upgrade' order by seq limit 1")).one()
    engine.dispose()
    return row


@pytest.mark.parametrize("path", ["/", "/api/search?q=PO123", "/api/trace/PO123", "/data_docs/x/index.html"])
def test_every_route_refuses_an_unauthenticated_request(client, path):
    c, _ = client
    assert c.get(path).status_code == 401
    assert c.get(path, headers={"Authorization": "Bearer forged"}).status_code == 401


def test_page_search_and_trace_for_an_auditor(client):
    c, url = client
    payout_id, reference, person = _payout(url)
    page = c.get("/", headers=GOOD)
    assert page.status_code == 200 and "补贴台账审计" in page.text
    for q in (payout_id, reference, person[:6] + "********" + person[-4:]):
        hits = c.get("/api/search", params={"q": q}, headers=GOOD).json()
        assert payout_id in {h["payout_id"] for h in hits}, q
        assert all(person not in str(h) for h in hits)  # masked
    t = c.get(f"/api/trace/{payout_id}", headers=GOOD).json()
    assert t["payout"]["payout_id"] == payout_id and t["sources"] and t["history"]
    docs = [s["data_docs_url"] for s in t["sources"] if s.get("data_docs_url")]
    assert docs and c.get(docs[0].removeprefix("/auditor"), headers=GOOD).status_code == 200
    assert c.get("/api/trace/PO0", headers=GOOD).status_code == 404


def test_data_docs_route_serves_nothing_outside_the_docs_folder(client):
    c, _ = client
    for path in ("/data_docs/../w.sqlite", "/data_docs/%2e%2e/w.sqlite", "/data_docs/cli__2022-06-30/../../w.sqlite"):
        assert c.get(path, headers=GOOD).status_code == 404


def _log(url):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(sa.text("select who, channel, query, scope, persons_shown, persons from access_log "
                                 "order by log_id")).all()
    engine.dispose()
    return rows


def test_a_department_user_sees_only_its_department_and_every_lookup_is_logged(client):
    c, url = client
    payout_id, reference, person = _payout(url)  # an HRSS certificate payout
    assert c.get("/api/search", params={"q": "PO1"}, headers=STRANGER).status_code == 403
    assert c.get("/api/search", params={"q": payout_id}, headers=CLERK).json() == []
    assert c.get(f"/api/trace/{payout_id}", headers=CLERK).status_code == 404
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        econ_ref, econ_payout = conn.execute(sa.text("select reference, payout_id from ledger_lines "
                                                     "where department_code = 'ECON' limit 1")).one()
    engine.dispose()
    hits = c.get("/api/search", params={"q": econ_ref}, headers=CLERK).json()
    assert hits and {h["department_code"] for h in hits} == {"ECON"}
    assert c.get(f"/api/trace/{econ_payout}", headers=CLERK).status_code == 200
    assert c.get(f"/api/trace/{payout_id}", headers=GOOD).status_code == 200
    log = _log(url)
    assert [(r[0], r[2].split()[0], r[3], r[4]) for r in log] == [
        ("clerk_econ", "search", "ECON", 0), ("clerk_econ", "trace", "ECON", 0),
        ("clerk_econ", "search", "ECON", len({h["person_id_masked"] for h in hits})),
        ("clerk_econ", "trace", "ECON", 1), ("auditor", "trace", "*", 1)]
    assert log[-1][5] == person  # the warehouse knows whom the auditor looked at
    engine = sa.create_engine(url)
    with engine.begin() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
        conn.execute(sa.text("update access_log set who = 'someone else'"))
    engine.dispose()


def test_trace_on_the_command_line_is_logged_and_the_log_exports_masked(client, tmp_path, capsys):
    _, url = client
    payout_id, _, person = _payout(url)
    assert main(["trace", payout_id, "--warehouse", url]) == 0
    assert main(["trace", "--person", person, "--warehouse", url]) == 0
    assert main(["trace", "--person", "330503199001011234", "--warehouse", url]) != 0  # nobody: logged too
    capsys.readouterr()
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date().isoformat()
    out = tmp_path / "access.csv"
    assert main(["access-log", "--from", today, "--to", today, "--warehouse", url, "--out", str(out)]) == 0
    text = out.read_text("utf-8-sig")
    assert person not in text and f"{person[:6]}********{person[-4:]}" in text
    rows = text.splitlines()
    assert len(rows) == 4 and rows[0].startswith("accessed_at_utc,who,channel,query")
    assert [r.split(",")[2] for r in rows[1:]] == ["cli", "cli", "cli"] and rows[3].split(",")[5] == "0"
