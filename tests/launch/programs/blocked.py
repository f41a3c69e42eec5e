"""Rank 0 pretends to be blocked in a shoal call; the other ranks are busy in Python."""

import os
import time

from shoal.transport.shm import ShmEndpoint


def wait_in_python() -> None:
    while True:
        time.sleep(0.1)


rank = int(os.environ["SHOAL_RANK"])
size = int(os.environ["SHOAL_SIZE"])
endpoint = ShmEndpoint.from_environment(rank, size)
print(f"ready {rank}")
if rank == 0:
    endpoint.set_status("recv(source=1, tag=7)")
wait_in_python()
