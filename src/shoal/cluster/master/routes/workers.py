"""``/api/v1/workers``: workers with state, resources, last heartbeat and health."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response

from shoal.cluster.master.auth import require
from shoal.cluster.master.routes.common import checked_ref, master_of
from shoal.cluster.master.schemas import HealthOut, HealthPage, WorkerOut, WorkerPage, errors

router = APIRouter(prefix="/api/v1/workers", tags=["workers"],
                   dependencies=[Depends(require("read"))])


@router.get("", response_model=WorkerPage, responses=errors())
async def list_workers(request: Request,
                       state: Literal["online", "offline", "lost"] | None = None) -> WorkerPage:
    master = master_of(request)
    items = master.workers_out(master.store.list_workers(state))
    return WorkerPage(items=items, total=len(items))


@router.get("/{worker_id}", response_model=WorkerOut, responses=errors(404))
async def get_worker(worker_id: str, request: Request) -> WorkerOut:
    """A worker by id or name."""
    master = master_of(request)
    return master.workers_out([master.store.get_worker(checked_ref(worker_id, "worker"))])[0]


@router.delete("/{worker_id}", status_code=204, response_class=Response,
               responses=errors(404, 409), dependencies=[Depends(require("admin"))])
async def remove_worker(worker_id: str, request: Request) -> Response:
    """Remove a worker that is not online (a stale one): it leaves every list; its pools
    and jobs stay.  409 ``worker_online`` while it is online.  It comes back if it links
    again."""
    master = master_of(request)
    worker = master.store.get_worker(checked_ref(worker_id, "worker"))
    master.hub.remove_worker(worker.id)
    master.publish_removed(worker.id)
    return Response(status_code=204)


@router.get("/{worker_id}/health", response_model=HealthPage, responses=errors(404))
async def health(worker_id: str, request: Request, since: dt.datetime | None = None,
                 resolution: Literal["raw", "1m", "1h"] = "raw") -> HealthPage:
    """Health samples from ``since`` (default: all kept), oldest first, at most 5000."""
    master = master_of(request)
    worker = master.store.get_worker(checked_ref(worker_id, "worker"))
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)  # a time without a zone is UTC
    if resolution == "raw":
        master.flusher.flush()
    samples = master.health.series(worker.id, resolution, since)
    return HealthPage(items=[HealthOut(**s) for s in samples])
