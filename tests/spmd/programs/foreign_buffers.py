"""Buffers that are not Python buffers but say where their memory is: objects with
__dlpack__/__dlpack_device__ (DLPack, here over numpy arrays) and objects with a
__cuda_array_interface__ whose pointer is host memory (what mpi4py's own test suite uses
in place of a GPU). They are sent and received in place, with their element type, in
point-to-point calls and collectives, and read-only ones refuse to be received into.
Any number of ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size


class DLPackArray:
    """Only DLPack: no buffer protocol of its own."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, *args, **kwargs):
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


class InterfaceArray:
    """Only the CUDA array interface, pointing at host memory."""

    def __init__(self, array, readonly=False):
        self.array = array
        self.__cuda_array_interface__ = {
            "version": 3, "shape": array.shape, "typestr": array.dtype.str,
            "data": (array.__array_interface__["data"][0], readonly), "strides": None}


for wrap in (DLPackArray, InterfaceArray):
    send = np.arange(5, dtype="d") + rank
    recv = np.zeros(5)
    world.Sendrecv(wrap(send), dest=right, recvbuf=wrap(recv), source=left)
    assert (recv == np.arange(5) + left).all(), (wrap, recv)

    ints = np.full(3, rank, dtype="i")
    everyone = np.zeros(3 * size, dtype="i")
    world.Allgather(wrap(ints), wrap(everyone))  # the datatype comes from the element type
    assert (everyone == np.repeat(np.arange(size), 3)).all(), (wrap, everyone)

    total = np.zeros(2, dtype="l")
    world.Allreduce(wrap(np.array([1, rank], dtype="l")), wrap(total), op=MPI.SUM)
    assert list(total) == [size, size * (size - 1) // 2], (wrap, total)

    assert MPI.Get_address(wrap(send)) == send.__array_interface__["data"][0]

# A read-only buffer cannot be received into.
frozen = np.zeros(2)
try:
    world.Sendrecv(np.ones(2), dest=rank, recvbuf=InterfaceArray(frozen, readonly=True),
                   source=rank)
except BufferError:
    refused = True
else:
    refused = False
assert refused, "a read-only buffer was received into"

assert world.allreduce(1) == size
if rank == 0:
    print("foreign_buffers ok", flush=True)
