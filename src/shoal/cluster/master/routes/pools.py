"""``/api/v1/pools``: submit a command, list and get pools, kill their jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from shoal.cluster import protocol
from shoal.cluster.db.tokens import TokenInfo
from shoal.cluster.errors import TooLargeError
from shoal.cluster.limits import MAX_PAGE, MAX_RUN, size_text
from shoal.cluster.master.auth import require
from shoal.cluster.master.routes.common import checked_ref, master_of
from shoal.cluster.master.schemas import (
    KillIn,
    PoolOut,
    PoolPage,
    SubmitIn,
    errors,
    pool_out,
    pool_summary_out,
)

router = APIRouter(prefix="/api/v1/pools", tags=["pools"])


def check_run_size(body: SubmitIn) -> None:
    """413 for a command the worker link could not carry (limits agree end to end)."""
    message = protocol.run_message("00000000-0000-0000-0000-000000000000", body.argv,
                                   body.env, body.cwd, body.timeout)
    size = len(protocol.encode(message))
    if size > MAX_RUN:
        raise TooLargeError(f"the command, its environment and folder take {size} bytes on "
                            f"the worker link, over its limit of {size_text(MAX_RUN)}; put "
                            "big inputs in a file the command reads", code="command_too_large")


@router.post("", status_code=201, response_model=PoolOut, responses=errors(400, 409, 413))
async def submit(body: SubmitIn, request: Request,
                 token: Annotated[TokenInfo, Depends(require("submit"))]) -> PoolOut:
    """Run a command on the listed workers (or every online one): a pool of one job each."""
    master = master_of(request)
    check_run_size(body)
    workers = master.store.resolve_workers(body.workers)
    pool = master.store.create_pool(body.argv, workers, env=body.env, cwd=body.cwd,
                                    timeout=body.timeout, submitted_by=token.name)
    master.publish_pool(pool.id)
    await master.hub.dispatch(pool)
    return pool_out(master.store.get_pool(pool.id))


@router.get("", response_model=PoolPage, responses=errors(),
            dependencies=[Depends(require("read"))])
async def list_pools(request: Request,
                     state: Literal["running", "done"] | None = None,
                     worker: Annotated[str | None, Query(max_length=255)] = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                     offset: Annotated[int, Query(ge=0, le=1 << 62)] = 0) -> PoolPage:
    """Pool summaries, newest first, filtered by state and by a worker (name or id)."""
    items, total = master_of(request).store.list_pools(state=state, worker=worker,
                                                       limit=limit, offset=offset)
    return PoolPage(items=[pool_summary_out(p) for p in items], total=total, limit=limit,
                    offset=offset)


@router.get("/{pool_id}", response_model=PoolOut, responses=errors(404),
            dependencies=[Depends(require("read"))])
async def get_pool(pool_id: str, request: Request) -> PoolOut:
    return pool_out(master_of(request).store.get_pool(checked_ref(pool_id, "pool")))


@router.post("/{pool_id}/kill", response_model=PoolOut, responses=errors(400, 404),
             dependencies=[Depends(require("submit"))])
async def kill(pool_id: str, request: Request, body: KillIn | None = None) -> PoolOut:
    """Kill the pool's unfinished jobs (on the listed workers): the signal, SIGKILL 5 s later."""
    master = master_of(request)
    body = body or KillIn()
    jobs = master.store.request_kill(checked_ref(pool_id, "pool"), body.workers, body.signal)
    await master.hub.kill(jobs, body.signal)
    return pool_out(master.store.get_pool(pool_id))
