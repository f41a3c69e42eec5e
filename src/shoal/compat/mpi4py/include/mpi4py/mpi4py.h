/* shoal's mpi4py (what `import mpi4py` gives under `shoal run`) has no C API:
   it is pure Python over shoal's own runtime, with no MPI library to link to.
   Build extensions against the real mpi4py and run them under a real mpiexec
   (`shoal run --mpi`, or `shoal run --real-mpi4py` for one-process worlds). */
#error "shoal's mpi4py has no C API: build against the real mpi4py (pip install mpi4py)"
