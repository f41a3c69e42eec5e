"""``mpi4py.util`` on shoal: :mod:`.pkl5` and :mod:`.dtlib`."""
