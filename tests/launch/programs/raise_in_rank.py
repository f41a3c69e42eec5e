"""raise_in_rank.py RANK: that rank raises ValueError after a moment; the others sleep."""

import os
import sys
import time


def fail(rank: int) -> None:
    raise ValueError(f"rank {rank} gives up")


rank = int(os.environ.get("SHOAL_RANK", "0"))
print(f"started {rank}")
if rank == int(sys.argv[1]):
    time.sleep(0.5)
    fail(rank)
time.sleep(60)
