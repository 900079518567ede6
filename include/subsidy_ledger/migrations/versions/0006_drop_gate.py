"""Drop gate: why an optional file could not be read, and who accepted a night the gates would stop.

Revision ID: 0006_drop_gate
Revises: 0005_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_drop_gate"
down_revision = "0005_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reconciliation") as batch:
        batch.add_column(sa.Column("problem", sa.Text(), nullable=True))
    op.create_table(
        "gate_acceptances",
        sa.Column("acceptance_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("accepted_by", sa.String(length=250), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("finding", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("gate_acceptances")
    with op.batch_alter_table("reconciliation") as batch:
        batch.drop_column("problem")
