"""The auditors' app on its own: every route refuses strangers; search and trace answer auditors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient
from subsidy_ledger import auditor_app
from subsidy_ledger.cli import main

from tests.clones import clone_warehouse

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


@pytest.fixture(scope="module")
def night(small_drop, tmp_path_factory, immediate_policy) -> tuple[Path, Path]:
    """One night of the small drop with Data Docs: its SQLite warehouse file and its extracts folder."""
    tmp = tmp_path_factory.mktemp("auditor")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"SUBSIDY_LEDGER_DATA_DOCS": "1", "SUBSIDY_LEDGER_STAGE_PROCESSES": "0",
                            "SUBSIDY_LEDGER_WORK": str(tmp / "work"),
                            "SUBSIDY_LEDGER_POLICY_DIR": str(immediate_policy)}.items():
            mp.setenv(name, value)
        assert main(["run", "--sources", str(small_drop), "--as-of", "2022-06-30", "--warehouse",
                     f"sqlite:///{tmp / 'w.sqlite'}", "--out", str(tmp / "out")]) == 0
    return tmp / "w.sqlite", tmp / "out"


@pytest.fixture
def client(night, tmp_path, monkeypatch):
    """The app over a copy of the night's warehouse: each test's lookups are logged in its own copy."""
    monkeypatch.setenv("SUBSIDY_LEDGER_DATA_DOCS", "1")
    monkeypatch.setenv("SUBSIDY_LEDGER_USER_DEPARTMENTS", '{"auditor": "*", "clerk_econ": ["ECON"]}')
    db, out = night
    url, drop = clone_warehouse(f"sqlite:///{db}", tmp_path.name)
    app = auditor_app.create_app(lambda: url, lambda: str(out), authenticate=_auth)
    yield TestClient(app), url
    drop()


def _payout(url):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        row = c.execute(sa.text("select payout_id, reference, person_id from ledger_lines "
                                "where subsidy_type = 'skill_upgrade' order by seq limit 1")).one()
    engine.dispose()
    return row


@pytest.mark.parametrize("path", ["/api/search?q=PO123", "/api/trace/PO123", "/api/claim?subsidy_type=a&reference=b"
                                  "&person_code=P1"])
def test_every_api_route_refuses_an_unauthenticated_request_with_a_sentence(client, path):
    c, _ = client
    for headers in ({}, {"Authorization": "Bearer forged"}):
        r = c.get(path, headers=headers)
        assert r.status_code == 401 and r.json()["detail"].startswith("请先登录 Airflow")


@pytest.mark.parametrize("path", ["/", "/data_docs/x/index.html"])
def test_a_stranger_opening_a_page_goes_to_the_login(client, path):
    c, _ = client
    r = c.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/api/v2/auth/login?next=http%3A%2F%2Ftestserver%2F")


def test_refusals_and_bad_queries_are_sentences(client):
    c, _ = client
    assert c.get("/api/search", params={"q": "a"}, headers=GOOD).json() == {"detail": auditor_app.SENTENCES[422]}
    r = c.get("/api/search", params={"q": "PO1"}, headers=STRANGER)
    assert r.status_code == 403 and r.json()["detail"].startswith("您的账号未获授权")
    missing = c.get("/api/trace/PO0", headers=GOOD)
    assert missing.status_code == 404 and missing.json()["detail"].startswith("在您的部门中没有支付编号 PO0")
    nothing = c.get("/api/search", params={"q": "no-such-certificate"}, headers=GOOD).json()
    assert nothing["people"] == [] and nothing["message"].startswith("没有找到与“no-such-certificate”相符")


def test_page_search_and_trace_for_an_auditor(client):
    c, url = client
    payout_id, reference, person = _payout(url)
    page = c.get("/", headers=GOOD)
    assert page.status_code == 200 and "补贴台账审计" in page.text
    for q in (payout_id, reference, person[:6] + "********" + person[-4:]):
        found = c.get("/api/search", params={"q": q}, headers=GOOD).json()
        assert payout_id in {i for p in found["people"] for cl in p["claims"] for i in cl["payout_ids"]}, q
        assert person not in str(found)  # masked
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
    assert c.get("/api/search", params={"q": payout_id}, headers=CLERK).json()["people"] == []
    assert c.get(f"/api/trace/{payout_id}", headers=CLERK).status_code == 404
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        econ_ref, econ_payout = conn.execute(sa.text("select reference, payout_id from ledger_lines "
                                                     "where department_code = 'ECON' limit 1")).one()
    engine.dispose()
    people = c.get("/api/search", params={"q": econ_ref}, headers=CLERK).json()["people"]
    hits = [cl | {"person_id_masked": p["person_id_masked"]} for p in people for cl in p["claims"]]
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


def _one(url, sql):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        row = c.execute(sa.text(sql)).first()
    engine.dispose()
    return row


def test_a_rejected_certificate_is_found_with_its_reason_clause_and_facts(client):
    c, url = client
    ref, person, name, reason = _one(url, "select reference, person_id, name, reason_code from decisions where "
                                          "subsidy_type = 'skill_upgrade' and decision = 'rejected' order by reference")
    found = c.get("/api/search", params={"q": ref}, headers=GOOD).json()
    (p,) = found["people"]
    (claim,) = p["claims"]
    assert (claim["decision"], claim["decision_label"], claim["reason_code"]) == ("rejected", "不予补贴", reason)
    assert claim["reason_text"] and claim["clause"] and claim["payout_ids"] == [] and claim["ledger_net"] == "0.00"
    assert p["person_id_masked"] == f"{person[:6]}********{person[-4:]}" and name in p["names"]
    t = c.get("/api/claim", params={"subsidy_type": "skill_upgrade", "reference": ref,
                                    "person_code": p["person_code"]}, headers=GOOD).json()
    assert t["decision"]["reason_code"] == reason and t["decision"]["clause"] == claim["clause"]
    cert = next(s for s in t["sources"] if s["role"] == "certificate")
    assert cert["role_label"] == "证书" and cert["facts"]["certificate_no"] == ref
    assert cert["facts"]["person_id"] == p["person_id_masked"] and cert["facts"]["level"] is not None
    assert cert["accepted_by_gx"]["validated_at"].endswith("(Asia/Shanghai)")
    assert person not in str(t)
    other = c.get("/api/claim", params={"subsidy_type": "skill_upgrade", "reference": ref,
                                        "person_code": "P000000000000"}, headers=GOOD)
    assert other.status_code == 404


def test_a_name_search_groups_claims_by_person_and_a_masked_id_with_the_name_narrows_it(client):
    c, url = client
    name, n = _one(url, "select name, count(distinct person_id) n from decisions group by name "
                        "having count(distinct person_id) > 1 order by n desc, name")
    people = c.get("/api/search", params={"q": name}, headers=GOOD).json()["people"]
    assert len(people) == n and len({p["person_code"] for p in people}) == n
    assert all(name in p["names"] for p in people) and all(p["claims"] for p in people)
    one = people[0]
    narrowed = c.get("/api/search", params={"q": f"{one['person_id_masked']} {name}"}, headers=GOOD).json()["people"]
    assert [p["person_code"] for p in narrowed] == [one["person_code"]]
