"""A1 assessment: the optional annual_plans registry staged, and each night's assessment figures kept per
as-of date for the leading group's page.

Revision ID: 0014_assessment
Revises: 0013_users_language
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_assessment"
down_revision = "0013_users_language"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stg_annual_plans",
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.Text()),
        sa.Column("town_code", sa.Text()),
        sa.Column("year", sa.Integer()),
        sa.Column("planned_person_times", sa.Integer()),
        sa.Column("planned_funds", sa.BigInteger()),
        sa.Column("row_hash", sa.String(32)),
        sa.Column("validated_run", sa.String(250)),
    )
    op.create_index("ix_stg_annual_plans_run", "stg_annual_plans", ["run_id", "row_hash"])
    op.create_table(  # one row per run and view: the figures as JSON, so a page shows them as the night did
        "assessment",
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("view", sa.String(40), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),  # UTC
        sa.PrimaryKeyConstraint("run_id", "view"),
    )
    op.create_index("ix_assessment_as_of", "assessment", ["as_of", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_assessment_as_of", "assessment")
    op.drop_table("assessment")
    op.drop_index("ix_stg_annual_plans_run", "stg_annual_plans")
    op.drop_table("stg_annual_plans")
