"""Reverse an MD5 hash by searching a numeric range, as a task system that stops early.

    python examples/tasks/md5_reverse.py                       # md5("1763965") in 1..2,000,000
    python examples/tasks/md5_reverse.py --secret 4242 --limit 100000 --tasks 16

Concurrent's sample: 128 tasks over 1..2,000,000.  The task system runs on the
master: as soon as one task finds the number, ``is_complete`` turns true, the
caller gets the answer, and the tasks still queued or running are cancelled.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import shoal


def search(lo: int, hi: int, digest: str) -> int | None:
    for n in range(lo, hi):
        if hashlib.md5(str(n).encode()).hexdigest() == digest:
            return n
    return None


class ReverseMd5(shoal.TaskSystem):
    def __init__(self, digest: str, limit: int, tasks: int) -> None:
        self.digest = digest
        self.limit = limit
        self.tasks = tasks
        self.found: int | None = None
        self.searched = 0

    def generate_tasks(self):
        step = -(-self.limit // self.tasks)
        return [shoal.Task(search, lo, min(lo + step, self.limit + 1), self.digest)
                for lo in range(1, self.limit + 1, step)]

    def task_finished(self, task, result, error):
        if error is not None:
            raise error
        self.searched += 1
        if result is not None:
            self.found = result

    def is_complete(self):
        return self.found is not None or self.searched == self.tasks

    def gather_result(self):
        return self.found, self.searched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--secret", type=int, default=1763965)
    parser.add_argument("--limit", type=int, default=2_000_000)
    parser.add_argument("--tasks", type=int, default=128)
    parser.add_argument("--address", help="a task service (default: a local cluster)")
    args = parser.parse_args()
    digest = hashlib.md5(str(args.secret).encode()).hexdigest()

    start = time.perf_counter()
    assert search(1, args.limit + 1, digest) == args.secret
    sequential = time.perf_counter() - start

    with shoal.Executor(args.address) as ex:  # a remote service: password in $SHOAL_PASSWORD
        ex.submit(search, 0, 0, digest).result()
        start = time.perf_counter()
        found, searched = ex.run_system(ReverseMd5(digest, args.limit, args.tasks))
        distributed = time.perf_counter() - start
    print(f"md5 {digest} is {found}: {searched} of {args.tasks} tasks searched before the "
          f"early stop; sequential {sequential:.2f} s, distributed {distributed:.2f} s, "
          f"speed-up {sequential / distributed:.2f}x")
    assert found == args.secret


if __name__ == "__main__":
    main()
