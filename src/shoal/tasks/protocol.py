"""What the executor, the service and the agents say to each other.

Every message on a connection is a *batch*: one pickled list of tuples
``(kind, *fields)``, sent as one message of the secure channel
(:mod:`shoal.security`), so thousands of tasks or results cost one frame and
one AEAD operation.  Pickles are only ever loaded from authenticated peers.
The service never unpickles a task's function, arguments or result: those
are opaque ``bytes`` it forwards (only a task system is loaded there).

Executor -> service::

    ("hello", {role: "client", session, retries, python, shoal, protocol})
    ("fn", fid, blob, codec)                 a function, by value, once per content
    ("submit", [(n, fid, payload), ...])     tasks; n counts up within the session
    ("cancel", [n, ...])
    ("fetch", session, [n, ...])             results of an earlier session's tasks
    ("system", n, blob, sources)             run a task system (cloudpickled) on the master;
                                             sources: where its code is from (tasks.sources)
    ("call", n, system, method, blob)        call a remote method of a running system (by
                                             name, or by its n); the answer is n's result
    ("status",)                              -> ("status", {...})
    ("bye",)                                 done: forget this session's kept results

Service -> executor::

    ("welcome", {...}) or ("refused", why)
    ("results", [(key, status, blob, worker), ...])   key: n, or (session, n) if fetched

Agent -> service::

    ("hello", {role: "agent", name, slots, pids, python, shoal, protocol})
    ("ready", credit)                        pull: the agent wants this many more tasks
    ("done", [(tid, attempt, status, blob, worker, seconds), ...])
    ("lost", [(tid, attempt, why), ...])     a worker process died running these
    ("beat", pids)                           heartbeat, with the worker processes' pids

Service -> agent::

    ("welcome", {...}) or ("refused", why)
    ("fn", fkey, blob, codec)
    ("run", [(tid, attempt, fkey, payload), ...])
    ("kill", [(tid, attempt), ...])          cancelled: drop it, or kill the process running it
    ("forget", label)                        the functions of that session are no longer needed
"""

from __future__ import annotations

import os
import pickle
import platform
import sys
from typing import Any

from shoal import ports
from shoal._version import __version__
from shoal.cores import usable_cores
from shoal.errors import ConfigurationError
from shoal.tasks.errors import TaskError

PROTOCOL = 1
DEFAULT_PORT = ports.TASKS
SCHEME = "shoal://"
PASSWORD_ENV = "SHOAL_PASSWORD"
OLD_PASSWORD_ENV = "SHOAL_TASKS_PASSWORD"   # read when PASSWORD_ENV is unset, with a warning

# A task's result status.
OK = 0          # blob: the codec's encoding of the return value
RAISED = 1      # blob: an encoded (exception or None, type name, text, traceback, worker)
FAILED = 2      # blob: pickled (kind, message): shoal gave up on it (lost, poison)
CANCELLED = 3   # blob: empty

Message = tuple[Any, ...]


def pack(messages: list[Message]) -> bytes:
    return pickle.dumps(messages, protocol=5)


def unpack(data: bytes) -> list[Message]:
    messages = pickle.loads(data)
    if not isinstance(messages, list):
        raise TaskError("a peer sent something that is not a batch of messages")
    return messages


def versions() -> dict[str, Any]:
    """What both ends must agree on: cloudpickle by value needs the same Python minor."""
    return {"python": ".".join(platform.python_version_tuple()[:2]), "shoal": __version__,
            "protocol": PROTOCOL}


def version_mismatch(theirs: dict[str, Any]) -> str | None:
    """Why a peer with ``theirs`` versions cannot work with this process, or None."""
    ours = versions()
    for key in ("protocol", "python", "shoal"):
        if theirs.get(key) != ours[key]:
            return (f"version mismatch: the peer runs {key} {theirs.get(key)}, this side "
                    f"{ours[key]}; install the same shoal and Python on every machine")
    return None


def parse_address(address: str) -> tuple[str, int]:
    """``shoal://host:port`` (or ``host:port``, ``host``) -> (host, port)."""
    text = address.strip()
    if text.startswith(SCHEME):
        text = text[len(SCHEME):]
    elif "://" in text:
        raise ConfigurationError(f"{address!r}: a task service address is "
                                 f"shoal://HOST:PORT (default port {DEFAULT_PORT})")
    text = text.rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(DEFAULT_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"{address!r}: expected shoal://HOST:PORT")
    return host, int(port)


def env_password() -> tuple[str | None, str | None]:
    """The password from ``$SHOAL_PASSWORD`` (or the old ``$SHOAL_TASKS_PASSWORD``), and a
    one-line deprecation notice when it came from the old variable."""
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value, None
    old = os.environ.get(OLD_PASSWORD_ENV)
    if old:
        return old, (f"${OLD_PASSWORD_ENV} is deprecated and will be removed: set "
                     f"${PASSWORD_ENV} instead (one password variable for every command)")
    return None, None


def default_slots() -> int:
    """One worker process per core this process may use."""
    return usable_cores()


def python_executable() -> str:
    return sys.executable
