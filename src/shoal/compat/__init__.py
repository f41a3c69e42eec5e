"""Other libraries' APIs, answered by shoal (imports point down: compat -> spmd).

:mod:`shoal.compat.mpi4py` is what ``import mpi4py`` gives a rank under ``shoal run``;
:mod:`shoal.compat.hook` is the import hook the rank bootstrap installs for that.
"""
