"""What else the fork server imports for a program's ranks, beyond its own ``PRELOAD``.

numpy costs each rank that imports it some 40 ms, and as much CPU again in its BLAS
threads; shoal's runtime imports it only when a program needs it (a buffer reduction,
``MPI.buffer``).  The server imports it once for every rank where the program's files
name it, read as text (the script, a folder's ``__main__.py``, the file ``-m module``
runs, found on ``sys.path`` without importing anything, and ``.py`` files among the
arguments, as in ``-m mpi4py.futures prog.py``), and every module ``SHOAL_PRELOAD``
lists ("scipy,pandas"): modules that read nothing of the rank when imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

PRELOAD_VAR = "SHOAL_PRELOAD"
SCANNED = ("numpy",)
SCAN_BYTES = 1 << 20   # of each program file


def program_preloads(target: Sequence[str], listed: str = "") -> list[str]:
    """The program's modules the server imports beside its own ``PRELOAD``: those of
    :data:`SCANNED` that its files name (the script, a folder's ``__main__.py``, the file
    of ``-m module``, and ``.py`` files among its arguments, as in ``-m mpi4py.futures
    prog.py``), and the comma-separated ``listed``."""
    names = [name.strip() for name in listed.split(",") if name.strip()]
    for path in _program_files(target):
        try:
            with open(path, "rb") as file:
                text = file.read(SCAN_BYTES)
        except OSError:
            continue  # a missing file: the rank says so itself
        names.extend(name for name in SCANNED
                     if name.encode() in text and name not in names)
    return names


def _program_files(target: Sequence[str]) -> list[str]:
    if target[:1] == ["-m"]:
        module = _module_file(target[1]) if len(target) > 1 else None
        first, rest = [module] if module else [], target[2:]
    else:
        first, rest = list(target[:1]), target[1:]
    files = [os.path.join(path, "__main__.py") if os.path.isdir(path) else path
             for path in first]
    return files + [word for word in rest if word.endswith(".py")]


def _module_file(name: str) -> str | None:
    """The file ``python -m name`` runs, found without importing anything (a package's
    ``__init__`` may do anything): None where it is not a plain file on ``sys.path``."""
    from importlib.machinery import PathFinder

    path = None
    spec = None
    for part in name.split("."):
        if spec is not None and path is None:
            return None  # a module has no submodules
        spec = PathFinder.find_spec(part, path)
        if spec is None:
            return None
        path = spec.submodule_search_locations
    if spec is None or not spec.origin or not spec.has_location:
        return None
    if path is not None:  # a package: python -m runs its __main__
        return os.path.join(os.path.dirname(spec.origin), "__main__.py")
    return spec.origin
