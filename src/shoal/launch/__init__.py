"""Starting ranks: the local launcher, the rank bootstrap and the control channel.

* :mod:`shoal.launch.local` -- :func:`run_job` runs N ranks here and watches them;
* :mod:`shoal.launch.bootstrap` -- what each rank runs first (``python -m ...``);
* :mod:`shoal.launch.control` -- rank -> launcher events (:func:`control.report`);
* :mod:`shoal.launch.mpi` -- ``shoal run --mpi``: hand the job to a real mpiexec.

Every rank imports this package through the bootstrap, so it imports nothing
eagerly: the launcher's names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.launch.local import JobResult, LaunchOptions, run_job

__all__ = ["JobResult", "LaunchOptions", "run_job"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("shoal.launch.local"), name)
    raise AttributeError(f"module 'shoal.launch' has no attribute {name!r}")
