"""Shared plumbing of the benchmarks: start a program under both runtimes and compare.

Every benchmark is one MPI program (``from shoal import MPI``) that runs twice
in the same session:

    python -m shoal run -n N program.py ...          # shoal's runtime
    mpiexec -launcher fork -n N python program.py ... # mpi4py on MPICH

Rank 0 prints its results as one JSON line; the driver here reads that line,
times the launcher from the outside (wall clock around the whole command) and
builds rows of the form shoal / MPICH.

Environment knobs (documented in benchmarks/README.md):

    SHOAL_BENCH_MPIEXEC  the MPICH launcher and its flags (default "mpiexec -launcher fork")
    SHOAL_BENCH_SHOAL    the shoal launcher (default "<python> -m shoal run")
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = REPO / "examples"

SHOAL = "shoal"
MPICH = "mpich"
BACKENDS = (SHOAL, MPICH)
LABELS = {SHOAL: "shoal", MPICH: "mpi4py on MPICH"}

DEFAULT_MPIEXEC = "mpiexec -launcher fork"


def launcher(backend: str) -> list[str]:
    if backend == SHOAL:
        text = os.environ.get("SHOAL_BENCH_SHOAL")
        return shlex.split(text) if text else [sys.executable, "-m", "shoal", "run"]
    return shlex.split(os.environ.get("SHOAL_BENCH_MPIEXEC", DEFAULT_MPIEXEC))


def command(backend: str, ranks: int, script: Path | str, args: Sequence[str] = ()) -> list[str]:
    """The full command line that starts ``script`` on ``ranks`` ranks under ``backend``."""
    if backend == SHOAL:
        return [*launcher(SHOAL), "-n", str(ranks), str(script), *args]
    return [*launcher(MPICH), "-n", str(ranks), sys.executable, str(script), *args]


def environment(backend: str) -> dict[str, str]:
    """The children's environment: shoal importable from this checkout, backend named."""
    env = dict(os.environ)
    # Make the checkout's shoal importable even where it isn't pip-installed;
    # where it is (pip install -e), this is the same code.
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    # Say which runtime we mean instead of relying on detection (the driver
    # itself might have been started by some launcher).
    env["SHOAL_BACKEND"] = "shoal" if backend == SHOAL else "mpi"
    return env


@dataclass
class Launch:
    """One run of a launcher, timed from the outside."""

    backend: str
    argv: list[str]
    returncode: int
    wall: float  # seconds around the whole launcher command: the RTET
    children_cpu: float  # user+system CPU of every process the launcher waited for
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def result(self) -> dict:
        """The last JSON object rank 0 printed (one line starting with '{')."""
        for line in reversed(self.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
        raise RuntimeError(self.failure("printed no JSON result"))

    def failure(self, what: str) -> str:
        tail = "\n".join((self.stdout + "\n" + self.stderr).strip().splitlines()[-15:])
        return (f"{LABELS[self.backend]} {what} (exit {self.returncode}): "
                f"{shlex.join(self.argv)}\n{tail}")


def launch(backend: str, ranks: int, script: Path | str, args: Sequence[str] = (),
           timeout: float = 300.0) -> Launch:
    argv = command(backend, ranks, script, args)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, env=environment(backend), capture_output=True, text=True,
                              timeout=timeout, check=False)
        returncode, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = -9
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or ""))
        err += f"\n[timed out after {timeout:.0f} s]"
    except OSError as exc:  # launcher missing
        returncode, out, err = -1, "", str(exc)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Launch(backend, argv, returncode, wall, cpu, out, err)


@dataclass
class Row:
    """One compared figure: shoal's value, MPICH's value, and the ratio shoal / MPICH."""

    benchmark: str
    case: str
    metric: str  # e.g. "latency us", "MB/s", "s"
    shoal: float | None
    mpich: float | None
    better: str = "lower"  # "lower" or "higher": which way is good for this metric
    target: str = ""  # e.g. "<= 1.5" on the ratio shoal / MPICH; "" when none is set
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.shoal is None or self.mpich is None or self.mpich == 0:
            return None
        return self.shoal / self.mpich

    def verdict(self) -> str:
        """'met', 'missed' or '' (no target, or a side missing)."""
        ratio = self.ratio
        if ratio is None or not self.target:
            return ""
        sign, number = self.target.split()
        bound = float(number)
        met = ratio <= bound if sign == "<=" else ratio >= bound
        return "met" if met else "missed"

    def as_dict(self) -> dict:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["verdict"] = self.verdict()
        return data


@dataclass
class Report:
    """What one benchmark produced: rows, failures to show, and raw data for plots."""

    name: str
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "rows": [r.as_dict() for r in self.rows],
                "errors": self.errors, "raw": self.raw}


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def run_program(report: Report, ranks: int, script: Path, args: Sequence[str],
                timeout: float = 300.0, rounds: int = 1,
                backends: Sequence[str] = BACKENDS) -> dict[str, dict | None]:
    """Run ``script`` ``rounds`` times under each backend, alternating between them.

    Returns each backend's JSON result, every number in it the median over the
    rounds (None where every run failed).  Alternating spreads a change in the
    machine's load over both runtimes instead of landing on one.
    """
    collected: dict[str, list[dict]] = {backend: [] for backend in backends}
    failed: set[str] = set()
    for _ in range(rounds):
        for backend in backends:
            if backend in failed:
                continue
            run = launch(backend, ranks, script, args, timeout=timeout)
            if not run.ok:
                report.errors.append(run.failure(f"failed on {ranks} ranks"))
                failed.add(backend)
                continue
            try:
                collected[backend].append(run.result())
            except RuntimeError as exc:
                report.errors.append(str(exc))
                failed.add(backend)
    return {backend: merge_medians(results) if results else None
            for backend, results in collected.items()}


def merge_medians(results: Sequence[object]) -> Any:
    """One result shaped like the given ones, each number the median of theirs."""
    first = results[0]
    if isinstance(first, dict):
        return {key: merge_medians([r[key] for r in results
                                    if isinstance(r, dict) and key in r])
                for key in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return statistics.median(r for r in results if isinstance(r, (int, float)))
    return first


def pick(result: dict | None, *keys: str | int) -> float | None:
    """result[k1][k2]... or None when any step is missing."""
    value: object = result
    for key in keys:
        if value is None:
            return None
        try:
            value = value[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return float(value) if isinstance(value, (int, float)) else None


def size_label(nbytes: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale} {unit}"
    return f"{nbytes} B"


def format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"


def format_ratio(ratio: float | None) -> str:
    # Three decimals near 1, so that a ratio printed as 1.05 is never 'missed' against 1.05.
    if ratio is None:
        return "n/a"
    return f"{ratio:.3f}" if ratio < 10 else f"{ratio:.1f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| benchmark | case | metric | shoal | MPICH | shoal / MPICH | target | |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for row in rows:
        ratio = row.ratio
        verdict = row.verdict()
        mark = {"met": "met", "missed": "**missed**"}.get(verdict, "")
        if row.note:
            mark = f"{mark} {row.note}".strip()
        lines.append(
            f"| {row.benchmark} | {row.case} | {row.metric} | {format_value(row.shoal)} | "
            f"{format_value(row.mpich)} | {format_ratio(ratio)} | "
            f"{row.target or '-'} | {mark} |")
    return "\n".join(lines)


def print_report(report: Report) -> None:
    print(f"## {report.name}\n")
    print(table(report.rows))
    for error in report.errors:
        print(f"\nERROR: {error}")
    print(flush=True)


def script(program: Callable[[list[str]], None], measure: Callable[[bool], Report]) -> int:
    """The ``__main__`` of a benchmark with an MPI program: run as the program under a
    launcher (``--program``), else drive both runtimes and print the report."""
    argv = sys.argv[1:]
    if "--program" in argv:
        program(argv)
        return 0
    return main_for(measure)


def plain_options(doc: str | None, allowed: Sequence[str] = ("--quick",)) -> bool:
    """The options of a benchmark that takes only flags: with ``-h``/``--help`` print its
    ``doc`` and exit; an option it does not take exits with a one-line error (before
    anything is measured); whether ``--quick`` was given."""
    name = Path(sys.argv[0]).name
    for arg in sys.argv[1:]:
        if arg in ("-h", "--help"):
            print(doc or f"usage: {name} [{' | '.join(allowed)}]")
            raise SystemExit(0)
        if arg not in allowed:
            print(f"{name}: unknown option {arg!r} (it takes {', '.join(allowed)}; "
                  "--help says more)", file=sys.stderr)
            raise SystemExit(2)
    return "--quick" in sys.argv[1:]


def main_for(measure: Callable[[bool], Report], argv: Sequence[str] | None = None) -> int:
    """The ``python benchmarks/X.py [--quick]`` entry point shared by every benchmark."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    report = measure(args.quick)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=1))
    return 0 if not report.errors else 1
