"""The auditors' app on its own: every route refuses strangers; search and trace answer auditors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient
from subsidy_ledger import auditor_app
from subsidy_ledger.cli import main

GOOD = {"Authorization": "Bearer auditor-token"}


def _auth(authorization: str | None = Header(default=None)):
    """Stands in for Airflow's JWT check."""
    if authorization != GOOD["Authorization"]:
        raise HTTPException(status_code=401, detail="Not authenticated")
    return "auditor"


@pytest.fixture
def client(small_drop, tmp_path, monkeypatch):
    monkeypatch.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
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
