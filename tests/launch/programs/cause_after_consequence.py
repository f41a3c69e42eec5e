"""cause_after_consequence.py WHEN: rank 0 reports a lost peer first; rank 1's cause may follow.

Rank 0 raises ``PeerLostError`` at once, as a rank does whose link to a failing peer
ended.  WHEN is ``later`` (rank 1 raises its own error 0.3 s after: the report that
arrives second is the job's cause) or ``never`` (rank 1 waits in a receive that no one
answers: no cause comes, so the lost-peer report is the job's failure).
"""

import sys
import time

from shoal import MPI
from shoal.errors import PeerLostError

comm = MPI.COMM_WORLD
comm.barrier()
if comm.rank == 0:
    raise PeerLostError("the connection to rank 1 ended (the rank died or the link was cut)")
if sys.argv[1] == "later":
    time.sleep(0.3)
    raise ZeroDivisionError("rank 1's own failure")
comm.recv(source=0)
