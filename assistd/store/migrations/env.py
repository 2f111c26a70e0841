"""Alembic environment: always handed a live connection by assistd.store.migrations."""

from alembic import context

from assistd.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `assistd migrate`, which supplies the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
