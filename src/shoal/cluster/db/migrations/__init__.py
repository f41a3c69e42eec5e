"""Alembic migrations of the cluster database (run by :func:`shoal.cluster.db.engine.migrate`)."""
