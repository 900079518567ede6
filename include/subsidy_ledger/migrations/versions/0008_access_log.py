"""Access log: every lookup of personal data, append-only (the database refuses UPDATE and DELETE).

Revision ID: 0008_access_log
Revises: 0007_roles
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_access_log"
down_revision = "0007_roles"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log "
    "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END",
    "CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log "
    "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END",
]
_PG = [
    "CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'access_log is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER access_log_no_update BEFORE UPDATE OR DELETE ON access_log "
    "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()",
    "CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("log_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("accessed_at", sa.DateTime(), nullable=False),
        sa.Column("who", sa.String(length=250), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("persons_shown", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Text(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for stmt in {"postgresql": _PG, "sqlite": _SQLITE}.get(dialect, []):
        op.execute(stmt)


def downgrade() -> None:
    op.drop_table("access_log")
