"""Rank 1 aborts the job the way MPI.COMM_WORLD.Abort(3) does; the others sleep."""

import os
import time

from shoal.launch import control

if os.environ.get("SHOAL_RANK") == "1":
    time.sleep(0.3)
    control.report("abort", code=3, message="rank 1 cannot go on")
    os._exit(3)
time.sleep(60)
