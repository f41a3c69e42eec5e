"""About 4 ms per item, sleeping (so that it costs a busy test machine little), so that a
stream of a few hundred lasts long enough to kill and add volunteers while it runs.  It
reports those 4 ms as its CPU time, and 2 units per item, to exercise shoal.report."""
import time

import shoal


def process(x):
    started = time.monotonic()
    time.sleep(0.004)
    shoal.report(cpu_time=time.monotonic() - started, items=1, units=2.0)
    return x * 3
