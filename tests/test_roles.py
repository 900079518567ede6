"""Department roles in the PostgreSQL warehouse: each reads its own rows, masked; auditors read all; the
writer writes; nobody else reads anything. Connects as each role to the real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from subsidy_ledger import roles
from subsidy_ledger.cli import main

# ledger semantics, not publicity (tests/test_payments.py): claims are paid the night approved
pytestmark = pytest.mark.usefixtures("immediate_payment")


@pytest.fixture
def pg_night(warehouse_url, small_drop, tmp_path):
    if not warehouse_url.startswith("postgresql"):
        pytest.skip("roles and row-level security are PostgreSQL's")
    assert main(["run", "--sources", str(small_drop), "--as-of", "2022-06-30", "--warehouse", warehouse_url,
                 "--out", str(tmp_path / "out")]) == 0
    admin = sa.create_engine(warehouse_url, isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:8]
    logins = {"econ": (f"sl_econ_{suffix}", roles.department_role("ECON")),
              "auditor": (f"sl_audit_{suffix}", roles.AUDITOR), "writer": (f"sl_writer_{suffix}", roles.WRITER),
              "nobody": (f"sl_nobody_{suffix}", None)}
    with admin.connect() as c:
        for login, group in logins.values():
            c.execute(sa.text(f"CREATE ROLE {login} LOGIN" + (f" IN ROLE {group}" if group else "")))
    urls = {k: sa.engine.make_url(warehouse_url).set(username=v[0]) for k, v in logins.items()}
    try:
        yield admin, urls
    finally:
        with admin.connect() as c:
            c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename LIKE :p"),
                      {"p": f"sl_%_{suffix}"})
            for login, _ in logins.values():
                c.execute(sa.text(f"DROP ROLE IF EXISTS {login}"))
        admin.dispose()


def _query(url, sql: str):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            result = c.execute(sa.text(sql))
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def _refused(url, sql: str) -> bool:
    try:
        _query(url, sql)
    except sa.exc.ProgrammingError as exc:
        return "permission denied" in str(exc)
    return False


def test_each_role_reads_and_writes_only_what_it_may(pg_night):
    admin, urls = pg_night
    with admin.connect() as c:
        total = c.execute(sa.text("select count(*) from ledger_lines")).scalar()
        econ = c.execute(sa.text("select count(*) from ledger_lines where department_code = 'ECON'")).scalar()
        econ_decisions = c.execute(sa.text("select count(*) from decisions where department_code = 'ECON'")).scalar()
        forced = c.execute(sa.text("select bool_and(relforcerowsecurity) from pg_class "
                                   "where relname in ('ledger_lines', 'decisions')")).scalar()
    assert forced and 0 < econ < total
    # a department reads its own lines and decisions, masked, through the views only
    rows = _query(urls["econ"], "select department_code, person_id_masked from dept_ledger_lines")
    assert len(rows) == econ and {r[0] for r in rows} == {"ECON"}
    assert all(len(r[1]) == 18 and r[1][6:14] == "********" for r in rows)
    assert _query(urls["econ"], "select count(*), min(department_code), max(department_code) "
                                "from dept_decisions")[0] == (econ_decisions, "ECON", "ECON")
    for sql in ("select count(*) from ledger_lines", "select count(*) from decisions",
                "select count(*) from stg_certificates", "insert into alerts (raised_at, kind, message) "
                                                         "values (now(), 'x', 'x')"):
        assert _refused(urls["econ"], sql), sql
    # an auditor reads everything, full numbers included, and writes nothing
    assert _query(urls["auditor"], "select count(*) from ledger_lines")[0][0] == total
    assert len(_query(urls["auditor"], "select person_id from ledger_lines limit 1")[0][0]) == 18
    assert _refused(urls["auditor"], "insert into alerts (raised_at, kind, message) values (now(), 'x', 'x')")
    # the writer reads and writes, and still cannot edit the ledger
    assert _query(urls["writer"], "select count(*) from ledger_lines")[0][0] == total
    _query(urls["writer"], "insert into alerts (raised_at, kind, message) values (now(), 'role test', 'x')")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        _query(urls["writer"], "update ledger_lines set amount_fen = amount_fen + 1")
    # a login with no role reads nothing
    assert _refused(urls["nobody"], "select count(*) from dept_ledger_lines")
    assert _refused(urls["nobody"], "select count(*) from ledger_lines")


def test_forced_row_security_holds_even_if_a_department_is_granted_a_base_table(pg_night):
    admin, urls = pg_night
    role = roles.department_role("ECON")
    with admin.connect() as c:
        c.execute(sa.text(f"GRANT SELECT ON ledger_lines TO {role}"))
        depts = {r[0] for r in _query(urls["econ"], "select distinct department_code from ledger_lines")}
        c.execute(sa.text(f"REVOKE SELECT ON ledger_lines FROM {role}"))
    assert depts == {"ECON"}
