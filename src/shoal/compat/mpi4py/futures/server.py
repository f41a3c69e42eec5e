"""A spawned worker (``MPIPoolExecutor``'s default mode): serve the manager that started
this job, over the socket it named, with this job's ``COMM_WORLD`` as the workers'."""

from __future__ import annotations

from shoal.compat.mpi4py.futures._links import SocketServer
from shoal.compat.mpi4py.futures._worker import del_comm_server, serve, set_comm_server
from shoal.spmd import mpi as MPI


def main() -> None:
    server = SocketServer.connect()
    set_comm_server(MPI.COMM_WORLD)
    try:
        serve(server)
    finally:
        del_comm_server()
        server.close()


if __name__ == "__main__":
    main()
