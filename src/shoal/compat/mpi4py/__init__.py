"""``mpi4py`` under ``shoal run``: the package the import hook maps ``mpi4py`` to.

``mpi4py.MPI`` is :mod:`shoal.spmd.mpi` itself (the hook maps the name, nothing is
copied), ``mpi4py.rc`` is :data:`shoal.spmd.environment.rc`, and the pure-Python parts
(``util.pkl5``, ``util.dtlib``, ``futures``, ``run``) are shoal's own, written against
mpi4py's documented behaviour.  There is no C API: :func:`get_include` names a header
that stops a compiler with that message.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shoal.spmd.environment import Rc as Rc
from shoal.spmd.environment import rc as rc

# The mpi4py release whose API this package mirrors (and whose test suite checks it).
__version__ = "4.1.2"
__all__ = ["MPI"]  # mpi4py.MPI: supplied by __getattr__ and the import hook

sys.modules[__name__ + ".rc"] = rc  # type: ignore[assignment]  # `import mpi4py.rc`, as mpi4py

_HERE = Path(__file__).resolve().parent


def get_include() -> str:
    """The folder of ``mpi4py/mpi4py.h``: here a header that says there is no C API."""
    return str(_HERE / "include")


def get_config() -> dict[str, str]:
    """MPI build information: none, shoal links no MPI library."""
    return {}


def profile(name: str | os.PathLike[str] | bytes, *,
            path: Any = None) -> None:
    """Load a profiling library (``LD_PRELOAD``-style, ``RTLD_GLOBAL``), as mpi4py does.

    shoal calls no MPI C functions, so a PMPI profiler sees nothing; the library is still
    loaded, and the errors are mpi4py's: ``ValueError`` when it is not found, a
    ``UserWarning`` when it cannot be loaded.
    """
    import ctypes

    folders: Iterable[Any]
    if path is None:
        folders = [""]
    elif isinstance(path, (str, bytes, os.PathLike)):
        text = os.fsdecode(path)
        folders = text.split(os.pathsep) if isinstance(path, (str, bytes)) else [text]
    else:
        folders = list(path)
    wanted = os.fsdecode(name)
    forms = [("", ""), ("lib", ".so")] if os.name == "posix" else [("", "")]
    found = None
    for folder in map(os.fsdecode, folders):
        for prefix, suffix in forms:
            candidate = Path(folder) / f"{prefix}{wanted}{suffix}"
            if candidate.is_file():
                found = str(candidate.resolve())
                break
        if found:
            break
    if found is None:
        raise ValueError(f"profiler {wanted!r} not found")
    try:
        handle = ctypes.CDLL(found, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
    except OSError as exc:
        warnings.warn(str(exc), UserWarning, stacklevel=2)
        return
    registry: list[tuple[str, tuple[Any, str]]] = vars(profile).setdefault("registry", [])
    registry.append((wanted, (handle, found)))


def __getattr__(name: str) -> Any:
    # `from mpi4py import MPI` looks for `<this module's name>.MPI`, which is not where
    # the MPI namespace lives: hand it over (importing it, as `import mpi4py.MPI` would).
    if name == "MPI":
        import importlib

        return importlib.import_module("shoal.spmd.mpi")
    raise AttributeError(f"module 'mpi4py' has no attribute {name!r}")
