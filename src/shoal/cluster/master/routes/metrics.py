"""``/metrics``: Prometheus text, for a token of scope read."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shoal.cluster.master.auth import require
from shoal.cluster.master.routes.common import master_of
from shoal.cluster.master.schemas import errors

router = APIRouter(tags=["metrics"], dependencies=[Depends(require("read"))])


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {}}}, **errors()})
async def metrics(request: Request) -> Response:
    master = master_of(request)
    return Response(generate_latest(master.metrics_registry), media_type=CONTENT_TYPE_LATEST)
