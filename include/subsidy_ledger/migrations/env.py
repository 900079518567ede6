"""Alembic environment: runs migrations on the connection handed over by warehouse.migrate()."""

from alembic import context
from subsidy_ledger.warehouse import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # invoked from the alembic CLI: build an engine from sqlalchemy.url
    from sqlalchemy import create_engine

    connection = create_engine(config.get_main_option("sqlalchemy.url")).connect()
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
