"""The typed run record: the step a run is in (runs.stage), its status one of running, stopped, failed and
succeeded, and every transition kept in run_transitions. Earlier statuses are rewritten into the new pair:
failed_<gate> is stopped (validate's or post's gate), failed_<stage> is failed at that stage.

Revision ID: 0015_run_record
Revises: 0014_assessment
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_run_record"
down_revision = "0014_assessment"
branch_labels = None
depends_on = None

_GATES = {"failed_quality_gate": "validate", "failed_drop_gate": "validate", "failed_reversal_gate": "post"}


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("stage", sa.String(40), nullable=True))
    runs = sa.table("runs", sa.column("status", sa.String), sa.column("stage", sa.String))
    for old, stage in _GATES.items():
        op.execute(runs.update().where(runs.c.status == old).values(status="stopped", stage=stage))
    conn = op.get_bind()
    for (old,) in conn.execute(sa.select(runs.c.status).where(runs.c.status.like("failed_%")).distinct()).all():
        op.execute(runs.update().where(runs.c.status == old).values(status="failed", stage=old[len("failed_"):]))
    op.execute(runs.update().where(runs.c.status == "succeeded").values(stage="export"))
    op.create_table(
        "run_transitions",
        sa.Column("transition_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("transition_id"),
    )
    op.create_index("ix_run_transitions_run_id", "run_transitions", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_transitions_run_id", table_name="run_transitions")
    op.drop_table("run_transitions")
    runs = sa.table("runs", sa.column("status", sa.String), sa.column("stage", sa.String))
    # which gate stopped a run is in its transitions and alerts, not in runs: validate's is called the quality gate
    for old, stage in (("failed_quality_gate", "validate"), ("failed_reversal_gate", "post")):
        op.execute(runs.update().where((runs.c.status == "stopped") & (runs.c.stage == stage)).values(status=old))
    op.execute(runs.update().where(runs.c.status == "failed").values(
        status=sa.func.substr(sa.literal("failed_") + runs.c.stage, 1, 20)))
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stage")
