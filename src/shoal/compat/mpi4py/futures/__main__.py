"""``python -m mpi4py.futures (prog.py | -m mod | -c cmd) [args]`` under ``shoal run``:
rank 0 runs the program; the other ranks serve its executors until it ends."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


class UsageExit(SystemExit):
    pass


def _usage(error: str | None = None) -> NoReturn:
    text = ("usage: python -m mpi4py.futures <pyfile> [arg] ...\n"
            "   or: python -m mpi4py.futures -m <module> [arg] ...\n"
            "   or: python -m mpi4py.futures -c <string> [arg] ...")
    if error:
        print(error, file=sys.stderr)
        print(text, file=sys.stderr)
    else:
        print(text)
    raise UsageExit(1 if error else 0)


def _check_command_line() -> None:
    args = sys.argv[1:]
    if not args:
        _usage("No path specified for execution")
    elif args[0] == "-":
        pass
    elif args[0] in ("-h", "--help"):
        _usage()
    elif args[0] in ("-m", "-c"):
        if len(args) < 2:
            _usage(f"Argument expected for option: {args[0]}")
    elif args[0].startswith("-"):
        _usage(f"Unknown option: {args[0]}")
    elif not os.path.exists(args[0]):
        _usage(f"Path does not exist: {args[0]}")


def main() -> None:
    from shoal.compat.mpi4py.futures._core import SharedPoolCtx
    from shoal.compat.mpi4py.run import run_command_line, set_abort_status

    try:
        with SharedPoolCtx() as context:
            if context is not None:
                _check_command_line()
                run_command_line()
    except UsageExit:
        raise
    except (SystemExit, KeyboardInterrupt) as exc:
        set_abort_status(exc)
        raise
    except BaseException:
        set_abort_status(1)
        raise


if __name__ == "__main__":
    main()
