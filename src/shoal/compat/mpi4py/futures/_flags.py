"""Interpreter flags for spawned workers, passed as the environment variables they have.

mpi4py starts its workers with ``python [flags] -m mpi4py.futures.server``: this
process's own flags (``sys.flags``, ``-W``, ``-X``) plus ``python_args``.  shoal's
workers are ranks that ``shoal run`` starts, so the same settings travel as the
variables Python reads at start (``-O`` is ``PYTHONOPTIMIZE``, ``-X dev`` is
``PYTHONDEVMODE`` ...).  A flag without such a variable is refused in one line.
"""

from __future__ import annotations

import sys

# sys.flags attribute -> (variable, value) for the flags that have a variable.
_FLAG_VARIABLES = {
    "debug": "PYTHONDEBUG", "optimize": "PYTHONOPTIMIZE",
    "dont_write_bytecode": "PYTHONDONTWRITEBYTECODE", "no_user_site": "PYTHONNOUSERSITE",
    "verbose": "PYTHONVERBOSE", "safe_path": "PYTHONSAFEPATH",
}
_LETTERS = {"d": "PYTHONDEBUG", "O": "PYTHONOPTIMIZE", "B": "PYTHONDONTWRITEBYTECODE",
            "s": "PYTHONNOUSERSITE", "v": "PYTHONVERBOSE", "P": "PYTHONSAFEPATH",
            "u": "PYTHONUNBUFFERED"}
_X_OPTIONS = {"dev": "PYTHONDEVMODE", "utf8": "PYTHONUTF8", "utf8=1": "PYTHONUTF8",
              "faulthandler": "PYTHONFAULTHANDLER", "tracemalloc": "PYTHONTRACEMALLOC"}


def current_flags() -> dict[str, str]:
    """This interpreter's flags, as variables (what mpi4py's get_python_flags passes on)."""
    env: dict[str, str] = {}
    for name, variable in _FLAG_VARIABLES.items():
        value = int(getattr(sys.flags, name, 0) or 0)
        if value > 0:
            env[variable] = str(value)
    if sys.warnoptions:
        env["PYTHONWARNINGS"] = ",".join(sys.warnoptions)
    for option in getattr(sys, "_xoptions", {}):
        if option in _X_OPTIONS:
            env[_X_OPTIONS[option]] = "1"
    return env


def flags_to_environment(python_args: list[str]) -> dict[str, str]:
    """``current_flags()`` updated with ``python_args`` (``["-O", "-Wi", "-X", "dev"]``)."""
    env = current_flags()
    warnings = [w for w in env.get("PYTHONWARNINGS", "").split(",") if w]
    args = list(python_args)
    while args:
        arg = args.pop(0)
        if arg in ("-W", "-X") and args:
            arg += args.pop(0)
        if arg.startswith("-W") and len(arg) > 2:
            warnings.append(arg[2:])
        elif arg.startswith("-X") and arg[2:] in _X_OPTIONS:
            env[_X_OPTIONS[arg[2:]]] = "1"
        elif arg.startswith("-") and len(arg) > 1 and all(c in _LETTERS for c in arg[1:]):
            for letter in arg[1:]:
                variable = _LETTERS[letter]
                env[variable] = str(int(env.get(variable, "0")) + 1) \
                    if letter in "Ov" else "1"
        else:
            raise ValueError(
                f"python_args {python_args!r}: {arg!r} cannot be given to shoal's workers "
                "(they are ranks that shoal run starts); use interpreter flags with an "
                "environment variable: -B -d -O -OO -P -s -u -v -W... -X dev -X utf8")
    if warnings:
        env["PYTHONWARNINGS"] = ",".join(warnings)
    return env
