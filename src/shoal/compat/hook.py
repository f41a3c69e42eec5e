"""The import hook that makes ``mpi4py`` mean shoal inside ``shoal run``.

The rank bootstrap calls :func:`install_for_rank`.  Under ``shoal run`` with shoal's own
runtime it puts :class:`AliasFinder` first on ``sys.meta_path``, so that, whether or not
mpi4py is installed,

* ``mpi4py`` is :mod:`shoal.compat.mpi4py` and ``mpi4py.X`` is ``shoal.compat.mpi4py.X``;
* ``mpi4py.MPI`` is :mod:`shoal.spmd.mpi`, the one MPI namespace (``from shoal import
  MPI`` gives the same classes and objects);
* ``python -m mpi4py.futures`` and ``python -m mpi4py`` run shoal's ``__main__`` modules.

A name maps to the very module object of its target (imported under its own name
first), so nothing is loaded twice and ``mpi4py.MPI.COMM_WORLD is shoal.MPI.COMM_WORLD``.

``shoal run --real-mpi4py`` (``SHOAL_MPI4PY=0``) leaves ``mpi4py`` to the installed
package instead; then the first import of the real ``mpi4py.MPI`` prints one warning
line (rank 0 of a job of several ranks): each rank starts its own one-process MPI world.
Outside ``shoal run`` (no ``SHOAL_RANK``) and under a real ``mpiexec`` nothing is hooked.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from types import CodeType, ModuleType

ENV_VAR = "SHOAL_MPI4PY"
_OFF = ("0", "off", "no", "false", "real")
_ON = ("", "1", "on", "yes", "true", "shoal")
PACKAGE = "mpi4py"
TARGET = "shoal.compat.mpi4py"
# Names that map somewhere other than under TARGET.
SPECIAL = {"mpi4py.MPI": "shoal.spmd.mpi"}


def target_of(fullname: str) -> str | None:
    """The shoal module that ``fullname`` names, or None when it is not mpi4py's."""
    if fullname in SPECIAL:
        return SPECIAL[fullname]
    if fullname == PACKAGE:
        return TARGET
    if fullname.startswith(PACKAGE + "."):
        return TARGET + fullname[len(PACKAGE):]
    return None


class AliasLoader(importlib.abc.Loader):
    """Loads a name as an existing module: the target's own object, imported by its name."""

    def __init__(self, target: str, target_spec: importlib.machinery.ModuleSpec) -> None:
        self.target = target
        self.target_spec = target_spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        # The import system just set the alias's spec on the module; give it back its own.
        own = sys.modules[self.target].__spec__
        if own is not None:
            module.__spec__ = own
        if module.__name__ == TARGET:
            sys.modules.setdefault(PACKAGE + ".rc", module.rc)

    # runpy (``-m mpi4py.futures``) asks the loader for the code.
    def get_code(self, fullname: str) -> CodeType | None:
        loader = self.target_spec.loader
        get_code = getattr(loader, "get_code", None)
        return get_code(self.target) if get_code is not None else None

    def is_package(self, fullname: str) -> bool:
        return self.target_spec.submodule_search_locations is not None

    def get_source(self, fullname: str) -> str | None:
        get_source = getattr(self.target_spec.loader, "get_source", None)
        return get_source(self.target) if get_source is not None else None


class AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``mpi4py`` and its submodules in shoal (see the module's docstring)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        name = target_of(fullname)
        if name is None:
            return None
        try:
            target_spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            return None
        if target_spec is None:
            return None
        is_package = target_spec.submodule_search_locations is not None
        spec = importlib.machinery.ModuleSpec(
            fullname, AliasLoader(name, target_spec), origin=target_spec.origin,
            is_package=is_package)
        if is_package:
            spec.submodule_search_locations = list(target_spec.submodule_search_locations or [])
        return spec


class RealMpiWarner(importlib.abc.MetaPathFinder):
    """Finds nothing; says once, when the real ``mpi4py.MPI`` is imported, what that means."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.warned = False

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> None:
        if fullname == "mpi4py.MPI" and not self.warned:
            self.warned = True
            sys.stderr.write(
                f"shoal run: warning: this program imports the real mpi4py ({ENV_VAR}=0 or "
                f"--real-mpi4py), so its {self.size} ranks are {self.size} separate "
                "one-process MPI worlds (COMM_WORLD.size == 1 in each); drop the option to "
                "use shoal's mpi4py, or run it with `shoal run --mpi`\n")
            sys.stderr.flush()
        return None


def switched_off(environ: Mapping[str, str]) -> bool:
    """Whether ``SHOAL_MPI4PY`` turns the hook off; a value it does not know is an error."""
    from shoal.errors import ConfigurationError

    value = environ.get(ENV_VAR, "").strip().lower()
    if value in _OFF:
        return True
    if value in _ON:
        return False
    raise ConfigurationError(
        f"{ENV_VAR}={environ[ENV_VAR]!r}: use {ENV_VAR}=1 (mpi4py is shoal's, the default) "
        f"or {ENV_VAR}=0 (the installed mpi4py)")


_mode: str | None = None


def install_for_rank(environ: Mapping[str, str] | None = None) -> str:
    """Install what this rank needs; return ``"shoal"``, ``"real"`` or ``"none"``.

    ``"none"`` outside ``shoal run``; ``"real"`` when mpi4py is left to the installed
    package (switched off, or ``SHOAL_BACKEND=mpi``), with the warning finder on rank 0
    of a job of several ranks; ``"shoal"`` with the alias finder.  A second call changes
    nothing.  Raises ``ConfigurationError`` for a bad ``SHOAL_MPI4PY``.
    """
    global _mode
    if _mode is not None:
        return _mode
    env = os.environ if environ is None else environ
    if "SHOAL_RANK" not in env:
        _mode = "none"
        return _mode
    from shoal.spmd.backend import use_real_mpi

    if switched_off(env) or use_real_mpi():
        size = env.get("SHOAL_SIZE", "1")
        if size.isdigit() and int(size) > 1 and env.get("SHOAL_RANK") == "0":
            sys.meta_path.insert(0, RealMpiWarner(int(size)))
        _mode = "real"
    else:
        sys.meta_path.insert(0, AliasFinder())
        _mode = "shoal"
    return _mode
