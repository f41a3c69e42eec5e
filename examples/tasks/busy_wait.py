"""Busy-wait work spread over the workers, its speed-up compared with Amdahl's law.

    python examples/tasks/busy_wait.py                  # 4 s of work, 2 % of it serial
    python examples/tasks/busy_wait.py --seconds 8 --serial 0.02 --tasks 64

Concurrent's sample (it measured "about 740 %" on 8 cores, where Amdahl's
law with P = 0.98 allows 7.02).  A fraction ``--serial`` of the work runs on
the caller; the rest is cut into ``--tasks`` busy-waiting tasks.  Amdahl:
speed-up = 1 / ((1 - P) + P / N) for a parallel fraction P on N workers.
"""

from __future__ import annotations

import argparse
import time

import shoal


def spin(seconds: float) -> float:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="total work, in CPU seconds")
    parser.add_argument("--serial", type=float, default=0.02, help="its serial fraction")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--address", help="a task service (default: a local cluster)")
    args = parser.parse_args()
    serial = args.seconds * args.serial
    each = (args.seconds - serial) / args.tasks

    start = time.perf_counter()
    spin(serial)
    for _ in range(args.tasks):
        spin(each)
    sequential = time.perf_counter() - start

    with shoal.Executor(args.address) as ex:  # a remote service: password in $SHOAL_PASSWORD
        workers = sum(a["slots"] for a in ex.status()["agents"])
        ex.submit(spin, 0.0).result()
        start = time.perf_counter()
        spin(serial)
        done = sum(ex.map(spin, [each] * args.tasks))
        distributed = time.perf_counter() - start
    assert abs(done - (args.seconds - serial)) < 1e-6
    p = 1 - args.serial
    amdahl = 1 / ((1 - p) + p / workers)
    speedup = sequential / distributed
    print(f"{args.seconds:g} s of work, {args.serial:.0%} serial, {args.tasks} tasks on "
          f"{workers} workers: sequential {sequential:.2f} s, distributed {distributed:.2f} s; "
          f"speed-up {speedup:.2f}x ({speedup:.0%}), Amdahl's law allows {amdahl:.2f}x "
          f"({speedup / amdahl:.0%} of it)")


if __name__ == "__main__":
    main()
