"""POLICY.md revision 2: R1 on the certificate alone (class facts go, insured months come), per-person
apprentice checks, the plan's living-allowance groups, the school leavers' registry (两后生) and the
certificates paid by both the district and the city (city_overlaps).

Revision ID: 0010_rules_rev2
Revises: 0009_holds
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_rules_rev2"
down_revision = "0009_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stg_school_leavers",
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Text()),
        sa.Column("person_id", sa.Text()),
        sa.Column("name", sa.Text()),
        sa.Column("school_name", sa.Text()),
        sa.Column("education_level", sa.Text()),
        sa.Column("graduated_on", sa.Date()),
        sa.Column("hukou", sa.Text()),
        sa.Column("row_hash", sa.String(32)),
        sa.Column("validated_run", sa.String(250)),
    )
    op.create_index("ix_stg_school_leavers_run", "stg_school_leavers", ["run_id", "row_hash"])
    op.create_table(
        "city_overlaps",
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(18), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("department_code", sa.String(20), nullable=False),
        sa.Column("occupation_code", sa.Text()),
        sa.Column("level", sa.Integer()),
        sa.Column("district_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("city_certificate_no", sa.Text(), nullable=False),
        sa.Column("city_paid_on", sa.Date()),
        sa.Column("city_amount_fen", sa.BigInteger()),
        sa.PrimaryKeyConstraint("run_id", "reference", "person_id", "city_certificate_no"),
    )
    with op.batch_alter_table("int_certificate_eligibility") as batch:
        batch.drop_column("class_filed_in_advance")
        batch.drop_column("on_roster")
        batch.add_column(sa.Column("insured_months", sa.Integer(), nullable=True))
    with op.batch_alter_table("int_apprentice_eligibility") as batch:
        batch.add_column(sa.Column("agreement_start", sa.Date(), nullable=True))
        batch.add_column(sa.Column("school_partner", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("in_post_one_year", sa.Boolean(), nullable=True))
    with op.batch_alter_table("int_living_allowance_eligibility") as batch:
        batch.add_column(sa.Column("group_basis", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("int_living_allowance_eligibility") as batch:
        batch.drop_column("group_basis")
    with op.batch_alter_table("int_apprentice_eligibility") as batch:
        batch.drop_column("in_post_one_year")
        batch.drop_column("school_partner")
        batch.drop_column("agreement_start")
    with op.batch_alter_table("int_certificate_eligibility") as batch:
        batch.drop_column("insured_months")
        batch.add_column(sa.Column("on_roster", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("class_filed_in_advance", sa.Boolean(), nullable=True))
    op.drop_table("city_overlaps")
    op.drop_index("ix_stg_school_leavers_run", table_name="stg_school_leavers")
    op.drop_table("stg_school_leavers")
