"""A futures worker: set up as the manager asks, then run tasks until told to stop.

Also what both sides share: the remote traceback a worker's exception carries back
(``exc.__cause__`` is a :class:`RemoteTraceback` naming the worker), the "sync" data
(the manager's main module, imported in workers as ``__worker__`` so that functions
defined there can be called, and ``path``, ``wdir``, ``env``, ``globals``), and the
communicator of the workers (:func:`get_comm_server`, ``futures.get_comm_workers``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import traceback
import types
from typing import Any

from shoal.spmd import mpi as _mpi

MPI: Any = _mpi
MAIN_RUN_NAME = "__worker__"

_tls = threading.local()
_importing_main: list[tuple[str | None, str | None]] = []


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (its ``__cause__``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _unwrap(exc: BaseException, text: str) -> BaseException:
    exc.__cause__ = RemoteTraceback(text)
    return exc


class _ExceptionWrapper(Exception):
    def __reduce__(self) -> Any:
        return _unwrap, self.args


def wrap_exception(exc: BaseException) -> _ExceptionWrapper:
    """``exc`` made ready to travel: its traceback as text, labelled with this worker."""
    body = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    comm = _tls.__dict__.get("comm_server") or MPI.COMM_WORLD
    header = (f"### Worker {comm.Get_rank()} of {comm.Get_size()} on "
              f"{MPI.Get_processor_name()}\n")
    exc.__cause__ = None
    exc.__context__ = None
    exc.__traceback__ = None
    return _ExceptionWrapper(exc, f'\n{header}"""\n{body}"""')


# -- the workers' communicator ------------------------------------------------------

def get_comm_server() -> Any:
    try:
        return _tls.comm_server
    except AttributeError:
        raise RuntimeError("communicator is not accessible") from None


def set_comm_server(comm: Any) -> None:
    _tls.comm_server = comm


def del_comm_server() -> None:
    _tls.__dict__.pop("comm_server", None)


# -- set up ---------------------------------------------------------------------------

def initialize(options: dict[str, Any]) -> bool:
    """Run ``initializer(*initargs, **initkwargs)`` here; False when it raised."""
    initializer = options.pop("initializer", None)
    initargs = options.pop("initargs", ())
    initkwargs = options.pop("initkwargs", {})
    if initializer is None:
        return True
    try:
        initializer(*initargs, **initkwargs)
    except BaseException:
        return False
    return True


def sync_data(options: dict[str, Any], main: bool) -> dict[str, Any]:
    """What workers need before their first task (see the module's docstring)."""
    data = {k: v for k, v in options.items()
            if k not in ("initializer", "initargs", "initkwargs")}
    data.pop("main", None)
    if "wdir" in data:
        data["wdir"] = os.fspath(data["wdir"])
    if main:
        module = sys.modules["__main__"]
        # Workers define the main module's classes as __worker__.X: let them unpickle here.
        sys.modules.setdefault(MAIN_RUN_NAME, module)
        spec = getattr(module, "__spec__", None)
        if getattr(spec, "name", None):
            data["@main:mod_name"] = spec.name  # type: ignore[union-attr]
        if getattr(module, "__file__", None):
            data["@main:mod_path"] = module.__file__
    return data


def apply_sync(data: dict[str, Any]) -> None:
    if data.get("path"):
        sys.path.extend(data["path"])
    if data.get("wdir"):
        os.chdir(data["wdir"])
    if data.get("env"):
        os.environ.update({str(k): str(v) for k, v in data["env"].items()})
    import_main(data.get("@main:mod_name"), data.get("@main:mod_path"), data.get("globals"))


def import_main(mod_name: str | None, mod_path: str | None,
                init_globals: dict[str, Any] | None) -> None:
    """Run the manager's main module here as ``__worker__`` (its ``if __name__ ==
    "__main__"`` part does not run) and make it ``__main__`` for unpickling."""
    module = types.ModuleType(MAIN_RUN_NAME)
    if init_globals:
        module.__dict__.update(init_globals)
        module.__name__ = MAIN_RUN_NAME
    previous = sys.modules.get("__main__")
    sys.modules["__main__"] = sys.modules[MAIN_RUN_NAME] = module
    _importing_main.append((mod_name, mod_path))
    try:
        code = None
        if mod_name and mod_name != "__main__":  # the main program was `-m mod_name`
            spec = importlib.util.find_spec(mod_name)
            if spec is not None and spec.submodule_search_locations is not None:
                spec = importlib.util.find_spec(mod_name + ".__main__")
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot find the main module {mod_name!r} in a worker")
            code = spec.loader.get_code(spec.name)  # type: ignore[attr-defined]
            module.__dict__.update(__file__=spec.origin, __package__=spec.parent)
        elif mod_path and os.path.isfile(mod_path):
            if not sys.flags.safe_path and sys.path:
                sys.path[0] = os.path.realpath(os.path.dirname(mod_path))
            with open(mod_path, "rb") as handle:
                code = compile(handle.read(), mod_path, "exec", dont_inherit=True)
            module.__dict__.update(__file__=mod_path, __package__=None)
        if code is not None:
            module.__dict__.setdefault("__builtins__", __builtins__)
            exec(code, module.__dict__)
        sys.modules["__main__"] = sys.modules[MAIN_RUN_NAME] = module
    except BaseException:
        if previous is not None:
            sys.modules["__main__"] = previous
        raise
    finally:
        _importing_main.pop()


def check_recursive_spawn() -> None:
    """A worker importing the main module must not start workers of its own."""
    if not _importing_main:
        return
    name, path = _importing_main[-1]
    where = f"main module {name!r}" if name else f"main script {path!r}"
    raise RuntimeError(
        f"the {where} started an MPIPoolExecutor while a worker was importing it; "
        "guard the program's main part with `if __name__ == '__main__':`")


# -- serving --------------------------------------------------------------------------

def _call(task: Any) -> tuple[Any, Any]:
    _, fn, args, kwargs = task
    try:
        return fn(*args, **kwargs), None
    except BaseException as exc:
        return None, wrap_exception(exc)


def serve(server: Any) -> None:
    """Answer the manager's messages until ``None`` (see :mod:`._core`)."""
    while True:
        tag, item = server.receive()
        if item is None:
            return
        if isinstance(item, BaseException):  # it could not be unpickled here
            server.reply(tag, (None, wrap_exception(item)))
            continue
        kind = item[0]
        if kind == "sync":
            apply_sync(item[1])
        elif kind == "init":
            _, initializer, args, kwargs = item
            server.reply(tag, initialize({"initializer": initializer, "initargs": args,
                                          "initkwargs": kwargs}))
        else:
            reply = _call(item)
            try:
                server.reply(tag, reply)
            except BaseException as exc:  # the result could not be pickled
                server.reply(tag, (None, wrap_exception(exc)))
            del reply
