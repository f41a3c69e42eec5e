"""mpi4py's own test suite run against shoal, beside MPICH: fetch, run, count, compare.

    python tests/mpi4py_suite/conformance.py [--ranks 1,2,3,4] [--runtime shoal,mpich]
        [--files test_environ,...] [--timeout S] [--json FILE] [--record]

prints a table (file x ranks: passed / failed / errors / skipped, shoal beside MPICH) and,
with ``--record``, writes the figures to ``figures.json`` next to this file (shoal's pass
counts are the floor that ``test_conformance.py`` holds CI to; MPICH's are the reference,
measured once per MPICH version).

What is run
    mpi4py's ``test/`` folder from its source distribution on PyPI, version
    :data:`MPI4PY_VERSION` (the one ``pip install '.[test]'`` installs), checked against
    :data:`SDIST_SHA256`, unpacked once into a cache folder (``SHOAL_MPI4PY_SUITE_CACHE``,
    default ``~/.cache/shoal/mpi4py-suite``).  The files are run unchanged, except the
    edits listed in :data:`ADJUSTMENTS` (there are none: with ``get_vendor()`` answering
    ``"shoal"`` the harness's vendor questions need no change).

How
    each file at each rank count is one job: ``shoal run -n N driver.py ...`` or
    ``mpiexec -launcher fork -n N python driver.py ...`` (the mpich wheel's Hydra).
    :mod:`driver` records every test's outcome on every rank as it goes.  A test passes
    when it passed on every rank.  A job that does not end within ``--timeout`` seconds is
    killed and counts as failed whole (every test it loaded fails, so a hang can only
    lower the figures), and so does one that ends before every rank finished.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "driver.py"
FIGURES = HERE / "figures.json"

MPI4PY_VERSION = "4.1.2"
SDIST = f"mpi4py-{MPI4PY_VERSION}.tar.gz"
SDIST_SHA256 = "56860286dc45f20e8821e93cb06669e30462348bf866f685553fa4b712d58d02"

# The files for features shoal offers (issue 10, item 3).
FILES = (
    "test_p2p_obj", "test_p2p_obj_matched", "test_p2p_buf", "test_p2p_buf_matched",
    "test_cco_obj", "test_cco_buf", "test_cco_vec", "test_cco_nb_buf", "test_cco_nb_vec",
    "test_comm", "test_group", "test_request", "test_status", "test_op", "test_datatype",
    "test_msgspec", "test_msgzero", "test_pickle", "test_errorcode", "test_exceptions",
    "test_environ", "test_toplevel", "test_threads", "test_objmodel", "test_handle",
    "test_util_pkl5", "test_util_dtlib",
    # what was built since: topologies and neighbor collectives, persistent collectives,
    # partitioned point-to-point, packing, memory, attributes, error handlers, info,
    # generalized requests, ULFM's Agree/Shrink, subclassing
    "test_comm_topo", "test_cco_ngh_obj", "test_cco_ngh_buf", "test_cco_pr_buf",
    "test_cco_pr_vec", "test_cco_pr_ngh_buf", "test_p2p_buf_part", "test_pack",
    "test_address", "test_attributes", "test_buffer", "test_mpimem", "test_grequest",
    "test_info", "test_errhandler", "test_ulfm", "test_subclass",
    # intercommunicators between groups of a job's ranks
    "test_comm_inter", "test_cco_obj_inter", "test_cco_buf_inter", "test_cco_vec_inter",
)
RANKS = (1, 2, 3, 4)
RUNTIMES = ("shoal", "mpich")


@dataclass(frozen=True)
class Case:
    """One row of the table: a test module, where it lives, how it is started."""

    key: str                      # its name in the table and in figures.json
    module: str
    folder: str = "test"          # test/ or demo/futures/ of the sdist
    ranks: tuple[int, ...] = RANKS
    futures_main: bool = False    # started as `-m mpi4py.futures driver.py` (rank 0 runs it)
    timeout: float | None = None  # seconds, when the default is too short
    as_main: bool = False         # run as the program's __main__, as its makefile does


# mpi4py's futures tests, run as its demo/futures/makefile does: 1 and 2 ranks, plain
# (MPIPoolExecutor spawns its workers) and under -m mpi4py.futures (a shared pool).
FUTURES = (
    Case("test_futures", "test_futures", "demo/futures", (1, 2), timeout=300, as_main=True),
    Case("test_futures -m mpi4py.futures", "test_futures", "demo/futures", (1, 2), True,
         timeout=300, as_main=True),
)
# Files that need longer than the default: test_util_dtlib converts some 100,000 dtypes
# in every rank (about 25 s of one core each; 4 ranks share 2 cores).
TIMEOUTS = {"test_util_dtlib": 240.0}
CASES = tuple(Case(name, name, timeout=TIMEOUTS.get(name)) for name in FILES) + FUTURES
BY_KEY = {case.key: case for case in CASES}
DEFAULT_TIMEOUT = 120.0

# Every change made to mpi4py's harness files (mpiunittest.py, mpitestutil.py), in one
# place: {file: [(text, replacement, why)]}.  Only vendor-specific questions may be
# adjusted; none need to be, since shoal answers get_vendor() with its own name.
ADJUSTMENTS: dict[str, list[tuple[str, str, str]]] = {}


# -- fetching --------------------------------------------------------------------------

def cache_root() -> Path:
    configured = os.environ.get("SHOAL_MPI4PY_SUITE_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "shoal" / "mpi4py-suite"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(into: Path) -> Path:
    """``pip download`` the pinned sdist (PyPI's own client) and check its digest."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", f"mpi4py=={MPI4PY_VERSION}",
         "--no-binary", ":all:", "--no-deps", "-q", "-d", str(into)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    archive = into / SDIST
    if done.returncode != 0 or not archive.is_file():
        raise RuntimeError(f"pip download mpi4py=={MPI4PY_VERSION} failed:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{SDIST} has SHA-256 {digest}, expected {SDIST_SHA256}")
    return archive


def _extract(archive: Path, dest: Path, folders: Iterable[str]) -> None:
    """Unpack the regular files under ``folders`` only, refusing any odd path."""
    prefix = f"mpi4py-{MPI4PY_VERSION}/"
    wanted = tuple(prefix + f.rstrip("/") + "/" for f in folders)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if not name.startswith(wanted) or not member.isfile():
                continue
            relative = Path(name[len(prefix):])
            if relative.is_absolute() or ".." in relative.parts:
                raise RuntimeError(f"{SDIST}: refusing the path {name!r}")
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)


def _adjust(testdir: Path) -> None:
    for filename, edits in ADJUSTMENTS.items():
        path = testdir / filename
        text = path.read_text(encoding="utf-8")
        for old, new, _why in edits:
            if old not in text:
                raise RuntimeError(f"adjustment of {filename} no longer applies: {old!r}")
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")


def fetch(cache: Path | None = None) -> Path:
    """The folder of mpi4py's tests (``test/``), fetched and unpacked on first use."""
    root = cache or cache_root()
    dest = root / f"mpi4py-{MPI4PY_VERSION}"
    marker = dest / ".complete"
    if marker.is_file():
        return dest / "test"
    with _locked(root):
        if marker.is_file():
            return dest / "test"
        shutil.rmtree(dest, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            archive = _download(Path(tmp))
            staging = Path(tmp) / "unpacked"
            _extract(archive, staging, ("test", "demo"))
            _adjust(staging / "test")
            staging.rename(dest)
        marker.write_text(SDIST_SHA256 + "\n")
    return dest / "test"


# -- running ---------------------------------------------------------------------------

@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped


_WORST = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@dataclass
class FileRun:
    """One test file at one rank count under one runtime."""

    runtime: str
    module: str                 # the case's key (the module, or the module and its mode)
    ranks: int
    status: str = "ok"          # ok, timeout, incomplete, load-error
    seconds: float = 0.0
    loaded: list[str] = field(default_factory=list)
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id: (outcome, why)
    last_started: str | None = None
    returncode: int | None = None
    note: str = ""

    def counts(self) -> Counts:
        if self.status == "load-error":
            return Counts(errors=1)
        if self.status != "ok":  # hung or died: the whole file fails
            return Counts(failed=max(1, len(self.loaded)))
        tally = Counts()
        for test in self.loaded or list(self.outcomes):
            outcome = self.outcomes.get(test, ("error", "no outcome reported"))[0]
            if outcome == "passed":
                tally.passed += 1
            elif outcome == "skipped":
                tally.skipped += 1
            elif outcome == "failed":
                tally.failed += 1
            else:
                tally.errors += 1
        # setUpClass/module errors are reported under ids that were never loaded
        tally.errors += sum(1 for test, (o, _) in self.outcomes.items()
                            if test not in self.loaded and o == "error")
        return tally

    def problems(self) -> list[tuple[str, str, str]]:
        """(test, outcome, why) for every test that did not pass or skip."""
        return [(test, outcome, why) for test, (outcome, why) in sorted(self.outcomes.items())
                if outcome in ("failed", "error")]


def _clean_env(runtime: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOAL_", "PMI_", "PMIX_", "OMPI_", "HYDI_", "MPI4PY_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if runtime == "shoal":
        src = str(HERE.parent.parent / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def command(runtime: str, ranks: int, testdir: Path, module: str, outdir: Path,
            timeout: float, futures_main: bool = False,
            shoal_options: Sequence[str] = ()) -> list[str]:
    driver = [str(DRIVER), str(testdir), module, str(outdir)]
    futures = ["-m", "mpi4py.futures"] if futures_main else []
    if runtime == "shoal":
        return [sys.executable, "-m", "shoal", "run", "-n", str(ranks), *shoal_options,
                "--timeout", f"{timeout:g}", *futures, *driver]
    if runtime == "mpich":
        launcher = mpiexec()
        if launcher is None:
            raise RuntimeError("no mpiexec: pip install mpich (the 'test' extra has it)")
        return [launcher, "-launcher", "fork", "-n", str(ranks), sys.executable, *futures,
                *driver]
    raise ValueError(f"unknown runtime {runtime!r}")


def _read(outdir: Path, ranks: int, run: FileRun) -> bool:
    """Fold ``ranks`` ranks' records into ``run``; True when every one finished."""
    finished = 0
    for rank in range(ranks):
        path = outdir / f"rank-{rank}.jsonl"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            if "loaded" in record and not run.loaded:
                run.loaded = list(record["loaded"])
            elif "load_error" in record:
                run.status = "load-error"
                run.note = record["load_error"]
            elif "start" in record and rank == 0:
                run.last_started = record["start"]
            elif "id" in record:
                old = run.outcomes.get(record["id"])
                new = (record["outcome"], record.get("detail", ""))
                if old is None or _WORST[new[0]] > _WORST[old[0]]:
                    run.outcomes[record["id"]] = new
            elif record.get("done"):
                finished += 1
    return finished == ranks


def run_file(runtime: str, ranks: int, testdir: Path, module: str,
             timeout: float = DEFAULT_TIMEOUT, case: Case | None = None,
             shoal_options: Sequence[str] = ()) -> FileRun:
    """Run one test file on ``ranks`` ranks; never longer than ``timeout`` (+ a grace).

    ``testdir`` is the sdist's ``test/`` folder (``case.folder`` is found beside it);
    ``shoal_options`` go to ``shoal run`` (e.g. ``--transport tcp``).
    """
    case = case or Case(module, module)
    folder = testdir.parent / case.folder if case.folder != "test" else testdir
    run = FileRun(runtime, case.key, ranks)
    with tempfile.TemporaryDirectory(prefix="mpi4py-suite-") as tmp:
        outdir = Path(tmp) / "out"
        outdir.mkdir()
        argv = command(runtime, ranks, folder, case.module, outdir, timeout, case.futures_main,
                       shoal_options)
        env = _clean_env(runtime)
        env["SHOAL_SUITE_TESTDIR"] = str(folder)
        if case.as_main:
            env["SHOAL_SUITE_AS_MAIN"] = "1"
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=tmp, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout + 15)
            timed_out = runtime == "shoal" and proc.returncode == 124
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            timed_out = True
        run.seconds = time.monotonic() - started
        run.returncode = proc.returncode
        finished = _read(outdir, 1 if case.futures_main else ranks, run)
    if run.status == "load-error":
        return run
    if timed_out:
        run.status = "timeout"
    elif not finished:
        run.status = "incomplete"
    if run.status != "ok":
        text = output.decode("utf-8", "replace")
        run.note = f"last test started: {run.last_started}\n{text[-3000:]}"
    return run


# -- figures and the table ----------------------------------------------------------

def load_figures(path: Path = FIGURES) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def record(runs: list[FileRun], path: Path = FIGURES) -> None:
    """Write the runs' counts into the figures file (keeping what was not re-run)."""
    figures = load_figures(path)
    figures["mpi4py"] = MPI4PY_VERSION
    figures["sdist_sha256"] = SDIST_SHA256
    for run in runs:
        section = figures.setdefault(run.runtime, {})
        if run.runtime == "mpich":
            section["version"] = mpich_version()
        files = section.setdefault("files", {})
        entry = asdict(run.counts())
        entry["status"] = run.status
        files.setdefault(run.module, {})[str(run.ranks)] = entry
    path.write_text(dump_figures(figures), encoding="utf-8")


def dump_figures(figures: dict[str, Any]) -> str:
    """JSON with one line per file and rank count, so that diffs show what changed."""
    lines = ["{"]
    heads = [k for k in sorted(figures) if not isinstance(figures[k], dict)]
    for key in heads:
        lines.append(f" {json.dumps(key)}: {json.dumps(figures[key])},")
    sections = [k for k in sorted(figures) if isinstance(figures[k], dict)]
    for s_index, runtime in enumerate(sections):
        section = figures[runtime]
        lines.append(f" {json.dumps(runtime)}: {{")
        for key in sorted(k for k in section if k != "files"):
            lines.append(f"  {json.dumps(key)}: {json.dumps(section[key])},")
        lines.append('  "files": {')
        files = section.get("files", {})
        for f_index, module in enumerate(sorted(files)):
            lines.append(f"   {json.dumps(module)}: {{")
            by_ranks = files[module]
            for r_index, ranks in enumerate(sorted(by_ranks, key=int)):
                comma = "," if r_index < len(by_ranks) - 1 else ""
                lines.append(f"    {json.dumps(ranks)}: "
                             f"{json.dumps(by_ranks[ranks], sort_keys=True)}{comma}")
            lines.append("   }" + ("," if f_index < len(files) - 1 else ""))
        lines.append("  }")
        lines.append(" }" + ("," if s_index < len(sections) - 1 else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # well formed, always
    return text


def mpich_version() -> str:
    try:
        from importlib.metadata import version

        return version("mpich")
    except Exception:
        return "unknown"


def _cell(counts: dict[str, Any] | None) -> str:
    if counts is None:
        return "-"
    text = f"{counts['passed']}/{counts['failed']}/{counts['errors']}/{counts['skipped']}"
    status = counts.get("status", "ok")
    return text if status == "ok" else f"{text} {status.upper()}"


def table(figures: dict[str, Any], files: Iterable[str], ranks: Iterable[int]) -> str:
    """file x ranks: passed/failed/errors/skipped, shoal | MPICH, and the totals."""
    ranks = list(ranks)
    shoal = figures.get("shoal", {}).get("files", {})
    mpich = figures.get("mpich", {}).get("files", {})
    header = ["file"] + [f"n={n} shoal | mpich" for n in ranks]
    rows = [header]
    totals = {(rt, n): [0, 0] for rt in RUNTIMES for n in ranks}
    for module in files:
        row = [module]
        for n in ranks:
            if n not in BY_KEY.get(module, Case(module, module)).ranks:
                row.append("")
                continue
            ours = shoal.get(module, {}).get(str(n))
            theirs = mpich.get(module, {}).get(str(n))
            row.append(f"{_cell(ours)} | {_cell(theirs)}")
            for runtime, counts in (("shoal", ours), ("mpich", theirs)):
                if counts:
                    totals[runtime, n][0] += counts["passed"]
                    totals[runtime, n][1] += 1
        rows.append(row)
    rows.append(["passed, all files"] + [
        f"{totals['shoal', n][0]} | {totals['mpich', n][0]}" for n in ranks])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    mpich_label = figures.get("mpich", {}).get("version", "?")
    lines.append(f"cells: passed/failed/errors/skipped; mpi4py {figures.get('mpi4py')} "
                 f"tests; MPICH {mpich_label} (mpich wheel, mpiexec -launcher fork)")
    return "\n".join(lines)


def markdown_table(figures: dict[str, Any], files: Iterable[str], ranks: Iterable[int]) -> str:
    """The README's table: passing tests per file and rank count, shoal | MPICH."""
    ranks = list(ranks)
    shoal = figures.get("shoal", {}).get("files", {})
    mpich = figures.get("mpich", {}).get("files", {})
    lines = ["| file | " + " | ".join(f"n={n}" for n in ranks) + " |",
             "|---|" + "---:|" * len(ranks)]
    totals = {(rt, n): 0 for rt in RUNTIMES for n in ranks}

    def passed(counts: Any) -> str:
        if not counts:
            return "-"
        status = counts.get("status", "ok")
        return str(counts["passed"]) + ("" if status == "ok" else f" ({status})")

    for module in files:
        cells = []
        for n in ranks:
            if n not in BY_KEY.get(module, Case(module, module)).ranks:
                cells.append("")
                continue
            ours = shoal.get(module, {}).get(str(n))
            theirs = mpich.get(module, {}).get(str(n))
            for runtime, counts in (("shoal", ours), ("mpich", theirs)):
                totals[runtime, n] += counts["passed"] if counts else 0
            cells.append(f"{passed(ours)} \\| {passed(theirs)}")
        lines.append(f"| `{module}` | " + " | ".join(cells) + " |")
    lines.append("| all files | " + " | ".join(
        f"**{totals['shoal', n]} \\| {totals['mpich', n]}**" for n in ranks) + " |")
    return "\n".join(lines)


def _figures_of(runs: list[FileRun]) -> dict[str, Any]:
    figures: dict[str, Any] = {"mpi4py": MPI4PY_VERSION}
    for run in runs:
        entry = asdict(run.counts())
        entry["status"] = run.status
        section = figures.setdefault(run.runtime, {"files": {}})
        section["files"].setdefault(run.module, {})[str(run.ranks)] = entry
    return figures


def _words(text: str) -> list[str]:
    return [w for w in text.replace(" ", ",").split(",") if w]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default=",".join(map(str, RANKS)),
                        help="rank counts, e.g. 1,2,3,4")
    parser.add_argument("--runtime", default=",".join(RUNTIMES), help="shoal, mpich or both")
    parser.add_argument("--files", default=",".join(c.key for c in CASES),
                        help="test modules (default: every file for a feature shoal offers, "
                             "and the futures tests); 'test_futures -m mpi4py.futures' is "
                             "the futures tests under a shared pool")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds one file may run before it counts as failed")
    parser.add_argument("--json", metavar="FILE", help="also write every outcome here")
    parser.add_argument("--record", action="store_true",
                        help=f"write the counts into {FIGURES.name} (the CI floor)")
    parser.add_argument("--failures", action="store_true",
                        help="print each failing test's last traceback lines")
    parser.add_argument("--recorded", action="store_true",
                        help="print the recorded table and run nothing")
    parser.add_argument("--markdown", action="store_true",
                        help="with --recorded: the passing tests as a Markdown table (README)")
    args = parser.parse_args(argv)
    files = [w.strip() for w in args.files.split(",") if w.strip()]
    ranks = [int(n) for n in _words(args.ranks)]
    runtimes = _words(args.runtime)
    if args.recorded:
        show = markdown_table if args.markdown else table
        print(show(load_figures(), files, ranks))
        return 0
    testdir = fetch()
    runs: list[FileRun] = []
    for module in files:
        case = BY_KEY.get(module, Case(module, module))
        for n in ranks:
            if n not in case.ranks:
                continue
            for runtime in runtimes:
                run = run_file(runtime, n, testdir, case.module,
                               max(args.timeout, case.timeout or 0), case)
                runs.append(run)
                c = run.counts()
                print(f"{module:24} n={n} {runtime:5} {run.status:10} passed {c.passed:4} "
                      f"failed {c.failed:3} errors {c.errors:3} skipped {c.skipped:3} "
                      f"{run.seconds:6.1f} s", flush=True)
                if args.failures:
                    for test, outcome, why in run.problems():
                        last = why.strip().splitlines()[-1:] or [""]
                        print(f"    {outcome:6} {test}: {last[0][:160]}")
                    if run.status != "ok":
                        print("    " + run.note.replace("\n", "\n    ")[:3000])
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=1))
    if args.record:
        record(runs)
    shown = load_figures()
    shown.setdefault("mpi4py", MPI4PY_VERSION)
    if "mpich" in runtimes:
        shown.setdefault("mpich", {})["version"] = mpich_version()
    # what was just measured wins over what was recorded
    for runtime, section in _figures_of(runs).items():
        if isinstance(section, dict):
            for module, by_ranks in section["files"].items():
                shown.setdefault(runtime, {}).setdefault("files", {}).setdefault(
                    module, {}).update(by_ranks)
    print()
    print(table(shown, files, ranks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
