"""Initial warehouse schema: staging, intermediate, decisions, append-only ledger.

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# The ledger is append-only (POLICY.md "Ledger semantics"): the database itself refuses
# UPDATE and DELETE on ledger_lines, whatever client writes to it.
_SQLITE_TRIGGERS = [
    "CREATE TRIGGER ledger_lines_no_update BEFORE UPDATE ON ledger_lines "
    "BEGIN SELECT RAISE(ABORT, 'ledger_lines is append-only'); END",
    "CREATE TRIGGER ledger_lines_no_delete BEFORE DELETE ON ledger_lines "
    "BEGIN SELECT RAISE(ABORT, 'ledger_lines is append-only'); END",
]
_PG_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION ledger_lines_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'ledger_lines is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER ledger_lines_no_update BEFORE UPDATE OR DELETE ON ledger_lines "
    "FOR EACH ROW EXECUTE FUNCTION ledger_lines_append_only()",
    "CREATE TRIGGER ledger_lines_no_truncate BEFORE TRUNCATE ON ledger_lines "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_lines_append_only()",
]


def upgrade() -> None:

    op.create_table(
        "decisions",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("subsidy_type", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("base_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("uplift_units", sa.Integer(), nullable=False),
        sa.Column("cap_place", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.String(length=8), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("department_code", sa.String(length=20), nullable=False),
        sa.Column("fund", sa.String(length=40), nullable=False),
        sa.Column("occupation_code", sa.Text(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("event_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "subsidy_type", "reference", "person_id"),
    )
    op.create_table(
        "int_certificate_eligibility",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("certificate_no", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("certificate_type", sa.String(length=40), nullable=False),
        sa.Column("occupation_code", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("training_class_id", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("civil_servant", sa.Boolean(), nullable=False),
        sa.Column("insured", sa.Boolean(), nullable=False),
        sa.Column("key_group", sa.Boolean(), nullable=False),
        sa.Column("class_filed_in_advance", sa.Boolean(), nullable=True),
        sa.Column("on_roster", sa.Boolean(), nullable=True),
        sa.Column("paid_by_city", sa.Boolean(), nullable=False),
        sa.Column("uplift_units", sa.Integer(), nullable=False),
        sa.Column("catalog_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("department_code", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "certificate_no"),
    )
    op.create_table(
        "ledger_lines",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("entry_type", sa.String(length=10), nullable=False),
        sa.Column("reverses_payout_id", sa.String(length=40), nullable=True),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("department_code", sa.String(length=20), nullable=False),
        sa.Column("fund", sa.String(length=40), nullable=False),
        sa.Column("subsidy_type", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("occupation_code", sa.Text(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("uplift_units", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=8), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.CheckConstraint(
            "(entry_type = 'payout' AND amount_fen > 0 AND reverses_payout_id IS NULL) OR "
            "(entry_type = 'reversal' AND amount_fen < 0 AND reverses_payout_id IS NOT NULL)",
            name="ck_ledger_sign",
        ),
        sa.CheckConstraint("entry_type IN ('payout', 'reversal')", name="ck_ledger_entry_type"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("payout_id"),
    )
    op.create_index(
        "ix_ledger_claim", "ledger_lines", ["subsidy_type", "reference", "person_id"], unique=False
    )
    op.create_index("ix_ledger_posted_on", "ledger_lines", ["posted_on"], unique=False)
    op.create_table(
        "quarantine",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("registry", sa.String(length=64), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("record_key", sa.Text(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "registry", "row_number"),
    )
    op.create_table(
        "reconciliation",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("registry", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("encoding", sa.String(length=20), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("rows_in", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("gx_success", sa.Boolean(), nullable=False),
        sa.Column("gx_evaluated", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "registry"),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("logical_date", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_table(
        "stg_affected_enterprises",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("employer_credit_code", sa.Text(), nullable=True),
        sa.Column("employer_name", sa.Text(), nullable=True),
        sa.Column("listed_on", sa.Date(), nullable=True),
        sa.Column("uplift_rate", sa.Integer(), nullable=True),
    )
    op.create_table(
        "stg_apprenticeships",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("employer_credit_code", sa.Text(), nullable=True),
        sa.Column("school_name", sa.Text(), nullable=True),
        sa.Column("apprentice_kind", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("monthly_allowance", sa.BigInteger(), nullable=True),
        sa.Column("department_code", sa.Text(), nullable=True),
    )
    op.create_table(
        "stg_certificates",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("certificate_no", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("certificate_type", sa.Text(), nullable=True),
        sa.Column("occupation_code", sa.Text(), nullable=True),
        sa.Column("occupation_name", sa.Text(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("training_class_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
    )
    op.create_table(
        "stg_city_payouts",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("occupation_code", sa.Text(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("certificate_no", sa.Text(), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "stg_class_enrollments",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("attendance_days", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
    )
    op.create_table(
        "stg_low_income",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("household_id", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
    )
    op.create_table(
        "stg_social_insurance",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("employer_credit_code", sa.Text(), nullable=True),
        sa.Column("employer_name", sa.Text(), nullable=True),
        sa.Column("employer_category", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("town_code", sa.Text(), nullable=True),
    )
    op.create_table(
        "stg_subsidy_catalog",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("occupation_code", sa.Text(), nullable=True),
        sa.Column("certificate_type", sa.Text(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("effective_to", sa.Date(), nullable=True),
    )
    op.create_table(
        "stg_training_classes",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Text(), nullable=True),
        sa.Column("department_code", sa.Text(), nullable=True),
        sa.Column("institution_name", sa.Text(), nullable=True),
        sa.Column("occupation_code", sa.Text(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("training_kind", sa.Text(), nullable=True),
        sa.Column("filed_on", sa.Date(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("town_code", sa.Text(), nullable=True),
    )
    op.create_table(
        "stg_unemployment_registrations",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("registered_on", sa.Date(), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("area", sa.Text(), nullable=True),
        sa.Column("town_code", sa.Text(), nullable=True),
    )
    op.create_table(
        "stg_veterans",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("discharged_on", sa.Date(), nullable=True),
        sa.Column("town_code", sa.Text(), nullable=True),
    )
    dialect = op.get_bind().dialect.name
    triggers = {"postgresql": _PG_TRIGGERS, "sqlite": _SQLITE_TRIGGERS}.get(dialect, [])
    for stmt in triggers:
        op.execute(stmt)


def downgrade() -> None:
    op.drop_table("stg_veterans")
    op.drop_table("stg_unemployment_registrations")
    op.drop_table("stg_training_classes")
    op.drop_table("stg_subsidy_catalog")
    op.drop_table("stg_social_insurance")
    op.drop_table("stg_low_income")
    op.drop_table("stg_class_enrollments")
    op.drop_table("stg_city_payouts")
    op.drop_table("stg_certificates")
    op.drop_table("stg_apprenticeships")
    op.drop_table("stg_affected_enterprises")
    op.drop_table("runs")
    op.drop_table("reconciliation")
    op.drop_table("quarantine")
    op.drop_index("ix_ledger_posted_on", table_name="ledger_lines")
    op.drop_index("ix_ledger_claim", table_name="ledger_lines")
    op.drop_table("ledger_lines")
    op.drop_table("int_certificate_eligibility")
    op.drop_table("decisions")
