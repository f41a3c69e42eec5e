"""``@shoal.stream.processor`` and finding a module's processor function.

A module's processor is the one function decorated with :func:`processor`, else a
function named ``process``.  Volunteers on this machine import the module the way the
coordinator did (by path or dotted name); volunteers elsewhere receive its source text and
run it as a module of the same name, so a processor must live in one self-contained file
(it may import anything installed where it runs).

A processor takes one value and returns its result, or takes a value and a callback, as
Pando's ``function (x, cb)``: ``def process(x, cb)`` calls ``cb(None, result)``, or
``cb(error)`` to fail the item, at once or later (from another thread); see
:func:`callable_of`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__shoal_stream_processor__"
DEFAULT_NAME = "process"


def processor(function: F) -> F:
    """Mark ``function`` as the module's processor: one value in, one result out."""
    if not callable(function):
        raise TypeError("@shoal.stream.processor decorates a function")
    setattr(function, _MARK, True)
    return function


@dataclass(frozen=True)
class Processor:
    """A loaded processor: the function and what a remote volunteer needs to rebuild it."""

    reference: str          # what the user typed: a path to a .py file or a dotted module name
    module_name: str
    source: str
    function_name: str
    function: Callable[[Any], Any]


class CallbackError(Exception):
    """What a callback-style processor passed to ``cb`` as its error, when that is not an
    exception itself (Pando's ``cb('it went wrong')``)."""


def takes_callback(function: Callable[..., Any]) -> bool:
    """Whether ``function`` is written ``f(x, cb)``: two positional parameters without
    defaults (a second one with a default is an ordinary processor's option)."""
    import inspect  # here: `import shoal.stream` stays cheap

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 2 and all(p.default is p.empty for p in positional)


def callable_of(function: Callable[..., Any]) -> Callable[[Any], Any]:
    """A processor as a function of one value.

    A callback-style one (:func:`takes_callback`) is called with a ``cb`` and waited for:
    ``cb(None, result)`` gives the result, ``cb(error)`` fails the item (with ``error``
    raised, or a :class:`CallbackError` of its text), whether ``cb`` is called before the
    function returns or later from another thread; calls after the first are ignored.
    """
    if not takes_callback(function):
        return function
    import threading

    def call(value: Any) -> Any:
        answered = threading.Event()
        answer: list[tuple[Any, Any]] = []
        lock = threading.Lock()

        def cb(error: Any = None, result: Any = None) -> None:
            with lock:
                if answer:
                    return   # answered already: used once, as results are
                answer.append((error, result))
            answered.set()

        function(value, cb)
        answered.wait()
        error, result = answer[0]
        if error is not None:
            if isinstance(error, BaseException):
                raise error
            raise CallbackError(str(error))
        return result

    call.__name__ = getattr(function, "__name__", "process")
    call.__wrapped__ = function  # type: ignore[attr-defined]
    return call


def find_function(module: types.ModuleType) -> str:
    """The name of the module's processor function; ProcessorError if there is none."""
    from shoal.stream.errors import ProcessorError

    marked = [name for name, value in vars(module).items()
              if callable(value) and getattr(value, _MARK, False)
              and getattr(value, "__module__", module.__name__) == module.__name__]
    if len(marked) > 1:
        raise ProcessorError(f"module {module.__name__!r} marks several functions with "
                             f"@shoal.stream.processor ({', '.join(sorted(marked))}); keep one")
    if marked:
        return marked[0]
    if callable(getattr(module, DEFAULT_NAME, None)):
        return DEFAULT_NAME
    raise ProcessorError(f"module {module.__name__!r} has no processor: decorate one function "
                         "with @shoal.stream.processor or name it `process`")


def import_module(reference: str) -> types.ModuleType:
    """The module named by a path to a .py file or a dotted name (ProcessorError if not)."""
    from shoal.stream.errors import ProcessorError

    path = Path(reference)
    try:
        if reference.endswith(".py") or path.is_file():
            if not path.is_file():
                raise ProcessorError(f"no such module file: {reference}")
            name = path.stem
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ProcessorError(f"cannot import {reference}: not a Python file")
            module = importlib.util.module_from_spec(spec)
            # The module's folder is importable, as it would be for `python file.py`.
            folder = str(path.resolve().parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(reference)
    except ProcessorError:
        raise
    except ModuleNotFoundError as exc:
        raise ProcessorError(f"cannot import {reference!r}: {exc} (give a path to a .py file "
                             "or a module name importable from here)") from None
    except BaseException as exc:  # the module's own code failed: say where
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ProcessorError(f"importing {reference!r} failed: "
                             f"{type(exc).__name__}: {exc}") from None


def load(reference: str) -> Processor:
    """Import the module named by ``reference`` (path or dotted name) and find its processor."""
    module = import_module(reference)
    function_name = find_function(module)
    import inspect  # here, not at the top: `import shoal.stream` must stay cheap

    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        source = ""  # a compiled module: only volunteers on this machine can run it
    return Processor(reference, module.__name__, source, function_name,
                     callable_of(getattr(module, function_name)))


def from_source(module_name: str, source: str, function_name: str) -> Callable[[Any], Any]:
    """Rebuild a processor sent by a coordinator (a volunteer on another machine)."""
    from shoal.stream.errors import ProcessorError

    module = types.ModuleType(module_name)
    module.__file__ = f"<shoal stream {module_name}>"
    sys.modules[module_name] = module
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ProcessorError(f"the stream's module {module_name!r} does not run here: "
                             f"{type(exc).__name__}: {exc}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ProcessorError(f"the stream's module {module_name!r} has no function "
                             f"{function_name!r}")
    return callable_of(function)
