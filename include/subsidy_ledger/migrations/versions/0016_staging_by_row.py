"""Staging tables indexed by run and row number instead of run and row hash.

The row-hash index served the incremental mode (issue 16 removed it), which looked rows up by content. Trace
looks a run's staged rows up by row number, which that index could not serve. Rows arrive in row-number order,
so the new index grows at its end, where the hash index took every row at a random place.

Revision ID: 0016_staging_by_row
Revises: 0015_run_record
"""

from alembic import op

revision = "0016_staging_by_row"
down_revision = "0015_run_record"
branch_labels = None
depends_on = None

# the staging tables at this revision (a migration names its tables rather than import today's registries)
_STAGING = ("stg_social_insurance", "stg_unemployment_registrations", "stg_certificates", "stg_veterans",
            "stg_low_income", "stg_training_classes", "stg_class_enrollments", "stg_apprenticeships",
            "stg_affected_enterprises", "stg_city_payouts", "stg_subsidy_catalog", "stg_training_projects",
            "stg_training_institutions", "stg_school_leavers", "stg_objections", "stg_payee_accounts",
            "stg_payment_results", "stg_annual_plans")


def upgrade() -> None:
    for table in _STAGING:
        op.drop_index(f"ix_{table}_run", table_name=table)
        op.create_index(f"ix_{table}_row", table, ["run_id", "source_row"])


def downgrade() -> None:
    for table in _STAGING:
        op.drop_index(f"ix_{table}_row", table_name=table)
        op.create_index(f"ix_{table}_run", table, ["run_id", "row_hash"])
