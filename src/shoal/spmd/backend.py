"""Which message-passing backend this process runs on.

shoal's own runtime is used when ``shoal run`` started the process (it sets
``SHOAL_RANK``) or when the process was started alone.  The real MPI (through
mpi4py) is used when an MPI process manager started the process and mpi4py
can be imported.  ``SHOAL_BACKEND=shoal|mpi`` overrides the guess.
"""

from __future__ import annotations

import functools
import importlib.util
import os

from shoal.errors import ConfigurationError

# Variables that MPICH's Hydra, Open MPI, Intel MPI and PMIx-based launchers
# (srun included) set in every process they start.
_MPI_LAUNCHER_VARIABLES = (
    "PMI_RANK",
    "PMI_SIZE",
    "PMIX_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "MPI_LOCALNRANKS",
    "HYDI_CONTROL_FD",
    "PMI_FD",
)


@functools.cache
def use_real_mpi() -> bool:
    """True when this process should run on mpi4py rather than shoal's runtime."""
    choice = os.environ.get("SHOAL_BACKEND", "").strip().lower()
    if choice == "shoal":
        return False
    if choice == "mpi":
        if importlib.util.find_spec("mpi4py") is None:
            raise ConfigurationError(
                "SHOAL_BACKEND=mpi but mpi4py is not installed: pip install 'shoal[mpi]'"
            )
        return True
    if choice:
        raise ConfigurationError(f"SHOAL_BACKEND must be 'shoal' or 'mpi', not {choice!r}")
    if "SHOAL_RANK" in os.environ:
        return False
    started_by_mpi = any(name in os.environ for name in _MPI_LAUNCHER_VARIABLES)
    return started_by_mpi and importlib.util.find_spec("mpi4py") is not None
