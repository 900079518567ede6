"""PostgreSQL roles: the pipeline's writer, auditors, one reader per department with row-level security
and masking views (subsidy_ledger.roles). Nothing on SQLite.

Revision ID: 0007_roles
Revises: 0006_drop_gate
"""

from alembic import op

revision = "0007_roles"
down_revision = "0006_drop_gate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from subsidy_ledger import roles
    from subsidy_ledger.policy import PolicyBook

    for stmt in roles.statements(PolicyBook.load().departments):
        op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from subsidy_ledger import roles

    for stmt in roles.drop_statements():
        op.execute(stmt)
