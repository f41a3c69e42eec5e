"""Transports: how the bytes of messages travel between ranks.

``ENDPOINTS`` maps a transport name to the endpoint class that implements it;
third-party packages add theirs under the ``shoal.transports`` entry-point
group.
"""

from __future__ import annotations

from shoal.transport.base import Endpoint
from shoal.transport.inproc import InprocEndpoint
from shoal.transport.shm import ShmEndpoint

ENDPOINTS: dict[str, type[Endpoint]] = {"shm": ShmEndpoint, "inproc": InprocEndpoint}
# Built in but imported on first use: they need the security layer (cryptography).
_LAZY = {"tcp": ("shoal.transport.tcp", "TcpEndpoint"),
         "hybrid": ("shoal.transport.hybrid", "HybridEndpoint")}


def endpoint_class(name: str) -> type[Endpoint]:
    """The endpoint class registered under ``name`` (built in or a plugin)."""
    if name not in ENDPOINTS and name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        ENDPOINTS[name] = getattr(importlib.import_module(module), attribute)
    if name not in ENDPOINTS:
        # Imported here: importlib.metadata costs ~10 ms that every rank would pay.
        from importlib.metadata import entry_points

        for entry in entry_points(group="shoal.transports"):
            if entry.name == name:
                ENDPOINTS[name] = entry.load()
                break
        else:
            known = ", ".join(sorted(ENDPOINTS))
            raise LookupError(f"no transport named {name!r}; known: {known}")
    return ENDPOINTS[name]


__all__ = ["ENDPOINTS", "Endpoint", "InprocEndpoint", "ShmEndpoint", "endpoint_class"]
