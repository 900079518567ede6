"""Who may read what in a PostgreSQL warehouse: the writer, auditors, and one reader role per department.

* `subsidy_writer` — the pipeline: reads and writes every table (the ledger stays append-only by trigger).
* `subsidy_auditor` — reads every table and view, full identity numbers included.
* `subsidy_dept_<code>` (e.g. `subsidy_dept_agri`) — reads only `dept_ledger_lines` and `dept_decisions`:
  its own department's rows, identity numbers masked as in the extracts. No grant on the base tables.

Row-level security is forced on `ledger_lines` and `decisions`, so even a role that is later granted a
base table sees only its department's rows unless it is the writer or an auditor. These are group roles
(NOLOGIN): a DBA grants them to login roles (`GRANT subsidy_dept_agri TO zhang_agri`). The roles are
cluster-wide and created only if missing; SQLite has no roles, so there this is a no-op.
"""

from __future__ import annotations

WRITER = "subsidy_writer"
AUDITOR = "subsidy_auditor"
DEPT_PREFIX = "subsidy_dept_"
SECURED = ("ledger_lines", "decisions")

# the department views: every column a clerk needs, the identity number masked (first 6, last 4)
_MASK = "left(person_id, 6) || '********' || right(person_id, 4) AS person_id_masked"
VIEWS = {
    "dept_ledger_lines": ("ledger_lines", "seq, payout_id, entry_type, reverses_payout_id, posted_on, "
                          "department_code, fund, subsidy_type, " + _MASK + ", name, reference, occupation_code, "
                          "level, amount_fen, uplift_units, rule_id, policy_version, run_id"),
    "dept_decisions": ("decisions", "run_id, as_of, subsidy_type, reference, " + _MASK + ", name, decision, "
                       "reason_code, amount_fen, uplift_units, rule_id, policy_version, department_code, fund, "
                       "occupation_code, level, event_date"),
}


def department_role(code: str) -> str:
    """The reader role of a department code."""
    return DEPT_PREFIX + code.lower()


def _create_role(name: str) -> str:
    # concurrent migrations of two databases may race on the same cluster-wide role
    return (f"DO $$ BEGIN CREATE ROLE {name} NOLOGIN; "
            f"EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")


def statements(departments: list[str]) -> list[str]:
    """The SQL that creates the roles, the department function and views, grants and policies."""
    depts = [department_role(d) for d in departments]
    sql = [_create_role(r) for r in (WRITER, AUDITOR, *depts)]
    sql.append(
        "CREATE OR REPLACE FUNCTION subsidy_departments() RETURNS SETOF text LANGUAGE sql STABLE AS $$ "
        f"SELECT upper(substr(r.rolname, {len(DEPT_PREFIX) + 1})) FROM pg_roles r "
        f"WHERE r.rolname LIKE '{DEPT_PREFIX.replace('_', chr(92) + '_')}%' "
        "AND pg_has_role(current_user, r.oid, 'MEMBER') $$")
    for view, (table, columns) in VIEWS.items():
        sql.append(f"CREATE OR REPLACE VIEW {view} WITH (security_barrier) AS SELECT {columns} FROM {table} "
                   "WHERE department_code IN (SELECT subsidy_departments())")
    everyone = ", ".join([WRITER, AUDITOR, *depts])
    sql += [
        f"GRANT {WRITER} TO CURRENT_USER",  # the owner who migrates is the writer, and passes forced RLS
        f"GRANT USAGE ON SCHEMA public TO {everyone}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {WRITER}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {WRITER}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {AUDITOR}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {WRITER}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {WRITER}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {AUDITOR}",
    ]
    for view in VIEWS:
        sql.append(f"REVOKE ALL ON {view} FROM PUBLIC")
        if depts:
            sql.append(f"GRANT SELECT ON {view} TO {', '.join(depts)}")
    for table in SECURED:
        sql += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS writer_all ON {table}",
            f"CREATE POLICY writer_all ON {table} TO {WRITER} USING (true) WITH CHECK (true)",
            f"DROP POLICY IF EXISTS auditor_read ON {table}",
            f"CREATE POLICY auditor_read ON {table} FOR SELECT TO {AUDITOR} USING (true)",
            f"DROP POLICY IF EXISTS department_read ON {table}",
            f"CREATE POLICY department_read ON {table} FOR SELECT TO PUBLIC "
            "USING (department_code IN (SELECT subsidy_departments()))",
        ]
    return sql


def drop_statements() -> list[str]:
    """Undo statements() in this database (the cluster-wide roles stay: other databases may use them)."""
    sql = [f"DROP VIEW IF EXISTS {v}" for v in VIEWS]
    for table in SECURED:
        sql += [f"DROP POLICY IF EXISTS {p} ON {table}" for p in ("writer_all", "auditor_read", "department_read")]
        sql += [f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY", f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"]
    return [*sql, "DROP FUNCTION IF EXISTS subsidy_departments()"]
