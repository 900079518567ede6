"""claim_sources indexed by run, then claim, instead of by claim, then run.

Every night adds a row per source row of every claim it decides, and the warehouse keeps every night's rows.
With the claim first, each night's rows went in among all the earlier nights' rows, so a night's load touched
the whole index, and a rerun's delete of its own rows read the whole table. Trace reads a claim's rows of one
run, which the new order serves as well.

Revision ID: 0017_claim_sources_by_run
Revises: 0016_staging_by_row
"""

from alembic import op

revision = "0017_claim_sources_by_run"
down_revision = "0016_staging_by_row"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_claim_sources_claim", table_name="claim_sources")
    op.create_index("ix_claim_sources_run_claim", "claim_sources", ["run_id", "subsidy_type", "reference", "person_id"])


def downgrade() -> None:
    op.drop_index("ix_claim_sources_run_claim", table_name="claim_sources")
    op.create_index("ix_claim_sources_claim", "claim_sources", ["subsidy_type", "reference", "person_id", "run_id"])
