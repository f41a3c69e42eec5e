"""``/api/v1/jobs``: a job, its output whole (from an offset) or streamed (SSE)."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from shoal.cluster.db.models import FINAL_JOB_STATES, Job
from shoal.cluster.limits import MAX_OUTPUT_READ
from shoal.cluster.master.auth import require
from shoal.cluster.master.routes.common import (
    KEEPALIVE_S,
    SSE_HEADERS,
    checked_ref,
    master_of,
    sse,
    stream_slot,
)
from shoal.cluster.master.schemas import JobOut, OutputOut, errors, job_out

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], dependencies=[Depends(require("read"))])
STREAMS = ("stdout", "stderr")


def complete_utf8(data: bytes) -> int:
    """The length of ``data`` without a UTF-8 character cut at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the lead byte of the last character
            needed = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else \
                4 if byte >> 3 == 0b11110 else 1
            return len(data) - back if needed > back else len(data)
    return len(data)


@router.get("/{job_id}", response_model=JobOut, responses=errors(404))
async def get_job(job_id: str, request: Request) -> JobOut:
    return job_out(master_of(request).store.get_job(checked_ref(job_id, "job")))


@router.get("/{job_id}/output", response_model=OutputOut, responses=errors(404))
async def output(job_id: str, request: Request,
                 stream: Literal["stdout", "stderr", "both"] = "both",
                 offset: Annotated[int, Query(ge=0, le=1 << 62)] = 0,
                 offset_stdout: Annotated[int | None, Query(ge=0, le=1 << 62)] = None,
                 offset_stderr: Annotated[int | None, Query(ge=0, le=1 << 62)] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_OUTPUT_READ)] = MAX_OUTPUT_READ,
                 ) -> OutputOut:
    """The output from a byte offset (per stream if given) to what has arrived so far,
    at most ``limit`` bytes of each stream (``truncated`` then says there is more).

    ``offset_stdout``/``offset_stderr`` in the answer are where to ask from next;
    a UTF-8 character cut by the end of what arrived is left for that next read.
    """
    master = master_of(request)
    job = master.store.get_job(checked_ref(job_id, "job"))
    master.flusher.flush()
    done = job.state in FINAL_JOB_STATES
    starts = {"stdout": offset if offset_stdout is None else offset_stdout,
              "stderr": offset if offset_stderr is None else offset_stderr}
    texts, ends = {}, {}
    truncated = False
    for name in STREAMS:
        data = master.output.read(job_id, name, starts[name], limit + 1) \
            if stream in (name, "both") else b""
        cut = len(data) > limit
        truncated = truncated or cut
        data = data[:limit]
        keep = len(data) if done and not cut else complete_utf8(data)
        texts[name] = data[:keep].decode("utf-8", errors="replace")
        ends[name] = starts[name] + keep
    return OutputOut(stdout=texts["stdout"], stderr=texts["stderr"],
                     offset_stdout=ends["stdout"], offset_stderr=ends["stderr"], done=done,
                     truncated=truncated)


@router.get("/{job_id}/stream", responses={200: {"content": {"text/event-stream": {}}},
                                           **errors(404, 503)})
async def stream(job_id: str, request: Request) -> StreamingResponse:
    """Server-Sent Events: ``output`` events (all so far, then live), then ``end`` (the Job)."""
    master = master_of(request)
    master.store.get_job(checked_ref(job_id, "job"))  # 404 before the stream starts
    stream_slot(master)
    return StreamingResponse(_events(request, job_id), media_type="text/event-stream",
                             headers=SSE_HEADERS)


async def _events(request: Request, job_id: str) -> AsyncIterator[str]:
    master = master_of(request)
    decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in STREAMS}
    async with master.bus.subscribe(f"output:{job_id}", f"job:{job_id}") as queue:
        master.flusher.flush()
        position = {}
        for name in STREAMS:  # everything so far, a piece at a time, then what follows
            position[name] = 0
            while data := master.output.read(job_id, name, position[name], MAX_OUTPUT_READ):
                position[name] += len(data)
                text = decoders[name].decode(data)
                if text:
                    yield sse("output", {"stream": name, "data": text})
        job: Job = master.store.get_job(job_id)
        while job.state not in FINAL_JOB_STATES:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                yield ": keepalive\n\n"
                continue
            if master.bus.dropped(item):
                return  # fell behind: the client reconnects and starts over
            if isinstance(item, Job):
                job = item
                continue
            name, offset, data = item
            data = data[max(0, position[name] - offset):]
            position[name] = max(position[name], offset + len(data))
            text = decoders[name].decode(data)
            if text:
                yield sse("output", {"stream": name, "data": text})
        for name in STREAMS:
            tail = decoders[name].decode(b"", final=True)
            if tail:
                yield sse("output", {"stream": name, "data": tail})
        yield sse("end", job_out(job).model_dump(mode="json"))
