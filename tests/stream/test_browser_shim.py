"""The Python half of the browser volunteer (static/shoal_browser.py), run here under CPython.

Pyodide runs the same file; the browser tests prove it works there end to end, these pin down
what each outcome looks like on the wire, quickly. The shim replaces ``shoal`` in
``sys.modules`` (in the browser that is the point); here every test puts the real one back.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import shoal.stream.web

SHIM = Path(shoal.stream.web.__file__).parent / "static" / "shoal_browser.py"


@pytest.fixture
def shim(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    for name in ("shoal", "shoal.stream", "squares", "needs_numpy", "broken"):
        if name in sys.modules:
            monkeypatch.setitem(sys.modules, name, sys.modules[name])
        else:
            monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ among served files
    spec = importlib.util.spec_from_file_location("shoal_browser", SHIM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install_shim()
    yield module


def run(shim: types.ModuleType, value: object) -> dict[str, object]:
    """What the worker does with one item."""
    text = shim.run_item(json.dumps(value))
    if text == "":
        text = asyncio.run(shim.finish_pending())
    return dict(json.loads(text))


SQUARES = """
import shoal

@shoal.stream.processor
def square(x):
    if x == 13:
        raise ValueError("unlucky " + str(x))
    shoal.report(cpu_time=0.5, items=1, units=x)
    return x * x
"""


def test_a_decorated_function_computes_values_and_reports_its_work(shim: types.ModuleType) -> None:
    assert shim.load_module("squares", SQUARES, "square") == ""
    assert run(shim, 7) == {"ok": True, "value": 49, "cpu_time": pytest.approx(0, abs=1)}
    run(shim, 3)
    report = json.loads(shim.take_report())
    assert report == {"type": "report", "cpu_time": 1.0, "transfer_time": 0.0, "items": 2,
                      "units": 10.0}
    assert shim.take_report() == ""  # sums restart after each report


def test_a_raising_item_is_a_failed_result_with_the_users_traceback(
        shim: types.ModuleType) -> None:
    shim.load_module("squares", SQUARES, "square")
    result = run(shim, 13)
    assert result["ok"] is False
    assert result["error"] == "ValueError: unlucky 13"
    traceback = str(result["traceback"])
    assert 'File "squares.py", line 7, in square' in traceback
    assert 'raise ValueError("unlucky " + str(x))' in traceback  # the user's line, quoted
    assert "run_item" not in traceback  # the shim's own frame is not the user's business
    assert run(shim, 2)["value"] == 4  # and the next item runs as usual


def test_a_module_importing_what_pyodide_lacks_gets_a_plain_explanation(
        shim: types.ModuleType) -> None:
    failure = json.loads(shim.load_module(
        "needs_numpy", "import shoal_no_such_package\ndef process(x):\n    return x\n", "process"))
    assert failure["ok"] is False
    assert failure["error"].startswith("ModuleNotFoundError: No module named "
                                       "'shoal_no_such_package'")
    assert "standard library only" in failure["error"]
    assert "Python volunteers (local processes, `shoal volunteer`) can run it" in failure["error"]


def test_a_result_that_is_not_json_is_a_failed_result(shim: types.ModuleType) -> None:
    shim.load_module("broken", "def process(x):\n    return {x} if x else float('nan')\n",
                     "process")
    assert "cannot be sent as JSON" in str(run(shim, 1)["error"])
    assert "cannot be sent as JSON" in str(run(shim, 0)["error"])  # NaN is not JSON either


def test_async_functions_are_awaited(shim: types.ModuleType) -> None:
    shim.load_module("broken", "async def process(x):\n    if x == 0:\n        raise KeyError(x)\n"
                     "    return [x, x]\n", "process")
    assert run(shim, "a")["value"] == ["a", "a"]
    failure = run(shim, 0)
    assert failure["error"] == "KeyError: 0"
    assert str(failure["traceback"]).startswith(
        'Traceback (most recent call last):\n  File "broken.py", line 3, in process')


def test_the_shim_offers_only_what_works_in_a_browser(shim: types.ModuleType) -> None:
    import shoal as browser_shoal

    assert browser_shoal is sys.modules["shoal"]
    assert browser_shoal.stream.processor is shim.processor
    with pytest.raises(AttributeError, match="not available in a browser volunteer"):
        browser_shoal.rank  # noqa: B018
    with pytest.raises(ValueError, match="cpu_time must be a number from 0 to"):
        browser_shoal.report(cpu_time=-1)
    failure = json.loads(shim.load_module("broken", "x = 1\n", "process"))
    assert failure["error"] == "AttributeError: broken has no function named 'process'"


CALLBACKS = """
import asyncio

def process(x, cb):
    if x == "later":
        asyncio.get_event_loop().call_later(0.01, cb, None, "done later")
    elif x == "text":
        cb("it went wrong")
    elif x == "raise":
        cb(ValueError("processing error"))
    else:
        cb(None, x * x)
        cb(None, "a second answer is ignored")
"""


def test_a_callback_style_processor_answers_at_once_or_later_from_the_event_loop(
        shim: types.ModuleType) -> None:
    assert shim.load_module("pando_style", CALLBACKS, "process") == ""

    async def item(value: object) -> dict[str, object]:
        text = shim.run_item(json.dumps(value))
        if text == "":   # answered later: the worker awaits it, as for async processors
            text = await shim.finish_pending()
        return dict(json.loads(text))

    async def scenario() -> list[dict[str, object]]:
        return [await item(v) for v in (7, "later", "text", "raise")]

    square, later, text, raised = asyncio.run(scenario())
    assert (square["ok"], square["value"]) == (True, 49)
    assert (later["ok"], later["value"]) == (True, "done later")
    assert text["error"] == "CallbackError: it went wrong"
    assert raised["error"] == "ValueError: processing error"


def test_a_unit_name_in_report_is_sent_with_the_counts(shim: types.ModuleType) -> None:
    import shoal as browser_shoal

    shim.take_report()
    browser_shoal.report(items=3, units="Gizmos")
    browser_shoal.report(items=2, units="Gizmos")
    assert json.loads(shim.take_report()) == {
        "type": "report", "cpu_time": 0.0, "transfer_time": 0.0, "items": 5, "units": 5.0,
        "unit": "Gizmos"}
    with pytest.raises(ValueError, match="units must be a number, or a name"):
        browser_shoal.report(units="")
