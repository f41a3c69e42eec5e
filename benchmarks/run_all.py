"""Run every benchmark under shoal and under mpi4py on MPICH; write a Markdown report and plots.

    python benchmarks/run_all.py            # full sizes: a few minutes on 2 cores
    python benchmarks/run_all.py --quick    # smaller sizes: about 2 minutes on 2 cores

Writes ``benchmarks/results/<date>/`` (``<date>-quick/`` for ``--quick``):

* results.md: the machine, the commands, one table of every figure with the
  ratio shoal / MPICH and its target, and any failures;
* results.json: the same, plus the raw numbers;
* pingpong.png, bandwidth.png, collectives.png, klyng.png, ratios.png.

Timings are noisy on a small shared machine: read ratios near a target as a tie.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bandwidth
import collectives
import harness
import klyng
import netns_pingpong
import pingpong
import startup
from harness import Report

BENCHMARKS = {
    "pingpong": pingpong.measure,
    "bandwidth": bandwidth.measure,
    "collectives": collectives.measure,
    "startup": startup.measure,
    "klyng": klyng.measure,
    "netns_pingpong": netns_pingpong.measure,  # two namespace hosts; needs root
}


def _output(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                              check=False)
        return (proc.stdout + proc.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"


def machine_info() -> dict[str, str]:
    info: dict[str, str] = {}
    info["date"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    info["host"] = platform.node()
    info["os"] = platform.platform()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = cpu
    cores = f"{os.cpu_count()} logical"
    try:
        import psutil

        cores += f", {psutil.cpu_count(logical=False)} physical"
        info["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        pass
    info["cores"] = cores
    try:
        info["cpus usable"] = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    info["python"] = sys.version.split()[0] + f" ({sys.executable})"
    try:
        import numpy

        info["numpy"] = numpy.__version__
    except ImportError:
        info["numpy"] = "not installed"
    try:
        import mpi4py

        info["mpi4py"] = mpi4py.__version__
    except ImportError:
        info["mpi4py"] = "not installed"
    library = _output([sys.executable, "-c",
                       "from mpi4py import MPI; print(MPI.Get_library_version())"])
    info["MPI library"] = " ".join(library.split()[:3]) if library else "unknown"
    hydra = _output([*harness.launcher(harness.MPICH)[:1], "--version"])
    for line in hydra.splitlines():
        if line.strip().startswith("Version:"):
            info["mpiexec (Hydra)"] = line.split(":", 1)[1].strip()
    try:
        sys.path.insert(0, str(harness.REPO / "src"))
        from shoal._version import __version__

        info["shoal"] = __version__
    except ImportError:
        info["shoal"] = "unknown"
    commit = _output(["git", "-C", str(harness.REPO), "rev-parse", "--short", "HEAD"])
    info["shoal commit"] = commit.splitlines()[0] if commit else "unknown"
    info["shoal launcher"] = " ".join(harness.launcher(harness.SHOAL)) + " -n N prog.py"
    info["MPICH launcher"] = (" ".join(harness.launcher(harness.MPICH))
                              + " -n N python prog.py  (SHOAL_BACKEND=mpi)")
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def markdown(info: dict[str, str], reports: list[Report], quick: bool, seconds: float) -> str:
    lines = [f"# shoal vs mpi4py on MPICH{' (quick sizes)' if quick else ''}", ""]
    lines += ["Every figure was measured in this one run, both runtimes side by side, same "
              "programs, same interpreter. Ratios are shoal / MPICH: below 1 is better for "
              "times, above 1 is better for bandwidth. Medians throughout.", ""]
    lines += ["| machine | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in info.items()]
    lines += [f"| load average at end | {' '.join(f'{x:.2f}' for x in os.getloadavg())} |",
              f"| run time | {seconds:.0f} s |", ""]

    targeted = [row for report in reports for row in report.rows if row.target]
    met = sum(row.verdict() == "met" for row in targeted)
    missed = [row for row in targeted if row.verdict() == "missed"]
    unknown = sum(row.verdict() == "" for row in targeted)
    lines += ["## Targets", "",
              f"{met} met, {len(missed)} missed, {unknown} not measured "
              f"(of {len(targeted)} figures with a target).", ""]
    if missed:
        lines += ["Missed: " + "; ".join(
            f"{r.case} ({r.metric}) {harness.format_ratio(r.ratio)} vs {r.target}"
            for r in missed), ""]

    for report in reports:
        lines += [f"## {report.name}", "", harness.table(report.rows), ""]
        for error in report.errors:
            lines += ["```", error, "```", ""]
    lines += ["Plots: pingpong.png, bandwidth.png, collectives.png, klyng.png, ratios.png.", ""]
    return "\n".join(lines)


def _xy(points: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [x for x, _ in points], [y for _, y in points]


def plots(reports: dict[str, Report], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written: list[str] = []
    styles = {harness.SHOAL: "-", harness.MPICH: "--"}

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)

    if "pingpong" in reports:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for backend, result in reports["pingpong"].raw.items():
            for api, marker in (("buffer", "o"), ("object", "s")):
                data = (result or {}).get("latency_us", {}).get(api, {})
                points = sorted((int(s), v) for s, v in data.items() if int(s) > 0)
                if points:
                    ax.plot(*_xy(points), styles[backend], marker=marker, markersize=3,
                            label=f"{harness.LABELS[backend]}, {api} API")
        ax.set(xscale="log", yscale="log", xlabel="message size (bytes)",
               ylabel="one-way latency (us)", title="Ping-pong latency, 2 ranks (median)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "pingpong.png")

    if "bandwidth" in reports:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for backend, result in reports["bandwidth"].raw.items():
            for api, marker in (("buffer", "o"), ("object", "s")):
                data = (result or {}).get("mb_per_s", {}).get(api, {})
                points = sorted((int(s), v) for s, v in data.items())
                if points:
                    ax.plot(*_xy(points), styles[backend], marker=marker, markersize=3,
                            label=f"{harness.LABELS[backend]}, {api} API")
        ax.set(xscale="log", xlabel="array size (bytes)", ylabel="MB/s",
               title="Bandwidth of numpy arrays, 2 ranks (median)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "bandwidth.png")

    if "collectives" in reports:
        raw = reports["collectives"].raw
        fig, axes = plt.subplots(1, len(raw) or 1, figsize=(11, 4.5), squeeze=False)
        for ax, (ranks, results) in zip(axes[0], raw.items(), strict=True):
            width = 0.4
            for i, backend in enumerate(harness.BACKENDS):
                data = ((results or {}).get(backend) or {}).get("latency_us", {})
                values = [data.get(case, 0.0) for case in collectives.CASES]
                ax.bar([x + (i - 0.5) * width for x in range(len(collectives.CASES))], values,
                       width, label=harness.LABELS[backend])
            ax.set_xticks(range(len(collectives.CASES)), collectives.CASES, rotation=45,
                          ha="right", fontsize=8)
            ax.set(yscale="log", ylabel="latency (us)", title=f"Collectives, {ranks} ranks")
            ax.legend(fontsize=8)
        save(fig, "collectives.png")

    if "klyng" in reports:
        raw = reports["klyng"].raw
        fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), squeeze=False)
        for row, task in enumerate(("pi", "primes")):
            for col, metric in enumerate(("rtet", "mpct")):
                ax = axes[row][col]
                for backend in harness.BACKENDS:
                    points: list[tuple[int, float]] = []
                    for ranks in klyng.RANKS:
                        values = raw.get(f"{task} {ranks}", {}).get(metric, {}).get(backend)
                        if values:
                            points.append((ranks, harness.median(values)))
                    if points:
                        ax.plot(*_xy(points), styles[backend], marker="o",
                                label=harness.LABELS[backend])
                ax.set(xticks=list(klyng.RANKS), xlabel="ranks", ylabel="seconds",
                       title=f"{task}: {metric.upper()}")
                ax.grid(True, alpha=0.3)
                ax.legend(fontsize=8)
        save(fig, "klyng.png")

    targeted = [row for report in reports.values() for row in report.rows
                if row.target and row.ratio is not None]
    if targeted:
        fig, ax = plt.subplots(figsize=(8, 0.28 * len(targeted) + 1.5))
        labels = [f"{row.case} ({row.metric})" for row in targeted]
        colours = ["tab:green" if row.verdict() == "met" else "tab:red" for row in targeted]
        # Bars grow from parity (1) towards the ratio, so both directions read at a glance.
        ratios = [float(row.ratio or 1.0) for row in targeted]
        ax.barh(range(len(targeted)), [r - 1.0 for r in ratios], left=1.0, color=colours)
        ax.axvline(1.0, color="grey", linewidth=1)
        bounds = [float(row.target.split()[1]) for row in targeted]
        ax.set_xlim(min([*ratios, *bounds, 1.0]) / 1.3, max([*ratios, *bounds, 1.0]) * 1.3)
        for i, row in enumerate(targeted):
            bound = float(row.target.split()[1])
            ax.plot([bound, bound], [i - 0.4, i + 0.4], "k-", linewidth=2)
        ax.set_yticks(range(len(targeted)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set(xscale="log", xlabel="shoal / MPICH (black: target; green met, red missed)",
               title="Ratios with a target")
        ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
                 if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, axis="x", which="both", alpha=0.3)
        save(fig, "ratios.png")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS),
                        help="run only these benchmarks")
    parser.add_argument("--out", type=Path, help="output folder (default results/<date>)")
    args = parser.parse_args(argv)

    today = _dt.date.today().isoformat()
    out = args.out or harness.HERE / "results" / (today + ("-quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)

    info = machine_info()
    started = time.perf_counter()
    reports: dict[str, Report] = {}
    for name, measure in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"running {name} ...", flush=True)
        t0 = time.perf_counter()
        reports[name] = measure(args.quick)
        harness.print_report(reports[name])
        print(f"({name} took {time.perf_counter() - t0:.0f} s)\n", flush=True)
    seconds = time.perf_counter() - started

    (out / "results.md").write_text(markdown(info, list(reports.values()), args.quick, seconds))
    (out / "results.json").write_text(json.dumps(
        {"machine": info, "quick": args.quick, "seconds": seconds,
         "reports": {name: report.as_dict() for name, report in reports.items()}}, indent=1))
    written = plots(reports, out)
    print(f"wrote {out / 'results.md'}, results.json and {', '.join(written)}")
    return 0 if not any(report.errors for report in reports.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
