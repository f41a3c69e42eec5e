"""The Python half of the browser volunteer, run inside Pyodide by ``volunteer-worker.mjs``.

It makes ``import shoal`` work in the browser with the two names a stream module uses there,
``@shoal.stream.processor`` and ``shoal.report(...)``, loads the stream's module from the source
the coordinator sent, and runs one item at a time, turning every outcome into the JSON of a
``result`` message. The worker only moves text between the WebSocket and these functions, so
every Python value crosses the JS boundary as a JSON string, never as a proxy to leak.

This file is served to browsers; it is not imported by shoal itself.
"""

from __future__ import annotations

import inspect
import json
import linecache
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

# An item's result as JSON is at most this many bytes (shoal.stream.protocol.MAX_VALUE, the same
# for every volunteer; this file is served alone, so it is written here again).
MAX_VALUE = 16 << 20

# Built once: json.dumps with any option builds a new encoder per call, a third of the time an
# item costs in Pyodide for a trivial function.
_ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode

PYODIDE_NOTE = (
    "the browser volunteer runs Pyodide offline, which has the Python standard library only "
    "(no numpy or other packages); Python volunteers (local processes, `shoal volunteer`) "
    "can run it"
)


class _Loaded:
    """The stream's function once the module is loaded; None until then."""

    function: Callable[..., Any] | None = None
    callback: bool = False  # written as Pando's function (x, cb)
    pending: tuple[Any, float] | None = None  # an async processor's awaitable, and its start


class CallbackError(Exception):
    """What a callback-style processor passed to ``cb`` as its error, when that is not an
    exception (as shoal.stream.processor.CallbackError)."""


def _takes_callback(function: Any) -> bool:
    """``f(x, cb)``: two positional parameters without defaults (as shoal.stream.processor)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 2 and all(p.default is p.empty for p in positional)


def _answer(error: Any, result: Any) -> Any:
    if error is not None:
        if isinstance(error, BaseException):
            raise error
        raise CallbackError(str(error))
    return result


async def _later(future: Any) -> Any:
    """The result a callback-style processor gives ``cb`` after it returned (from the event
    loop: Pyodide has no threads)."""
    error, result = await future
    return _answer(error, result)


class _Reported:
    """Sums of ``shoal.report`` calls not yet sent (as in shoal.stream.reporting)."""

    cpu_time = 0.0
    transfer_time = 0.0
    items = 0
    units = 0.0
    unit = ""  # the name of what is counted, when given
    calls = 0


# Same mark as shoal.stream.processor, so a module behaves the same on every volunteer.
_MARK = "__shoal_stream_processor__"


def processor(function: Any) -> Any:
    """``@shoal.stream.processor``: mark the module's processor function."""
    if not callable(function):
        raise TypeError("@shoal.stream.processor decorates a function")
    setattr(function, _MARK, True)
    return function


MAX_FIGURE = 1e12  # as shoal.stream.protocol.MAX_FIGURE
MAX_UNIT = 64  # characters of a unit's name


def report(*, cpu_time: float = 0.0, transfer_time: float = 0.0, items: int = 0,
           units: float | str = 0.0) -> None:
    """``shoal.report(...)``: add to the sums the worker sends as a ``report`` message.
    ``units`` is a number of units, or the name of what ``items`` counts (``"Gizmos"``)."""
    unit = ""
    if isinstance(units, str):
        unit = units.strip()
        if not unit or len(unit) > MAX_UNIT or not unit.isprintable():
            raise ValueError(f"shoal.report: units must be a number, or a name of 1 to "
                             f"{MAX_UNIT} printable characters, not {units!r}")
        units = items
    for name, value in (("cpu_time", cpu_time), ("transfer_time", transfer_time),
                        ("items", items), ("units", units)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not 0 <= value <= MAX_FIGURE:
            raise ValueError(f"shoal.report: {name} must be a number from 0 to "
                             f"{MAX_FIGURE:g}, not {value!r}")
    _Reported.cpu_time += cpu_time
    _Reported.transfer_time += transfer_time
    _Reported.items += int(items)
    _Reported.units += units
    _Reported.unit = unit or _Reported.unit
    _Reported.calls += 1


def take_report() -> str:
    """The JSON of a ``report`` message with the sums since the last one, or ``""`` if
    ``shoal.report`` was not called since."""
    if not _Reported.calls:
        return ""
    message = {"type": "report", "cpu_time": float(_Reported.cpu_time),
               "transfer_time": float(_Reported.transfer_time), "items": _Reported.items,
               "units": float(_Reported.units)}
    if _Reported.unit:
        message["unit"] = _Reported.unit
    _Reported.cpu_time = _Reported.transfer_time = _Reported.units = 0.0
    _Reported.items = _Reported.calls = 0
    return json.dumps(message)


def _unavailable(name: str) -> Any:
    raise AttributeError(
        f"shoal.{name} is not available in a browser volunteer: only "
        "shoal.stream.processor and shoal.report are")


def install_shim() -> None:
    """Register the modules ``shoal`` and ``shoal.stream`` for stream modules to import."""
    stream = types.ModuleType("shoal.stream", "shoal's stream face, as seen in a browser")
    stream.processor = processor  # type: ignore[attr-defined]
    stream.report = report  # type: ignore[attr-defined]
    shoal = types.ModuleType("shoal", "shoal, as seen from a browser volunteer")
    shoal.__path__ = []  # a package, so that `import shoal.stream` finds sys.modules' entry
    shoal.stream = stream  # type: ignore[attr-defined]
    shoal.report = report  # type: ignore[attr-defined]
    shoal.__getattr__ = _unavailable  # type: ignore[method-assign]
    sys.modules["shoal"] = shoal
    sys.modules["shoal.stream"] = stream


def _failure(error: BaseException, *, skip_frames: int = 1, note: str = "") -> dict[str, Any]:
    """The ``ok: false`` half of a result: ``Type: message`` and the traceback from the user's
    code on (our own frames skipped)."""
    tb = error.__traceback__
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    text = "".join(traceback.format_exception(type(error), error, tb))
    message = f"{type(error).__name__}: {error}"
    if note:
        message = f"{message} ({note})"
    return {"ok": False, "error": message, "traceback": text}


def load_module(name: str, source: str, function_name: str) -> str:
    """Run the stream module's source as module ``name`` and find its function.

    Returns ``""`` when ready, else the JSON of a failure (``error``/``traceback``) that says
    what went wrong, with a plain hint when the module imports what Pyodide does not have.
    """
    _Loaded.function = None
    filename = f"{name}.py"
    # Tracebacks then quote the user's lines, as they would on a process volunteer.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except ImportError as error:
        missing = getattr(error, "name", None) or "a module"
        failure = _failure(error, note=f"{name} imports {missing}: {PYODIDE_NOTE}")
        return json.dumps(failure)
    except BaseException as error:
        return json.dumps(_failure(error, note=f"importing {name} failed in the browser"))
    function = getattr(module, function_name, None)
    if not callable(function):
        message = f"{name} has no function named {function_name!r}"
        return json.dumps({"ok": False, "error": f"AttributeError: {message}",
                           "traceback": message})
    _Loaded.function = function
    _Loaded.callback = _takes_callback(function)
    return ""


def run_item(value_json: str) -> str:
    """Call the function on one JSON value; the JSON of the result message's body.

    Synchronous, so that an ordinary function costs no trip through Pyodide's event loop.
    When the function returns an awaitable (an ``async def`` processor), this returns
    ``""`` and the worker awaits :func:`finish_pending` for the result.
    """
    function = _Loaded.function
    if function is None:
        raise RuntimeError("run_item before load_module succeeded")
    value = json.loads(value_json)
    started = time.process_time()
    try:
        call = _call_with_callback if _Loaded.callback else _plain_call
        result = call(function, value)
    except BaseException as error:  # sys.exit() too: whatever an item raises fails that item
        return json.dumps(_failure(error, skip_frames=2))  # run_item, the call
    if inspect.isawaitable(result):
        _Loaded.pending = (result, started)
        return ""
    return _success(result, started)


def _plain_call(function: Callable[..., Any], value: Any) -> Any:
    return function(value)


def _call_with_callback(function: Callable[..., Any], value: Any) -> Any:
    """Pando's ``function (x, cb)``: the result given to ``cb`` at once, or an awaitable of
    the one it is given later (an event loop callback: asyncio's call_later, a JS timer)."""
    answered: list[tuple[Any, Any]] = []
    waiting: list[Any] = []

    def cb(error: Any = None, result: Any = None) -> None:
        if answered:
            return   # used once
        answered.append((error, result))
        if waiting and not waiting[0].done():
            waiting[0].set_result((error, result))

    function(value, cb)
    if answered:
        return _answer(*answered[0])
    import asyncio

    waiting.append(asyncio.get_event_loop().create_future())
    return _later(waiting[0])


async def finish_pending() -> str:
    """Await the awaitable the last :func:`run_item` returned ``""`` for; as run_item."""
    awaitable, started = _Loaded.pending or (None, 0.0)
    _Loaded.pending = None
    if awaitable is None:
        raise RuntimeError("finish_pending without a pending item")
    try:
        result = await awaitable
    except BaseException as error:
        return json.dumps(_failure(error))
    return _success(result, started)


def _success(result: Any, started: float) -> str:
    # The text starts with {"ok":true exactly when the item succeeded: the worker counts on it.
    cpu_time = time.process_time() - started
    try:
        text = _ENCODE({"ok": True, "value": result, "cpu_time": cpu_time})
    except (TypeError, ValueError) as error:
        message = f"the result {type(result).__name__} cannot be sent as JSON: {error}"
        return json.dumps({"ok": False, "error": f"TypeError: {message}",
                           "traceback": message})
    if len(text) > MAX_VALUE:   # roughly the value's size: within a few dozen bytes
        size = len(_ENCODE(result))
        if size > MAX_VALUE:
            message = (f"the result is {size:,} bytes as JSON, over the limit of "
                       f"{MAX_VALUE >> 20} MiB for one item's value or result "
                       "(shoal.stream.protocol.MAX_VALUE)")
            return json.dumps({"ok": False, "error": f"ResultTooLarge: {message}",
                               "traceback": ""})
    return text
