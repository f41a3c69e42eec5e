"""The beacon protocol: JSON messages over an authenticated, encrypted session.

Transport: a :mod:`shoal.security` session (SPAKE2 password or pinned Ed25519
keys).  Every message below is one channel message holding one JSON object,
UTF-8, with a ``"type"`` string.  Nothing is ever unpickled by a beacon: the
control messages are JSON, and program output travels base64-encoded.  The
one binary message is a bundle's body, which follows its ``bundle`` header.

Version 1.  The runner speaks first, always with ``hello``; the beacon answers
each request in order.  ``error`` may answer any request::

    runner -> beacon                        beacon -> runner
    {"type":"hello","protocol":1,           {"type":"welcome","protocol":1,
     "python":"3.11.7","shoal":"0.1.0",      "python":..,"shoal":..,"host":"node7",
     "runner":"alice@laptop"}                "id":"SHA256:..."}  (the beacon's key's
                                             fingerprint: one beacon, whatever its name)
                                            (or error "protocol")
    {"type":"status"}                       {"type":"status", <see BeaconServer.status>}
    {"type":"has_bundle","sha256":HEX}      {"type":"bundle_known","sha256":HEX,"known":bool}
    {"type":"bundle","sha256":HEX,          {"type":"bundle_stored","sha256":HEX}
     "size":N} + one binary message          (error "bundle": wrong size or hash)
    {"type":"run","job":ID,"bundle":HEX,    {"type":"started","job":ID,"pids":[..]}
     "program":"prog.py" | null,            (error "version": Python or shoal differ;
     "module":"pkg.mod" | null,              error "busy", "bundle", "run")
     "args":[..],"ranks":[0,1],"size":12,   then, until the job ends:
     "env":{"K":"V"}}                        {"type":"output","job":ID,"rank":R,
                                              "host":H,"stream":"stdout"|"stderr",
                                              "data":BASE64}
                                             {"type":"exit","job":ID,"rank":R,"status":S,
                                              "initialized":bool,"finalized":bool,
                                              "signaled":bool}
                                             {"type":"rank_event","job":ID,"rank":R,
                                              "host":H,"event":"error"|"abort"|"usage",
                                              "fields":{"traceback":..,"exception":..}
                                              | {"code":N,"message":..} | {"message":..}}
                                             {"type":"done","job":ID,"status":S,
                                              "statuses":{"0":S0,..}}
    {"type":"kill","job":ID}                (the job ends: exit ... done)
    {"type":"heartbeat"}                    (no answer)

    any: {"type":"error","code":CODE,"message":TEXT}
    beacon -> runner, at any time: {"type":"heartbeat"}

**Heartbeats.**  A pulled cable sends no FIN and no RST, so TCP alone would
notice a lost peer only after minutes of retransmissions.  Both sides send
``heartbeat`` every :data:`HEARTBEAT_INTERVAL` seconds for as long as the
session lasts, and while a job runs each side takes :data:`HEARTBEAT_TIMEOUT`
seconds without a single message from the other as the other being gone: the
runner ends the job naming the host and stops the ranks elsewhere, the beacon
kills the runner's ranks.  (Before a job runs, a large bundle may keep a
side silent for a while, so silence is not counted then.)  A runner never
sends a heartbeat between a ``bundle`` header and its body.

``status`` values are shell-style (a death by signal N is 128 + N); ``done``'s
status is 0 if every rank exited 0, else the first failing rank's.  ``exit``
says whether the rank had joined the job's communication (``initialized``) and
left it cleanly (``finalized``), from the rank's control channel
(:mod:`shoal.launch.control`); ``rank_event`` passes on an uncaught exception
(``error``), ``Abort`` (``abort``) or a usage mistake (``usage``).  A rank that
exits initialized but not finalized while others run, or fails, ends the job
(see :mod:`shoal.node.jobs` and :mod:`shoal.launch.remote`).  The runner
may send ``kill`` (or close the session, or vanish) at any time: the beacon
kills every rank of that runner's job.  Unknown message types are answered by
error ``unknown`` and otherwise ignored, so fields and types can be added.
"""

from __future__ import annotations

import base64
import json
import platform
from typing import Any

from shoal._version import __version__
from shoal.errors import ShoalError

PROTOCOL_VERSION = 1
MAX_CONTROL_MESSAGE = 1 << 20  # a JSON message larger than this is a protocol error
HEARTBEAT_INTERVAL = 1.0  # seconds between heartbeats, each way
# Silence that counts as a lost peer while a job runs: three missed heartbeats, so
# with the beacons' second to stop their ranks a job whose host vanished ends in 5 s.
HEARTBEAT_TIMEOUT = 3.0
HEARTBEAT: dict[str, str] = {"type": "heartbeat"}

Message = dict[str, Any]


class BeaconError(ShoalError):
    """The beacon refused a request (``code`` says why) or broke the protocol."""

    def __init__(self, message: str, *, code: str = "protocol") -> None:
        super().__init__(message)
        self.code = code


class BeaconLost(BeaconError):
    """The beacon fell silent for longer than :data:`HEARTBEAT_TIMEOUT` while a job ran."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="lost")


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> Message:
    """A JSON object with a ``type``; anything else is a :class:`BeaconError`."""
    if len(data) > MAX_CONTROL_MESSAGE:
        raise BeaconError(f"a control message of {len(data)} bytes is too large")
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise BeaconError("a control message is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BeaconError("a control message is not a JSON object with a type")
    return message


def error(code: str, message: str) -> Message:
    return {"type": "error", "code": code, "message": message}


def raise_if_error(message: Message) -> Message:
    if message["type"] == "error":
        raise BeaconError(str(message.get("message", "the beacon refused")),
                          code=str(message.get("code", "error")))
    return message


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def local_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "shoal": __version__}


def version_mismatch(runner: Message, beacon: dict[str, str], host: str) -> str | None:
    """Why a runner with these versions may not run here (None: it may).

    Ranks exchange pickles and cached bytecode, so Python must agree on
    major.minor and shoal exactly.
    """
    py_runner, py_beacon = str(runner.get("python", "?")), beacon["python"]
    sh_runner, sh_beacon = str(runner.get("shoal", "?")), beacon["shoal"]
    if py_runner.split(".")[:2] == py_beacon.split(".")[:2] and sh_runner == sh_beacon:
        return None
    return (f"version mismatch: the runner has Python {py_runner} and shoal {sh_runner}, "
            f"the beacon on {host} has Python {py_beacon} and shoal {sh_beacon}; "
            "install the same Python (major.minor) and shoal version on every machine")
