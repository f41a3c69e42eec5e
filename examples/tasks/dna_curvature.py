"""DNA curvature along a sequence, one position per task (10,000 tasks by default).

    python examples/tasks/dna_curvature.py
    python examples/tasks/dna_curvature.py --repeat 100 --chunksize 50

Concurrent's sample: the sequence "ATGCAAATTG" * 1000, a task per position.
The model is the classic wedge model: each dinucleotide step bends the helix
by a small wedge angle in a direction fixed in its own frame (Bolshoy et al.,
1991); the frames turn by the helical twist (34.3 degrees per step), and the
curvature at a position is the length of the sum of the wedges over a window
of three helical turns, in degrees per base pair.  Tasks this small cost
about as much to send as to run: the sample prints the speed-up with one
position per task, and with positions sent ``--chunksize`` at a time.
"""

from __future__ import annotations

import argparse
import functools
import math
import time

import shoal

TWIST = math.radians(34.3)
WINDOW = 31
# (wedge angle, direction) in degrees for each dinucleotide step.
_HALF = {"AA": (7.2, -154), "AC": (1.1, 143), "AG": (8.4, 2), "AT": (2.6, 0), "CA": (3.5, -64),
         "CC": (2.1, -57), "CG": (6.7, 0), "GA": (5.3, 120), "GC": (5.0, 180), "TA": (0.9, 0)}
_PAIR = str.maketrans("ACGT", "TGCA")
WEDGES = dict(_HALF)
for step, (angle, direction) in _HALF.items():
    WEDGES.setdefault(step.translate(_PAIR)[::-1], (angle, -direction))


def curvature(sequence: str, position: int) -> float:
    """Degrees of bend per base pair around ``position``."""
    start = max(0, min(position - WINDOW // 2, len(sequence) - WINDOW - 1))
    x = y = 0.0
    for k in range(WINDOW):
        angle, direction = WEDGES[sequence[start + k:start + k + 2]]
        phase = k * TWIST + math.radians(direction)
        x += angle * math.cos(phase)
        y += angle * math.sin(phase)
    return math.hypot(x, y) / WINDOW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1000, help="copies of ATGCAAATTG")
    parser.add_argument("--chunksize", type=int, default=100)
    parser.add_argument("--address", help="a task service (default: a local cluster)")
    args = parser.parse_args()
    sequence = "ATGCAAATTG" * args.repeat
    positions = range(len(sequence) - 1)

    start = time.perf_counter()
    expected = [curvature(sequence, p) for p in positions]
    sequential = time.perf_counter() - start

    with shoal.Executor(args.address) as ex:  # a remote service: password in $SHOAL_PASSWORD
        ex.submit(curvature, sequence, 0).result()
        timings = {}
        for chunksize in (1, args.chunksize):
            start = time.perf_counter()
            # The sequence goes once, with the function, not with each of the 10,000 tasks.
            got = list(ex.map(functools.partial(curvature, sequence), positions,
                              chunksize=chunksize))
            timings[chunksize] = time.perf_counter() - start
            assert got == expected, "distributed curvature differs from the sequential one"
    peak = max(range(len(expected)), key=expected.__getitem__)
    print(f"{len(sequence)} bp, {len(positions)} positions; largest bend "
          f"{expected[peak]:.2f} deg/bp at {peak}; sequential {sequential:.2f} s")
    for chunksize, seconds in timings.items():
        print(f"  {len(positions)} tasks, chunksize {chunksize:>4}: {seconds:.2f} s, "
              f"speed-up {sequential / seconds:.2f}x")


if __name__ == "__main__":
    main()
