"""exit_with.py RANK CODE [DELAY]: that rank exits with CODE after DELAY s; the others exit 0."""

import os
import sys
import time

rank = int(os.environ.get("SHOAL_RANK", "0"))
if rank == int(sys.argv[1]):
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
    sys.exit(int(sys.argv[2]))
