"""R7 training subsidies: the project filings and institution qualifications, the classes' project and
institution, and the training-subsidy eligibility table.

Revision ID: 0011_training_subsidies
Revises: 0010_rules_rev2
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_training_subsidies"
down_revision = "0010_rules_rev2"
branch_labels = None
depends_on = None


def _staging(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        *columns,
        sa.Column("row_hash", sa.String(32)),
        sa.Column("validated_run", sa.String(250)),
    )
    op.create_index(f"ix_{name}_run", name, ["run_id", "row_hash"])


def upgrade() -> None:
    _staging("stg_training_projects",
             sa.Column("project_id", sa.Text()), sa.Column("department_code", sa.Text()), sa.Column("title", sa.Text()),
             sa.Column("occupation_code", sa.Text()), sa.Column("level", sa.Integer()),
             sa.Column("standard_per_trainee", sa.BigInteger()), sa.Column("planned_trainees", sa.Integer()),
             sa.Column("budget", sa.BigInteger()), sa.Column("filed_on", sa.Date()))
    _staging("stg_training_institutions",
             sa.Column("institution_credit_code", sa.Text()), sa.Column("institution_name", sa.Text()),
             sa.Column("qualified_from", sa.Date()), sa.Column("qualified_to", sa.Date()),
             sa.Column("bank_name", sa.Text()), sa.Column("account_no", sa.Text()))
    with op.batch_alter_table("stg_training_classes") as batch:
        batch.add_column(sa.Column("project_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("institution_credit_code", sa.Text(), nullable=True))
    op.create_table(
        "int_training_eligibility",
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("class_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(18), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("department_code", sa.String(20), nullable=False),
        sa.Column("project_id", sa.Text()),
        sa.Column("institution_credit_code", sa.Text()),
        sa.Column("institution_name", sa.Text()),
        sa.Column("occupation_code", sa.Text()),
        sa.Column("level", sa.Integer()),
        sa.Column("filed_in_advance", sa.Boolean(), nullable=False),
        sa.Column("start_date", sa.Date()),
        sa.Column("end_date", sa.Date()),
        sa.Column("policy_version", sa.String(64)),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("project_filed", sa.Boolean(), nullable=False),
        sa.Column("institution_qualified", sa.Boolean(), nullable=False),
        sa.Column("project_standard_fen", sa.BigInteger()),
        sa.Column("catalog_amount_fen", sa.BigInteger()),
        sa.Column("budget_fen", sa.BigInteger()),
        sa.Column("uplift_units", sa.Integer(), nullable=False),
        sa.Column("overlapping_attendance", sa.Boolean()),
        sa.PrimaryKeyConstraint("run_id", "class_id", "person_id"),
    )


def downgrade() -> None:
    op.drop_table("int_training_eligibility")
    with op.batch_alter_table("stg_training_classes") as batch:
        batch.drop_column("institution_credit_code")
        batch.drop_column("project_id")
    for name in ("stg_training_institutions", "stg_training_projects"):
        op.drop_index(f"ix_{name}_run", table_name=name)
        op.drop_table(name)
