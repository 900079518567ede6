"""P1-P3: objections, payee accounts and bank results staged; publicity records, payment instructions and
bank outcomes (append-only); ledger lines carry their payee type and publicity end.

Revision ID: 0012_publicity_payments
Revises: 0011_training_subsidies
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_publicity_payments"
down_revision = "0011_training_subsidies"
branch_labels = None
depends_on = None

APPEND_ONLY = ("publicity", "payment_instructions", "payment_outcomes")


def _triggers(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [f"CREATE TRIGGER {table}_no_{op_} BEFORE {op_.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END" for op_ in ("update", "delete")]
    if dialect == "postgresql":
        return [f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$ LANGUAGE plpgsql",
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"]
    return []


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


def _seq() -> sa.Column:
    return sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                     autoincrement=True)


def upgrade() -> None:
    _staging("stg_objections", *(sa.Column(c, sa.Text()) for c in
                                 ("objection_id", "subsidy_type", "reference", "person_id")),
             sa.Column("lodged_on", sa.Date()), sa.Column("resolved_on", sa.Date()), sa.Column("outcome", sa.Text()))
    _staging("stg_payee_accounts", *(sa.Column(c, sa.Text()) for c in ("person_id", "name", "bank_name",
                                                                       "account_no")),
             sa.Column("valid_from", sa.Date()), sa.Column("valid_to", sa.Date()))
    _staging("stg_payment_results", *(sa.Column(c, sa.Text()) for c in ("instruction_id", "payout_id", "result")),
             sa.Column("result_date", sa.Date()), sa.Column("failure_reason", sa.Text()))
    # ADD COLUMN in place (no table copy): the append-only triggers on ledger_lines stay as they are
    op.add_column("ledger_lines", sa.Column("payee_type", sa.String(length=12), nullable=True))
    op.add_column("ledger_lines", sa.Column("publicity_end", sa.Date(), nullable=True))
    op.create_table(
        "publicity", _seq(),
        sa.Column("subsidy_type", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("department_code", sa.String(length=20), nullable=False),
        sa.Column("fund", sa.String(length=40), nullable=False),
        sa.Column("occupation_code", sa.Text()),
        sa.Column("level", sa.Integer()),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.String(length=8), nullable=False),
        sa.Column("policy_version", sa.String(length=64)),
        sa.Column("publicity_start", sa.Date(), nullable=False),
        sa.Column("publicity_end", sa.Date(), nullable=False),
        sa.Column("working_days", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
    )
    op.create_index("ix_publicity_claim", "publicity", ["subsidy_type", "reference", "person_id"])
    op.create_table(
        "payment_instructions", _seq(),
        sa.Column("instruction_id", sa.String(length=40), nullable=False, unique=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("reversal_id", sa.String(length=40)),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=20), nullable=False),
        sa.Column("fund", sa.String(length=40), nullable=False),
        sa.Column("payee_type", sa.String(length=12), nullable=False),
        sa.Column("payee_id", sa.Text(), nullable=False),
        sa.Column("payee_name", sa.Text()),
        sa.Column("bank_name", sa.Text()),
        sa.Column("account_no", sa.Text()),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("instructed_on", sa.Date(), nullable=False),
        sa.Column("account_source", sa.Text()),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.CheckConstraint("kind IN ('payment', 'recovery')", name="ck_instruction_kind"),
    )
    op.create_index("ix_instructions_payout", "payment_instructions", ["payout_id"])
    op.create_table(
        "payment_outcomes",
        sa.Column("instruction_id", sa.String(length=40), primary_key=True),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("result", sa.String(length=10), nullable=False),
        sa.Column("result_date", sa.Date(), nullable=False),
        sa.Column("failure_reason", sa.Text()),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("source_row", sa.Integer()),
        sa.Column("row_hash", sa.String(length=32)),
    )
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for stmt in _triggers(dialect, table):
            op.execute(stmt)


def downgrade() -> None:
    for table in reversed(APPEND_ONLY):
        op.drop_table(table)
    op.drop_column("ledger_lines", "publicity_end")
    op.drop_column("ledger_lines", "payee_type")
    for name in ("stg_payment_results", "stg_payee_accounts", "stg_objections"):
        op.drop_index(f"ix_{name}_run", table_name=name)
        op.drop_table(name)
