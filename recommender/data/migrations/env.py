"""Alembic's environment: run on the connection the store hands over (never from a URL here)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the store runs these migrations
    raise RuntimeError("run the store's migrations through recommender.data.migrations.upgrade")

# SQLite cannot ALTER most things in place: batch mode copies the table instead.
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
