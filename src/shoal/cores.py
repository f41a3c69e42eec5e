"""How many cores this process may use: the one count behind the worker pools (the
local task cluster's and the stream's one worker per core) and a spinning rank's question
whether its host has a core for each of its ranks."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask; every CPU where there is
    none), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
