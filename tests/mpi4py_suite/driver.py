"""Run one of mpi4py's test files in this rank and record every test's outcome.

``driver.py TESTDIR MODULE OUTDIR`` is started on every rank, by ``shoal run`` or by
``mpiexec`` (it is the same program for both: under ``shoal run`` ``import mpi4py``
is shoal's, under ``mpiexec`` the real one), or on rank 0 only under ``-m mpi4py.futures``
(the other ranks are the futures' workers).  It prepares the interpreter as mpi4py's
own ``test/main.py`` does (no CuPy, no Numba; ``mpi4py.MPI`` imported before the
tests), loads ``MODULE`` from ``TESTDIR`` and runs its tests in order with unittest.

It writes ``OUTDIR/rank-<R>.jsonl`` as it goes, one JSON object a line, flushed at
once, so that what finished before a hang or a crash is known:

* ``{"loaded": [test ids]}`` once the module is loaded (or ``{"load_error": text}``);
* ``{"start": id}`` before each test (the last one is where a hang happened);
* ``{"id": ..., "outcome": "passed|failed|error|skipped", "detail": ...}`` per test;
* ``{"done": true}`` at the end.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
import types
import unittest
from typing import Any, TextIO

DETAIL_CHARS = 1500  # of a traceback kept per failing test

# At import, not in main(): futures workers import this file as their main module
# (``__worker__``) and must find the tests' module to unpickle its functions.
if os.environ.get("SHOAL_SUITE_TESTDIR"):
    sys.path.insert(0, os.environ["SHOAL_SUITE_TESTDIR"])


class Recorder(unittest.TestResult):
    """A TestResult that writes each outcome as a JSON line."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out

    def write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def _tail(self, err: Any) -> str:
        text = "".join(traceback.format_exception(*err))
        return text[-DETAIL_CHARS:]

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self.write({"start": test.id()})

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.write({"id": test.id(), "outcome": "passed"})

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self.write({"id": test.id(), "outcome": "failed", "detail": self._tail(err)})

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        # setUpClass failures come as a _ErrorHolder whose id names the class.
        self.write({"id": test.id(), "outcome": "error", "detail": self._tail(err)})

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self.write({"id": test.id(), "outcome": "skipped", "detail": reason[:200]})

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self.write({"id": test.id(), "outcome": "skipped", "detail": "expected failure"})

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self.write({"id": test.id(), "outcome": "failed", "detail": "unexpected success"})

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase,
                   err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:  # a failing subtest fails its test (reported once, at its end)
            kind = "failed" if issubclass(err[0], test.failureException) else "error"
            self.write({"id": test.id(), "outcome": kind, "detail": self._tail(err),
                        "subtest": True})


def _ids(suite: unittest.TestSuite) -> list[str]:
    found: list[str] = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            found.extend(_ids(item))
        else:
            found.append(item.id())
    return found


def _load_as_main(path: str) -> types.ModuleType:
    """Run a test file as ``__main__``, as ``python test_futures.py`` would: its tests
    look at ``__name__`` in workers and give workers globals through ``__main__``."""
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=path, __builtins__=__builtins__)
    sys.modules["__main__"] = module
    with open(path, "rb") as handle:
        code = compile(handle.read(), path, "exec", dont_inherit=True)
    run_tests = unittest.main
    unittest.main = lambda *args, **kwargs: None  # type: ignore[assignment,misc]
    try:  # its `if __name__ == "__main__": unittest.main()` is ours to do, one by one
        exec(code, module.__dict__)
    finally:
        unittest.main = run_tests  # type: ignore[misc]
    return module


def _rank() -> int:
    from mpi4py import MPI

    return int(MPI.COMM_WORLD.Get_rank())


def main(argv: list[str]) -> int:
    testdir, module, outdir = argv
    sys.dont_write_bytecode = True
    if testdir not in sys.path:
        sys.path.insert(0, testdir)
    # As mpi4py's test/main.py without --cupy/--numba: never test GPU arrays.
    sys.modules["cupy"] = None  # type: ignore[assignment]
    sys.modules["numba"] = None  # type: ignore[assignment]
    import mpi4py
    import mpi4py.MPI  # noqa: F401

    path = os.path.join(outdir, f"rank-{_rank()}.jsonl")
    with open(path, "w", encoding="utf-8") as out:
        result = Recorder(out)
        try:
            if os.environ.get("SHOAL_SUITE_AS_MAIN") == "1":
                loaded = _load_as_main(os.path.join(testdir, f"{module}.py"))
            else:
                loaded = importlib.import_module(module)
        except BaseException:  # the file does not load: none of its tests can run
            result.write({"load_error": traceback.format_exc()[-DETAIL_CHARS:]})
            return 0
        suite = unittest.defaultTestLoader.loadTestsFromModule(loaded)
        result.write({"loaded": _ids(suite)})
        suite.run(result)
        result.write({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
