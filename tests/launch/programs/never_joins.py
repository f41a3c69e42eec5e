"""never_joins.py CODE: rank 1 never joins the job's communication and exits with CODE at
once; rank 0 works on until rank 1 is gone (and a little longer), then communicates (with
itself) and prints that it finished."""

import os
import sys
import time

import psutil

rank = int(os.environ["SHOAL_RANK"])
if rank == 1:
    os._exit(int(sys.argv[1]))


def rank_one() -> psutil.Process | None:
    """The other rank of this two-rank job: this process's sibling (if still there)."""
    siblings = [p for p in psutil.Process(os.getppid()).children() if p.pid != os.getpid()]
    return siblings[0] if len(siblings) == 1 else None


other = rank_one()
if other is not None:
    try:
        other.wait(timeout=20)  # returns once the launcher has taken note of its end
    except psutil.Error:
        pass
# A launcher that stops the job when rank 1 exits would have stopped this rank by now.
time.sleep(0.5)
import shoal

shoal.send("to myself", to=0)
print(f"rank 0 finished: {shoal.recv(source=0)}", flush=True)
