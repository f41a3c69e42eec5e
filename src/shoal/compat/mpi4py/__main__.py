"""``python -m mpi4py ...``: see :mod:`shoal.compat.mpi4py.run`."""

from shoal.compat.mpi4py.run import main

if __name__ == "__main__":
    main()
