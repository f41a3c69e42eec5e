"""mpi4py-compatible ``MPI`` namespace: ``from shoal import MPI``.

Under a real ``mpiexec`` (an MPI process manager set the environment and
mpi4py is importable) this module *is* ``mpi4py.MPI``: the program runs on
the real MPI.  Everywhere else it is shoal's own implementation in
:mod:`shoal.spmd.mpi`, which needs no MPI installed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from shoal.spmd.backend import use_real_mpi

if TYPE_CHECKING:
    from shoal.spmd.mpi import *

if use_real_mpi():
    from mpi4py import MPI as _real

    sys.modules[__name__] = _real
else:
    from shoal.spmd import mpi as _mpi
    from shoal.spmd.mpi import __all__

    # Every name but those made on first use (a star import would make them now).
    globals().update((name, getattr(_mpi, name)) for name in __all__
                     if name not in _mpi._LAZY)

    def __getattr__(name: str) -> Any:
        return getattr(_mpi, name)  # buffer, memory: made on first use

    def __dir__() -> list[str]:
        return sorted({*globals(), *_mpi._LAZY})
