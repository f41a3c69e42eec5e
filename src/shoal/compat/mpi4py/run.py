"""``python -m mpi4py [options] (pyfile | -m mod | -c cmd | -) [arg] ...``, under shoal.

As mpi4py's ``mpi4py.run``: run the program with :mod:`runpy`; when it raises, print the
traceback and abort the whole job (``COMM_WORLD.Abort``) rather than leave the other
ranks waiting for this one.  ``-rc key=value,...`` sets ``mpi4py.rc`` first.
"""

from __future__ import annotations

import ast
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from shoal.spmd import environment

_USAGE = """\
usage: python -m mpi4py [options] <pyfile> [arg] ...
   or: python -m mpi4py [options] -m <mod> [arg] ...
   or: python -m mpi4py [options] -c <cmd> [arg] ...
   or: python -m mpi4py [options] - [arg] ..."""

_OPTIONS = """\
options:
  --prefix             show install path and exit
  --version            show version number and exit
  --mpi-std-version    show MPI standard version and exit
  --mpi-lib-version    show MPI library version and exit
  -h|--help            show this help message and exit
  -rc <key=value,...>  set 'mpi4py.rc.key=value'"""


def run_command_line(args: Sequence[str] | None = None) -> None:
    """Run ``[pyfile | -m mod | -c cmd | -] [arg] ...`` as ``python`` would."""
    import runpy

    sys.argv[:] = list(args) if args is not None else sys.argv[1:]
    first = sys.argv[0]
    if first in ("-", "-c"):
        if first == "-":
            source, filename = sys.stdin.read(), "<stdin>"
        else:
            source, filename = sys.argv.pop(1), "<string>"
        code = compile(source, filename, "exec", 0, True)
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        main = type(sys)("__main__")
        main.__dict__.update(namespace)
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = main
        try:
            exec(code, main.__dict__)
        finally:
            if saved is not None:
                sys.modules["__main__"] = saved
    elif first == "-m":
        del sys.argv[0]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        if not sys.flags.isolated:
            sys.path[0] = os.path.realpath(os.path.dirname(first))
        runpy.run_path(first, run_name="__main__")


def set_abort_status(status: object) -> None:
    """Make this rank abort the job at exit with ``status`` (call it in an ``except``)."""
    if isinstance(status, SystemExit):
        status = status.code
    elif isinstance(status, KeyboardInterrupt):
        status = int(signal.SIGINT) + 128
    if not isinstance(status, int):
        status = 0 if status is None else 1
    if status and "shoal.spmd.mpi" in sys.modules:
        environment.set_abort_status(status)


def _usage(error: str | None = None) -> NoReturn:
    if error:
        print(error, file=sys.stderr)
        print(_USAGE, file=sys.stderr)
        print("Try `python -m mpi4py -h` for more information.", file=sys.stderr)
        sys.exit(1)
    print(_USAGE)
    print(_OPTIONS)
    sys.exit(0)


def _parse(args: list[str]) -> tuple[dict[str, object], list[str]]:
    settings: dict[str, object] = {}
    while args and args[0].startswith("-") and args[0] not in ("-m", "-c", "-"):
        option = args.pop(0)
        name, _, inline = option.lstrip("-").partition("=")
        if name in ("h", "help"):
            _usage()
        if name == "prefix":
            print(os.path.dirname(os.path.abspath(__file__)))
            sys.exit(0)
        if name == "version":
            from shoal.compat.mpi4py import __version__

            print(f"mpi4py {__version__}")
            sys.exit(0)
        if name in ("mpi-std-version", "mpi-lib-version"):
            environment.rc.initialize = environment.rc.finalize = False
            if name == "mpi-std-version":
                print("MPI {}.{}".format(*environment.Get_version()))
            else:
                print(environment.Get_library_version())
            sys.exit(0)
        if name != "rc":
            _usage(f"Unknown option: {option}")
        value = inline or (args.pop(0) if args and not args[0].startswith("-") else "")
        if not value:
            _usage(f"Argument expected for option: {option}")
        for entry in value.split(","):
            key, _, text = entry.partition("=")
            if not key or not text:
                _usage(f"Cannot parse rc option: {entry}")
            try:
                settings[key] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                settings[key] = text
    if not args:
        _usage("No path specified for execution")
    if args[0] in ("-m", "-c") and len(args) < 2:
        _usage(f"Argument expected for option: {args[0]}")
    return settings, args


def main() -> None:
    """``python -m mpi4py.run ...`` (and ``python -m mpi4py ...``)."""
    settings, args = _parse(sys.argv[1:])
    if settings:
        environment.rc(**settings)
    try:
        run_command_line(args)
    except SystemExit as exc:
        set_abort_status(exc)
        raise
    except KeyboardInterrupt as exc:
        set_abort_status(exc)
        raise
    except BaseException:
        set_abort_status(1)
        raise


if __name__ == "__main__":
    main()
