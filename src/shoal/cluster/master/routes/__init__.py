"""The REST resources, one module each; :data:`ROUTERS` is what the app mounts."""

from __future__ import annotations

from shoal.cluster.master.routes.events import router as events_router
from shoal.cluster.master.routes.jobs import router as jobs_router
from shoal.cluster.master.routes.metrics import router as metrics_router
from shoal.cluster.master.routes.pcci import router as pcci_router
from shoal.cluster.master.routes.pools import router as pools_router
from shoal.cluster.master.routes.tasks import router as tasks_router
from shoal.cluster.master.routes.token import router as token_router
from shoal.cluster.master.routes.workers import router as workers_router

ROUTERS = (pools_router, jobs_router, workers_router, events_router, metrics_router,
           tasks_router, token_router, pcci_router)
