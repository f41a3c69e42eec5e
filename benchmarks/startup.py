"""Start-up: wall time of a 4-rank hello, launcher included.

    python benchmarks/startup.py [--quick]         # runs both runtimes, prints the table

Times, from the outside, the whole command

    python -m shoal run -n 4 examples/hello.py
    mpiexec -launcher fork -n 4 python examples/hello.py

from start to exit: launcher start, four interpreters, runtime set-up, the
greetings, shutdown.  One untimed run of each warms the page cache; then the
two alternate (so that drift in the machine's load hits both alike) and the
figure is the median.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import Report, Row

RANKS = 4
HELLO = harness.EXAMPLES / "hello.py"


def measure(quick: bool) -> Report:
    report = Report(f"Start-up of a {RANKS}-rank hello (median wall time, s)")
    repeats = 3 if quick else 7
    walls: dict[str, list[float]] = {backend: [] for backend in harness.BACKENDS}
    failed: set[str] = set()
    for attempt in range(repeats + 1):
        for backend in harness.BACKENDS:
            if backend in failed:
                continue
            run = harness.launch(backend, RANKS, HELLO, timeout=120)
            expected = f"rank {RANKS - 1} of {RANKS}"
            if not run.ok or expected not in run.stdout:
                report.errors.append(run.failure("hello failed"))
                failed.add(backend)
            elif attempt > 0:  # the first round only warms up
                walls[backend].append(run.wall)
    report.raw = {"walls": walls}
    report.rows.append(Row("start-up", f"hello, {RANKS} ranks", "wall s",
                           harness.median(walls[harness.SHOAL]),
                           harness.median(walls[harness.MPICH]),
                           better="lower", target="<= 1.0"))
    return report


if __name__ == "__main__":
    raise SystemExit(harness.main_for(measure))
