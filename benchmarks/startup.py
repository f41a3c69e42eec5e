"""Start-up: wall time of a 4-rank hello, launcher included.

    python benchmarks/startup.py [--quick]         # runs both runtimes, prints the table

Times, from the outside, the whole command

    python -m shoal run -n 4 examples/hello.py
    mpiexec -launcher fork -n 4 python examples/hello.py

from start to exit: launcher start, four ranks, runtime set-up, the greetings,
shutdown.  shoal runs twice: as it starts ranks by default (through its fork server,
one interpreter that imports the runtime once and forks the ranks) and with
``SHOAL_FORK_SERVER=0`` (one fresh ``python`` per rank, as before the fork server),
so the table shows what the server saves.  One untimed run of each warms the page
cache; then the three alternate (so that drift in the machine's load hits all alike)
and each figure is the median.  The CPU row adds up every process of the job (user +
system): on a machine busy with other work, the wall time depends on how many
processes compete for the cores, the CPU time much less.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import Report, Row

RANKS = 4
HELLO = harness.EXAMPLES / "hello.py"
# (label, backend, SHOAL_FORK_SERVER or None)
VARIANTS = (("shoal", harness.SHOAL, "1"), ("spawned", harness.SHOAL, "0"),
            ("mpich", harness.MPICH, None))


def _launch(backend: str, fork_server: str | None) -> harness.Launch:
    saved = os.environ.get("SHOAL_FORK_SERVER")
    if fork_server is not None:
        os.environ["SHOAL_FORK_SERVER"] = fork_server
    try:
        return harness.launch(backend, RANKS, HELLO, timeout=120)
    finally:
        if saved is None:
            os.environ.pop("SHOAL_FORK_SERVER", None)
        else:
            os.environ["SHOAL_FORK_SERVER"] = saved


def measure(quick: bool) -> Report:
    report = Report(f"Start-up of a {RANKS}-rank hello (median wall time, s)")
    repeats = 5 if quick else 11
    walls: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    failed: set[str] = set()
    load_before = os.getloadavg()[0]
    for attempt in range(repeats + 1):
        for label, backend, fork_server in VARIANTS:
            if label in failed:
                continue
            run = _launch(backend, fork_server)
            expected = f"rank {RANKS - 1} of {RANKS}"
            if not run.ok or expected not in run.stdout:
                report.errors.append(run.failure(f"hello failed ({label})"))
                failed.add(label)
            elif attempt > 0:  # the first round only warms up
                walls[label].append(run.wall)
                cpus[label].append(run.children_cpu)
    load = f"load {load_before:.1f}-{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    report.raw = {"walls": walls, "cpus": cpus, "load": load}
    report.rows.append(Row("start-up", f"hello, {RANKS} ranks", "wall s",
                           harness.median(walls["shoal"]), harness.median(walls["mpich"]),
                           better="lower", target="<= 1.0", note=load))
    report.rows.append(Row("start-up", f"hello, {RANKS} ranks", "CPU s, all processes",
                           harness.median(cpus["shoal"]), harness.median(cpus["mpich"]),
                           better="lower"))
    report.rows.append(Row("start-up", f"hello, {RANKS} ranks, SHOAL_FORK_SERVER=0",
                           "wall s", harness.median(walls["spawned"]),
                           harness.median(walls["mpich"]), better="lower"))
    report.rows.append(Row("start-up", f"hello, {RANKS} ranks, SHOAL_FORK_SERVER=0",
                           "CPU s, all processes", harness.median(cpus["spawned"]),
                           harness.median(cpus["mpich"]), better="lower"))
    return report


if __name__ == "__main__":
    raise SystemExit(harness.main_for(measure))
