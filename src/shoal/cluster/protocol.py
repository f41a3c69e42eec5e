"""The worker link: JSON messages between the master and its workers.

Transport: a :mod:`shoal.security` session (SPAKE2 password or pinned Ed25519
keys, AES-256-GCM frames), one channel message per JSON object, so a message
is never split across reads nor two glued together.  Output bytes travel as
base64.  Version 1::

    worker -> master                          master -> worker
    {"type":"hello","protocol":1,             {"type":"welcome","protocol":1,
     "worker_id":UUID,"name":..,"hostname":..  "resume":{JOB:{"stdout":N,"stderr":N}},
     "cores":N,"memory_total":N,"platform":..  "forget":[JOB..],"task_port":N}
     "python":..,"shoal":..,                   (or error)
     "jobs":[{"job":JOB,"pid":P,               what it already holds of each job
              "ended":bool,"exit_code":..,     the worker still reports; "forget":
              "signal":..,"reason":..}]}       jobs it does not know (the worker
                                               kills and drops them); "task_port"
                                               (optional, absent from older masters):
                                               the master's task service, where the
                                               worker's task agent links
    {"type":"heartbeat","health":{..}}        {"type":"run","job":JOB,"command":[..],
    {"type":"started","job":JOB,"pid":P}       "env":{..}|null,"cwd":..|null,
    {"type":"output","job":JOB,                "timeout":S|null}
     "stream":"stdout"|"stderr",              {"type":"kill","job":JOB,"signal":15}
     "offset":N,"data":BASE64}                {"type":"forget","job":JOB}
    {"type":"ended","job":JOB,"exit_code":..,   (the master stored the job's end:
     "signal":..,"killed":bool,"reason":..}     the worker may drop its output)
                                              {"type":"ping"}  (every 5 s: a worker that
                                               hears nothing for 15 s reconnects)

``offset`` is the byte offset of ``data`` in that stream, so after a
reconnection the worker re-sends from where the master's ``resume`` says and
the master drops anything it already has.  ``ended`` follows the last output
of its job.  A worker keeps each job's output until the master says
``forget``.  Unknown types are ignored, so fields and types can be added.
"""

from __future__ import annotations

import base64
import json
import platform
from typing import Any

from shoal._version import __version__
from shoal.cluster.errors import LinkError

PROTOCOL_VERSION = 1
MAX_MESSAGE = 4 << 20   # a JSON message larger than this is a protocol error
OUTPUT_PIECE = 256 << 10  # the most output bytes one message carries

Message = dict[str, Any]


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> Message:
    """A JSON object with a ``type``; anything else is a :class:`LinkError`."""
    if len(data) > MAX_MESSAGE:
        raise LinkError(f"a link message of {len(data)} bytes is too large")
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise LinkError("a link message is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise LinkError("a link message is not a JSON object with a type")
    return message


def run_message(job_id: str, command: list[str], env: dict[str, str] | None, cwd: str | None,
                timeout: float | None) -> Message:
    """The ``run`` message of one job (its size is what ``limits.MAX_RUN`` bounds)."""
    return {"type": "run", "command": command, "env": env, "cwd": cwd, "timeout": timeout,
            "job": job_id}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise LinkError("output data must be a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError:
        raise LinkError("output data is not valid base64") from None


def local_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "shoal": __version__}
