"""Where outcomes go: stdout in the order the coordinator releases them.

A result is one line (see :mod:`shoal.stream.values`).  A failed item's traceback goes to
stderr, whatever the ``--on-error`` policy; with ``report`` a line also takes the item's
place in the output: ``{"error": ..., "item": ...}`` with ``--json``, else
``error: <Type>: <message>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, BinaryIO, TextIO

from shoal.stream.ledger import Outcome
from shoal.stream.values import format_result

_INT = frozenset({int})
_STR = frozenset({str})


SHOWN = 200   # characters of a failed item shown on stderr


def describe_failure(outcome: Outcome) -> str:
    item = json.dumps(outcome.item) if outcome.item is not None else "?"
    if len(item) > SHOWN:   # the item may be megabytes: its start says which one it is
        item = f"{item[:SHOWN]}... {len(item):,} characters"
    text = f"shoal stream: item {outcome.id} ({item}) failed: {outcome.error}\n"
    if outcome.traceback:
        text += outcome.traceback if outcome.traceback.endswith("\n") else outcome.traceback + "\n"
    return text


class LinesSink:
    def __init__(self, out: BinaryIO | None = None, err: TextIO | None = None, *,
                 as_json: bool = False) -> None:
        self.out = out if out is not None else sys.stdout.buffer
        self.err = err if err is not None else sys.stderr
        self.as_json = as_json
        self.emitted = 0
        self.closed = False
        self._pending: list[str] = []

    def emit(self, outcome: Outcome) -> None:
        self._pending.append(format_result(outcome.value, self.as_json))
        self.emitted += 1

    def emit_run(self, start: int, values: list[Any]) -> None:
        """Ok results of consecutive items (the coordinator's common case)."""
        as_json = self.as_json
        kinds = set(map(type, values))
        if kinds <= _INT:
            self._pending.extend(map(str, values))   # what format_result says, item by item
        elif kinds <= _STR and not as_json:
            self._pending.extend(values)
        else:
            self._pending.extend([format_result(value, as_json) for value in values])
        self.emitted += len(values)

    def fail(self, outcome: Outcome, policy: str) -> None:
        self.flush()  # the traceback comes after the results before it
        self.err.write(describe_failure(outcome))
        self.err.flush()
        if policy == "report":
            if self.as_json:
                line: Any = json.dumps({"error": outcome.error, "item": outcome.item})
            else:
                line = f"error: {outcome.error}"
            self._pending.append(line)
            self.emitted += 1

    def flush(self) -> None:
        if not self._pending:
            return
        data = ("\n".join(self._pending) + "\n").encode()
        self._pending.clear()
        if self.closed:
            return
        try:
            self.out.write(data)
            self.out.flush()
        except BrokenPipeError:
            # `shoal stream ... | head`: the reader is gone, which ends the stream (the
            # coordinator sees `closed`).  Point fd 1 at /dev/null so that the interpreter's
            # own flush at exit does not complain about the same pipe.
            self.closed = True
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.out.fileno())
                os.close(devnull)
