"""Alembic environment: runs on the connection :func:`migrate` passes in."""

from __future__ import annotations

from alembic import context

from shoal.cluster.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through shoal.cluster.db.engine.migrate
    raise RuntimeError("run the cluster migrations with shoal.cluster.db.engine.migrate()")
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
