"""Run safety: per-run staging indexes and row hashes, the ledger lock, run bookkeeping.

Revision ID: 0003_run_safety
Revises: 0002_apprentice_living_allowance
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_run_safety"
down_revision = "0002_apprentice_living_allowance"
branch_labels = None
depends_on = None

STAGING = ["social_insurance", "unemployment_registrations", "certificates", "veterans", "low_income",
           "training_classes", "class_enrollments", "apprenticeships", "affected_enterprises", "city_payouts",
           "subsidy_catalog"]


def upgrade() -> None:
    for name in STAGING:
        with op.batch_alter_table(f"stg_{name}") as batch:
            batch.add_column(sa.Column("row_hash", sa.String(length=32), nullable=True))
        op.create_index(f"ix_stg_{name}_run", f"stg_{name}", ["run_id", "row_hash"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("ledger_seq_at_decide", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("ledger_seq_after_post", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("base_run", sa.String(length=250), nullable=True))
        batch.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
    # One row; a posting transaction updates it first, so posters queue on its row lock.
    op.create_table(
        "ledger_lock",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("holder", sa.String(length=250), nullable=True),
        sa.Column("acquired_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute("INSERT INTO ledger_lock (name) VALUES ('ledger')")


def downgrade() -> None:
    op.drop_table("ledger_lock")
    with op.batch_alter_table("runs") as batch:
        for c in ("fingerprint", "base_run", "mode", "ledger_seq_after_post", "ledger_seq_at_decide", "finished_at",
                  "started_at"):
            batch.drop_column(c)
    for name in STAGING:
        op.drop_index(f"ix_stg_{name}_run", f"stg_{name}")
        with op.batch_alter_table(f"stg_{name}") as batch:
            batch.drop_column("row_hash")
