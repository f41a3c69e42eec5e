"""mpi4py-compatible ``MPI`` namespace: ``from shoal import MPI``.

Under a real ``mpiexec`` (an MPI process manager set the environment and
mpi4py is importable) this module *is* ``mpi4py.MPI``: the program runs on
the real MPI.  Everywhere else it is shoal's own implementation in
:mod:`shoal.spmd.mpi`, which needs no MPI installed.
"""

from __future__ import annotations

import sys

from shoal.spmd.backend import use_real_mpi

if use_real_mpi():
    from mpi4py import MPI as _real

    sys.modules[__name__] = _real
else:
    from shoal.spmd.mpi import *
    from shoal.spmd.mpi import __all__
