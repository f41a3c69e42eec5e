"""klyng's published tasks, pi (dx = 2e-9) and primes below 10^7, at 1, 2 and 4 ranks.

    python benchmarks/klyng.py [--quick]           # runs both runtimes, prints the table

The programs are the examples themselves (examples/pi.py and examples/primes.py,
one numpy kernel whichever runtime runs them).  Two figures, as klyng reported:

* RTET, the runner's total execution time: wall time the driver measures
  around the whole launcher command (start-up, work, shutdown);
* MPCT, the maximum process CPU time: each rank reads ``time.process_time()``
  (its own CPU time since the interpreter started, runtime start-up included)
  after its work, rank 0 takes the largest.

Runs of the two runtimes alternate; the figures are medians.  ``--quick``
shrinks the sizes (pi with 5e7 intervals, primes below 10^6) and the repeats.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import Report, Row

RANKS = (1, 2, 4)
KNOWN_PRIME_COUNTS = {10**5: 9592, 10**6: 78498, 10**7: 664579}


def tasks(quick: bool) -> dict[str, tuple[Path, list[str], str]]:
    pi_intervals = 50_000_000 if quick else 500_000_000
    primes_limit = 10**6 if quick else 10**7
    return {
        "pi": (harness.EXAMPLES / "pi.py", ["--intervals", str(pi_intervals), "--json"],
               f"dx = {1 / pi_intervals:.0e}"),
        "primes": (harness.EXAMPLES / "primes.py", ["--limit", str(primes_limit), "--json"],
                   f"below {primes_limit:.0e}"),
    }


def correct(task: str, result: dict) -> bool:
    if task == "pi":
        return float(result["error"]) < 1e-9
    expected = KNOWN_PRIME_COUNTS.get(int(result["limit"]))
    return expected is None or int(result["value"]) == expected


def measure(quick: bool) -> Report:
    report = Report("klyng's tasks: RTET (wall, s) and MPCT (largest rank CPU, s), medians")
    repeats = 2 if quick else 3
    report.raw = {}
    for task, (script, args, size) in tasks(quick).items():
        for ranks in RANKS:
            rtet: dict[str, list[float]] = {b: [] for b in harness.BACKENDS}
            mpct: dict[str, list[float]] = {b: [] for b in harness.BACKENDS}
            failed: set[str] = set()
            for _ in range(repeats):
                for backend in harness.BACKENDS:
                    if backend in failed:
                        continue
                    run = harness.launch(backend, ranks, script, args, timeout=600)
                    try:
                        result = run.result() if run.ok else None
                    except RuntimeError:
                        result = None
                    if result is None or not correct(task, result):
                        report.errors.append(run.failure(f"{task} on {ranks} ranks failed"))
                        failed.add(backend)
                        continue
                    rtet[backend].append(run.wall)
                    mpct[backend].append(float(result["mpct"]))
            report.raw[f"{task} {ranks}"] = {"rtet": rtet, "mpct": mpct}
            case = f"{task} ({size}), {ranks} rank{'s' if ranks > 1 else ''}"
            report.rows.append(Row("klyng", case, "RTET s",
                                   harness.median(rtet[harness.SHOAL]),
                                   harness.median(rtet[harness.MPICH]),
                                   better="lower", target="<= 1.05"))
            report.rows.append(Row("klyng", case, "MPCT s",
                                   harness.median(mpct[harness.SHOAL]),
                                   harness.median(mpct[harness.MPICH]), better="lower"))
    return report


if __name__ == "__main__":
    raise SystemExit(harness.main_for(measure))
