"""Pando's examples/collatz.js in Python: how many steps the Collatz sequence of each item
takes to reach 1 (3n + 1 when odd, n / 2 when even).  CPU-bound and of uneven length: the
kind of stream that Pando's volunteers shared.

    seq 1 100000 | shoal stream examples/stream/collatz.py --stdin --batch 64

Written as an ordinary processor (one value in, the result out); shoal.report tells the
monitor how many steps each item took, shown as "steps" per second.
"""

import shoal


def steps(n):
    count = 0
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        count += 1
    return count


@shoal.stream.processor
def collatz(x):
    if not isinstance(x, int) or x < 1:
        raise ValueError(f"collatz needs a whole number >= 1, not {x!r}")
    count = steps(x)
    shoal.report(items=count, units="steps")
    return count
