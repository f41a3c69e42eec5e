"""A few milliseconds per item, so that a stream of a few hundred lasts long enough to
kill and add volunteers while it runs; reports its own CPU time and units."""
import time

import shoal


def process(x):
    started = time.process_time()
    deadline = time.monotonic() + 0.004
    while time.monotonic() < deadline:
        pass
    shoal.report(cpu_time=time.process_time() - started, items=1, units=2.0)
    return x * 3
