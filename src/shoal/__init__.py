"""shoal: run your Python code across every machine you have.

The facade.  Message passing, klyng style::

    import shoal

    def main():
        if shoal.rank() == 0:
            shoal.send("hello", to=1, tag="greeting")
        elif shoal.rank() == 1:
            print(shoal.recv(source=0, tag="greeting"))

    shoal.init(main)

klyng's own forms work too: ``shoal.send({"to": 1, "data": x, "subject": s})``,
``shoal.recv({"from": -1, "subject": s})`` (see docs/coming-from-klyng.md),
or mpi4py style: ``from shoal import MPI``.  Start ranks with
``shoal run -n 4 program.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoal._version import __version__
from shoal.errors import (
    CommunicationError,
    ConfigurationError,
    LaunchError,
    PeerLostError,
    SerializationError,
    ShoalError,
    TransportError,
)

if TYPE_CHECKING:
    from shoal import MPI, stream
    from shoal.spmd.klyng import ANY_SOURCE, ANY_TAG, end, init, rank, recv, send, size
    from shoal.stream.reporting import report
    from shoal.tasks import Executor, Task, TaskSystem, remote


_KLYNG = frozenset({"ANY_SOURCE", "ANY_TAG", "end", "init", "rank", "recv", "send", "size"})


def __getattr__(name: str) -> Any:
    # The klyng-style API on first use: `shoal run`'s launcher imports this package and
    # never sends (the runtime's imports cost its start-up some 12 ms; hashlib's OpenSSL).
    if name in _KLYNG:
        from shoal.spmd import klyng

        return getattr(klyng, name)
    # Importing MPI decides between shoal's runtime and a real MPI, so it is
    # done only when a program asks for it.
    if name == "MPI":
        import importlib

        return importlib.import_module("shoal.MPI")
    # Streams are imported on first use too: `shoal.stream.processor` in a module, and
    # `shoal.report(...)` inside a processor, cost nothing to programs that use neither.
    if name == "stream":
        import importlib

        return importlib.import_module("shoal.stream")
    if name == "report":
        from shoal.stream.reporting import report

        return report
    # The task face pulls in the secure channel (cryptography): imported on first use.
    if name in ("Executor", "Task", "TaskSystem", "remote"):
        import shoal.tasks

        return getattr(shoal.tasks, name)
    raise AttributeError(f"module 'shoal' has no attribute {name!r}")


__all__ = [
    "ANY_SOURCE",
    "ANY_TAG",
    "MPI",
    "CommunicationError",
    "ConfigurationError",
    "Executor",
    "LaunchError",
    "PeerLostError",
    "SerializationError",
    "ShoalError",
    "Task",
    "TaskSystem",
    "TransportError",
    "__version__",
    "end",
    "init",
    "rank",
    "recv",
    "remote",
    "report",
    "send",
    "size",
    "stream",
]
