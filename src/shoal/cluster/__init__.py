"""The cluster: a master with a REST API and workers that run commands for it.

Layers (imports point down only)::

    master/   FastAPI app (routes, auth, SSE, /metrics), the worker hub, the monitor
    worker/   the agent on each machine: link to the master, jobs, health samples
    db/       SQLAlchemy models, alembic migrations, the store (repository)
    protocol  the JSON messages between master and workers (over shoal.security)
    paths     where the master and the workers keep their files
    errors    ClusterError and its subclasses (each with an HTTP status and a code)

The REST API is specified in ``docs/contracts/cluster-rest.md``; the user guide is
``docs/cluster.md``.  Needs ``pip install 'shoal[cluster]'``.
"""

from __future__ import annotations
