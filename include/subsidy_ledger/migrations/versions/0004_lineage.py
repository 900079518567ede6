"""Lineage: the source rows each decision rests on, the GX results that accepted them.

Revision ID: 0004_lineage
Revises: 0003_run_safety
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_lineage"
down_revision = "0003_run_safety"
branch_labels = None
depends_on = None

STAGING = ["social_insurance", "unemployment_registrations", "certificates", "veterans", "low_income",
           "training_classes", "class_enrollments", "apprenticeships", "affected_enterprises", "city_payouts",
           "subsidy_catalog"]


def upgrade() -> None:
    for name in STAGING:
        with op.batch_alter_table(f"stg_{name}") as batch:
            batch.add_column(sa.Column("validated_run", sa.String(length=250), nullable=True))
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("decided_in_run", sa.String(length=250), nullable=True))
    op.create_table(
        "claim_sources",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("subsidy_type", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("registry", sa.String(length=64), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("record_key", sa.Text(), nullable=True),
        sa.Column("row_hash", sa.String(length=32), nullable=True),
        sa.Column("validated_run", sa.String(length=250), nullable=True),
    )
    op.create_index("ix_claim_sources_claim", "claim_sources", ["subsidy_type", "reference", "person_id", "run_id"])
    op.create_table(
        "validation_results",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("registry", sa.String(length=64), nullable=False),
        sa.Column("suite", sa.String(length=120), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("evaluated", sa.Integer(), nullable=False),
        sa.Column("successful", sa.Integer(), nullable=False),
        sa.Column("rows_checked", sa.Integer(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("data_docs", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "registry"),
    )


def downgrade() -> None:
    op.drop_table("validation_results")
    op.drop_index("ix_claim_sources_claim", "claim_sources")
    op.drop_table("claim_sources")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("decided_in_run")
    for name in STAGING:
        with op.batch_alter_table(f"stg_{name}") as batch:
            batch.drop_column("validated_run")
