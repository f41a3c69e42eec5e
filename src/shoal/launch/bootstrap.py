"""Start one rank: ``python -m shoal.launch.bootstrap -- prog.py [args]`` (or ``-- -m module``).

The launcher starts every rank through this module so that it can

* die with its launcher (``PR_SET_PDEATHSIG``), even when the launcher is SIGKILLed;
* dump its Python stack on SIGUSR1 (``faulthandler``), for ``--timeout`` reports;
* dump its Python stack when it crashes (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT), so
  the job's output says where;
* send an uncaught exception to the launcher as text, without the frames of this
  module and of :mod:`runpy`, so the launcher can label it with the rank;
* tell the launcher when it joins the job's communication and when it leaves it
  cleanly (:func:`report_progress`), so that a rank that ends in between is known
  to have left the others in the lurch.

The program itself sees what ``python prog.py`` (or ``python -m module``) would
give it: the same ``sys.argv``, ``sys.path[0]``, ``__file__`` and ``__name__``.
Nothing here is required: a program started with plain ``python`` runs as one
rank without it.
"""

from __future__ import annotations

import atexit
import ctypes
import faulthandler
import importlib.util
import os
import runpy
import signal
import sys
import types
from collections.abc import Sequence

from shoal.launch import control, triage

_PR_SET_PDEATHSIG = 1
USAGE_EXIT = 2
# Frames from these files are the bootstrap's, not the program's.
_OWN_FILES = frozenset({os.path.abspath(__file__), getattr(runpy, "__file__", ""),
                        "<frozen runpy>",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "forkserver.py")})


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, however it dies.

    ``parent`` is the pid the parent must have (default: ``SHOAL_LAUNCHER_PID``).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    # The parent may have died before prctl took effect: then nobody is left
    # to send the signal, and this rank would run on as an orphan.
    if parent is None:
        expected = os.environ.get("SHOAL_LAUNCHER_PID", "")
        parent = int(expected) if expected.isdigit() else None
    if parent is not None and os.getppid() != parent:
        os._exit(137)


def report_progress() -> None:
    """Send ``init`` and ``finalized`` over the control channel as this rank reaches them.

    The hooks run in :mod:`shoal.spmd.world` (``on_init`` when the engine is made or
    shoal's ``MPI`` is imported, ``on_finalize`` on ``MPI.Finalize``, ``shoal.end`` or
    a normal exit); only in this process, not in children it forks.  Beacons start
    their ranks through this module too, and get the same events.
    """
    if not control.available():
        return
    from shoal.spmd import world

    pid = os.getpid()

    def joined() -> None:
        if os.getpid() == pid:
            control.report(control.INIT)

    def left() -> None:
        if os.getpid() == pid:
            control.report(control.FINALIZED)

    world.on_init.append(joined)
    world.on_finalize.append(left)
    # Registered before anything of the program's, so it runs last: a rank that
    # joined without making an engine (it imported MPI, sent nothing) finalizes here.
    atexit.register(world.finalize)


def _program_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Skip the leading frames of the bootstrap and runpy."""
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    return tb


def format_exception(exc: BaseException) -> str:
    import traceback  # only when a rank fails: every rank saves its import

    exc = exc.with_traceback(_program_frames(exc.__traceback__))
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _usage_error(message: str) -> int:
    if control.available():
        control.report(control.USAGE, message=message)
    else:
        print(f"shoal run: error: {message}", file=sys.stderr)
    return USAGE_EXIT


def _run_file(path: str) -> None:
    """Run a script as ``__main__`` the way ``python path`` does.

    Not ``runpy.run_path``: that rewrites ``sys.argv[0]`` to the path it was
    given, and ``python prog.py`` keeps argv[0] as typed while ``__file__`` is
    absolute.  Directories and zip files (which run their ``__main__.py``) do
    go through runpy.
    """
    full = os.path.abspath(path)
    if os.path.isdir(full) or (not full.endswith(".py") and _is_zip(full)):
        runpy.run_path(full, run_name="__main__")
        return
    with open(full, "rb") as handle:  # bytes: compile() honours a coding cookie
        source = handle.read()
    code = compile(source, full, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=full, __cached__=None, __package__=None,
                           __spec__=None, __loader__=None, __builtins__=__builtins__)
    # Replace the bootstrap as __main__ so pickle, multiprocessing and friends
    # find the program's globals there.
    sys.modules["__main__"] = module
    exec(code, module.__dict__)


def _is_zip(path: str) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


def _prepare(argv: Sequence[str]) -> tuple[str, str, list[str]] | int:
    """Parse ``[--] (prog.py | -m module) args``: (kind, target, args) or an exit code."""
    args = list(argv)
    if args and args[0] == "--":
        args.pop(0)
    if not args:
        return _usage_error("the bootstrap needs a program: -- prog.py [args] or -- -m module")
    if args[0] == "-m":
        if len(args) < 2:
            return _usage_error("-m needs a module name")
        return "module", args[1], args[2:]
    return "file", args[0], args[1:]


def _check_module(name: str) -> str | None:
    """Why ``python -m name`` would fail before running anything, or None."""
    try:
        spec = importlib.util.find_spec(name)
        # A package runs its __main__ submodule.
        is_package = spec is not None and spec.submodule_search_locations is not None
        if is_package and importlib.util.find_spec(f"{name}.__main__") is None:
            return f"{name!r} is a package without a __main__ module, so -m cannot run it"
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if name == missing or name.startswith(missing + "."):
            return (f"no module named {missing!r} "
                    "(check the name, the current folder and PYTHONPATH)")
        return None  # the package's own import failed: a program error, reported as one
    except ValueError as exc:
        return f"cannot run module {name!r}: {exc}"
    except Exception:
        return None  # likewise: runpy will raise it again, with a traceback
    if spec is None:
        return f"no module named {name!r} (check the name, the current folder and PYTHONPATH)"
    return None


def check(argv: Sequence[str]) -> int:
    """``--check -m module``: 0 if ``python -m module`` would start, else a usage error."""
    prepared = _prepare(argv)
    if isinstance(prepared, int):
        return prepared
    kind, target, _ = prepared
    if kind == "module":
        problem = _check_module(target)
    else:
        problem = None if os.path.exists(target) else f"no such program: {target!r}"
    return _usage_error(problem) if problem else 0


def run(argv: Sequence[str]) -> int:
    """Run the program in this process and return its exit status."""
    prepared = _prepare(argv)
    if isinstance(prepared, int):
        return prepared
    kind, target, args = prepared
    if kind == "module":
        # `python -m shoal.launch.bootstrap` already put the current folder
        # first on sys.path, exactly as `python -m module` does.
        problem = _check_module(target)
        if problem:
            return _usage_error(problem)
        sys.argv = [target, *args]  # run_module replaces argv[0] with the file's path
    else:
        if not os.path.exists(target):
            return _usage_error(f"no such program: {target!r}")
        sys.argv = [target, *args]
        if not getattr(sys.flags, "safe_path", False):  # -P / PYTHONSAFEPATH: 3.11+
            folder = os.path.dirname(os.path.realpath(target))
            if sys.path and sys.path[0] == os.getcwd():
                sys.path[0] = folder
            else:
                sys.path.insert(0, folder)
    try:
        if kind == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            _run_file(target)
    except SystemExit:
        raise  # the interpreter turns it into the exit status, as usual
    except BaseException as exc:
        # An uncaught exception stops the whole job; KeyboardInterrupt too, with the
        # status Python gives it (a death by SIGINT).
        status = 130 if isinstance(exc, KeyboardInterrupt) else 1
        text = format_exception(exc)
        if control.available():
            control.report(control.ERROR, rank=_rank(), traceback=text, status=status,
                           exception=f"{type(exc).__name__}: {exc}",
                           lost_peer=triage.lost_peer(exc))
        else:
            sys.stderr.write(text)
        _abandon_world()
        return status
    return 0


def _abandon_world() -> None:
    """After an uncaught exception the rank does not finalize: queued sends may be why it
    failed (a lost peer) and would fail again at exit, printing the error twice."""
    world = sys.modules.get("shoal.spmd.world")
    if world is not None:
        try:
            world.abandon()
        except Exception:
            pass


def _rank() -> int | None:
    value = os.environ.get("SHOAL_RANK", "")
    return int(value) if value.isdigit() else None


def _hide_control_fd() -> None:
    """Programs the rank starts with exec must not inherit the control pipe."""
    value = os.environ.get(control.ENV_VAR, "")
    if value.isdigit():
        try:
            os.set_inheritable(int(value), False)
        except OSError:
            pass


def main(argv: Sequence[str] | None = None, forked_from: int | None = None) -> int:
    """Run a rank; ``forked_from`` is the fork server's pid when it forked this process
    (which then already dies with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--check"]:
        return check(args[1:])
    if forked_from is None:
        die_with_parent()
    _hide_control_fd()
    faulthandler.enable(file=sys.stderr, all_threads=True)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    report_progress()
    problem = _hook_mpi4py()
    if problem:
        return _usage_error(problem)
    return run(args)


def _hook_mpi4py() -> str | None:
    """``import mpi4py`` gives shoal's under ``shoal run`` (see :mod:`shoal.compat.hook`)."""
    from shoal.compat.hook import install_for_rank
    from shoal.errors import ConfigurationError

    try:
        install_for_rank()
    except ConfigurationError as exc:
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
