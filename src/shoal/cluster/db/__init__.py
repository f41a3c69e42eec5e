"""The master's storage: SQLAlchemy models, alembic migrations and the store.

* :mod:`~shoal.cluster.db.models`: the tables (workers, pools, jobs, output
  chunks, health samples at three resolutions, tokens);
* :mod:`~shoal.cluster.db.engine`: engines (SQLite or PostgreSQL by URL) and
  ``alembic upgrade head`` run from code;
* :mod:`~shoal.cluster.db.store`: workers, pools and jobs;
  :mod:`~shoal.cluster.db.output`, :mod:`~shoal.cluster.db.health`,
  :mod:`~shoal.cluster.db.tokens`: the other tables' repositories.
"""

from __future__ import annotations
