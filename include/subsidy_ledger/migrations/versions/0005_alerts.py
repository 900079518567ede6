"""Alerts: failed runs and tasks, written by the DAG's failure callback and the data-quality gate.

Revision ID: 0005_alerts
Revises: 0004_lineage
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_alerts"
down_revision = "0004_lineage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("task_id", sa.String(length=250), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alerts")
