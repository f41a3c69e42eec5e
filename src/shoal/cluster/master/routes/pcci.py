"""``/pcci``: PCCI's REST routes and bodies, over shoal's pools, behind shoal's tokens.

A PCCI client (sulianoar/PCCI: its scripts, its health check) moves over by
changing its base URL to ``http://MASTER:7450/pcci`` and adding
``Authorization: Bearer <token>``.  docs/coming-from-pcci.md maps each route to
the native API.  As PCCI had them:

    POST /job {"cmd": "a shell-like string", "workers": ["name", ...]}
         -> 200 {"pool_id", "message": "New pool submited"}
    GET  /pool/:id   -> 200 [Pool] (a list of the one pool); 404 {"message"}
    GET  /pools      -> 200 [Pool, ...] (here the newest 50, each job's result cut to 4 KiB)
    GET  /workers    -> 200 [{"id": name, "socket": {"remoteAddress", "remotePort",
                                                     "_peername": {"address", "port"}}}]
                        (the workers online)
    PUT  /kill/:pool {"workers": ["name", ...]} -> 200 {"message"}; 404; 400

    Pool {"id", "status": null (running) | 0 (every job exited 0) | 1, "jobs": [Job],
          "cached_at": ms since the epoch when it ended | null}
    Job  {"code": "JOB", "pool": pool id, "cmd", "pid", "result": stdout without line
          breaks then stderr (as PCCI's worker made it), "status": exit code | null while
          running (a job killed, lost or failed: 128 + signal, else 1),
          "worker_id": name, "time_to_calc": ms from the pool's start to the job's end}

Errors carry PCCI's ``{"message"}`` beside the contract's ``{"error": {...}}``
(:mod:`..errors` adds it on this prefix), with PCCI's statuses: 400 for a bad
body or a worker that is not online, 404 for an unknown pool.
"""

from __future__ import annotations

import datetime as dt
import shlex
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import ValidationError

from shoal.cluster.db.models import FINAL_JOB_STATES, Worker
from shoal.cluster.db.tokens import TokenInfo
from shoal.cluster.db.views import JobView, PoolView
from shoal.cluster.errors import ClusterError, NotFoundError
from shoal.cluster.limits import MAX_OUTPUT_READ
from shoal.cluster.master.auth import require
from shoal.cluster.master.errors import PCCI_PREFIX
from shoal.cluster.master.routes.common import master_of
from shoal.cluster.master.routes.pools import check_run_size
from shoal.cluster.master.schemas import SubmitIn, errors
from shoal.cluster.master.state import MasterState

LIST_POOLS = 50             # GET /pools: the newest this many
LIST_RESULT_BYTES = 4096    # ... each job's result cut to this

router = APIRouter(prefix=PCCI_PREFIX, tags=["pcci"])
_NOT_CONNECTED = "One or more worker not connected, try GET /workers"
_NOT_FOUND = "Pool ID not found or expired"


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _status(job: JobView) -> int | None:
    if job.state not in FINAL_JOB_STATES:
        return None
    if job.state == "exited" and job.exit_code is not None:
        return job.exit_code
    return 128 + job.signal if job.signal else 1


def _result(master: MasterState, job: JobView, limit: int) -> str:
    out = master.output.read(job.id, "stdout", 0, limit)
    err = master.output.read(job.id, "stderr", 0, limit)
    stdout = out.decode("utf-8", errors="replace").replace("\n", "").replace("\r", "")
    return stdout + err.decode("utf-8", errors="replace")


def _pool(master: MasterState, pool: PoolView, result_limit: int) -> dict[str, Any]:
    statuses = [_status(job) for job in pool.jobs]
    done = pool.state == "done"
    cmd = shlex.join(pool.command)
    return {
        "id": pool.id,
        "status": None if not done else 0 if all(s == 0 for s in statuses) else 1,
        "jobs": [{"code": "JOB", "pool": pool.id, "cmd": cmd, "pid": job.pid,
                  "result": _result(master, job, result_limit), "status": status,
                  "worker_id": job.worker_name,
                  "time_to_calc": None if job.ended_at is None
                  else _ms(job.ended_at) - _ms(pool.created_at)}
                 for job, status in zip(pool.jobs, statuses, strict=True)],
        "cached_at": _ms(pool.ended_at) if done and pool.ended_at is not None else None}


def _names(body: Any, *, required: bool) -> list[str]:
    workers = body.get("workers") if isinstance(body, dict) else None
    if workers is None and not required:
        return []
    if not isinstance(workers, list) or not workers or \
            not all(isinstance(w, str) and w for w in workers):
        raise ClusterError("workers must be a list of worker ids, e.g. [\"node1\", \"node2\"]; "
                           "GET /workers lists them", code="bad_request")
    return workers


def _online(master: MasterState, names: list[str]) -> list[Worker]:
    """The named workers, all online: else PCCI's 400 (shoal would say 400 or 409)."""
    try:
        return master.store.resolve_workers(names)
    except ClusterError as exc:
        raise ClusterError(f"{_NOT_CONNECTED} ({exc})", code=exc.code) from None


def _get_pool(master: MasterState, pool_id: str) -> PoolView:
    try:
        return master.store.get_pool(pool_id[:64])
    except NotFoundError:
        raise NotFoundError(_NOT_FOUND, code="pool_not_found") from None


@router.post("/job", responses=errors(400, 413))
async def job(request: Request, token: Annotated[TokenInfo, Depends(require("submit"))],
              body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """PCCI's ``POST /job``: ``cmd`` (split as a shell would, no shell) on ``workers``."""
    master = master_of(request)
    names = _names(body, required=True)
    cmd = body.get("cmd")
    if not isinstance(cmd, str) or not cmd.strip():
        raise ClusterError("Missing command", code="missing_command")
    try:
        submit = SubmitIn(command=cmd, workers=names)
    except ValidationError as exc:
        why = exc.errors()[0].get("msg", "invalid").removeprefix("Value error, ")
        raise ClusterError(f"cmd: {why}", code="bad_command") from None
    check_run_size(submit)
    workers = _online(master, names)
    pool = master.store.create_pool(submit.argv, workers, env=None, cwd=None, timeout=None,
                                    submitted_by=token.name)
    master.publish_pool(pool.id)
    await master.hub.dispatch(pool)
    return {"pool_id": pool.id, "message": "New pool submited"}


@router.get("/pool/{pool_id}", responses=errors(404), dependencies=[Depends(require("read"))])
async def pool(pool_id: str, request: Request) -> list[dict[str, Any]]:
    master = master_of(request)
    master.flusher.flush()
    return [_pool(master, _get_pool(master, pool_id), MAX_OUTPUT_READ)]


@router.get("/pools", responses=errors(), dependencies=[Depends(require("read"))])
async def pools(request: Request) -> list[dict[str, Any]]:
    master = master_of(request)
    master.flusher.flush()
    summaries, _ = master.store.list_pools(state=None, worker=None, limit=LIST_POOLS,
                                           offset=0)
    found = []
    for summary in summaries:
        try:
            found.append(_pool(master, master.store.get_pool(summary.id), LIST_RESULT_BYTES))
        except NotFoundError:
            continue  # pruned meanwhile
    return found


@router.get("/workers", responses=errors(), dependencies=[Depends(require("read"))])
async def workers(request: Request) -> list[dict[str, Any]]:
    links = sorted(master_of(request).hub.links.values(), key=lambda link: link.name)
    return [{"id": link.name, "socket": {
        "remoteAddress": link.address, "remotePort": link.port,
        "_peername": {"address": link.address, "port": link.port}}} for link in links]


@router.put("/kill/{pool_id}", responses=errors(400, 404),
            dependencies=[Depends(require("submit"))])
async def kill(pool_id: str, request: Request,
               body: Annotated[Any, Body()] = None) -> dict[str, str]:
    """PCCI's ``PUT /kill/:pool``: kill the pool's jobs on ``workers`` (SIGTERM, then
    SIGKILL 5 s later, every process of each job)."""
    master = master_of(request)
    names = _names(body, required=True)
    pool = _get_pool(master, pool_id)
    _online(master, names)
    jobs = master.store.request_kill(pool.id, names, 15)
    await master.hub.kill(jobs, 15)
    return {"message": f"Trying to kill job from pool : {pool.id} on {','.join(names)}"}
