"""Held decisions: whose row each quarantined row was, the rows a held decision waits for, and roster
entries held for overlapping attendance.

Revision ID: 0009_holds
Revises: 0008_access_log
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_holds"
down_revision = "0008_access_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("person_id", sa.Text(), nullable=True))
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("held_rows", sa.Text(), nullable=True))
    with op.batch_alter_table("int_living_allowance_eligibility") as batch:
        batch.add_column(sa.Column("overlapping_attendance", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("int_living_allowance_eligibility") as batch:
        batch.drop_column("overlapping_attendance")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("held_rows")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("person_id")
