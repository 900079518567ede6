"""Users' language: the key of the pseudonymous person code, the quarantine's column and masked value, and
when GX validated each registry.

Revision ID: 0013_users_language
Revises: 0012_publicity_payments
"""

import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0013_users_language"
down_revision = "0012_publicity_payments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # one row: the HMAC key of person codes (the warehouse already holds the identity numbers it hides)
    keys = op.create_table("person_code_key", sa.Column("name", sa.String(20), primary_key=True),
                           sa.Column("key_hex", sa.String(64), nullable=False), sa.Column("created_at", sa.DateTime))
    # made here, where upgrades are serialised, so that two first nights at once cannot make two keys
    op.bulk_insert(keys, [{"name": "default", "key_hex": secrets.token_hex(32),
                           "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None)}])
    op.add_column("quarantine", sa.Column("columns", sa.Text(), nullable=True))
    op.add_column("quarantine", sa.Column("values_masked", sa.Text(), nullable=True))
    op.add_column("validation_results", sa.Column("validated_at", sa.DateTime(), nullable=True))  # UTC


def downgrade() -> None:
    with op.batch_alter_table("validation_results") as b:
        b.drop_column("validated_at")
    with op.batch_alter_table("quarantine") as b:
        b.drop_column("values_masked")
        b.drop_column("columns")
    op.drop_table("person_code_key")
