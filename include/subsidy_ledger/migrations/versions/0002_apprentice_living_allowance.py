"""Intermediate tables for R4/R5 (apprentices) and R6 (living allowances).

Revision ID: 0002_apprentice_living_allowance
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_apprentice_living_allowance"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "int_apprentice_eligibility",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("subsidy_type", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("agreement_end", sa.Date(), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("months_served", sa.Integer(), nullable=True),
        sa.Column("monthly_allowance_fen", sa.BigInteger(), nullable=True),
        sa.Column("department_code", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "subsidy_type", "reference"),
    )
    op.create_table(
        "int_living_allowance_eligibility",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("class_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("department_code", sa.String(length=20), nullable=False),
        sa.Column("occupation_code", sa.Text(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("filed_in_advance", sa.Boolean(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("attendance_days", sa.Integer(), nullable=False),
        sa.Column("class_days", sa.Integer(), nullable=True),
        sa.Column("qualifying_group", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "class_id", "person_id"),
    )


def downgrade() -> None:
    op.drop_table("int_living_allowance_eligibility")
    op.drop_table("int_apprentice_eligibility")
