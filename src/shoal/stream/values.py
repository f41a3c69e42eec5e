"""How input lines become values and results become output lines.

Text mode (the default): a line that reads as an integer or a float is that number,
anything else is the string itself (without its newline).  ``--json``: every non-blank
line is one JSON value.  Results print as themselves when they are strings and as JSON
otherwise, so ``4`` prints ``4`` and ``[1, 2]`` prints ``[1, 2]`` whichever volunteer,
Python or Pyodide, computed them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


def parse_text(line: str) -> Any:
    try:
        return int(line)
    except ValueError:
        pass
    try:
        number = float(line)
    except ValueError:
        return line
    # JSON has no NaN or infinity: such lines stay strings so every volunteer can carry them.
    return number if math.isfinite(number) else line


@dataclass(frozen=True)
class BadInput:
    """An input line that is not a value (not JSON under --json).  It becomes a failed
    item, so it follows --on-error like an item whose function raised."""

    text: str
    error: str


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def parse_json(line: str, where: str) -> Any:
    """The JSON value of a line, or a :class:`BadInput` saying why it is none (NaN and
    Infinity, which Python's json would read, are none: no other volunteer could)."""
    try:
        return _DECODER.decode(line)
    except ValueError as exc:
        return BadInput(line, f"BadInput: {where} is not JSON ({exc}); drop --json to read "
                              "plain numbers and strings")


def format_result(value: Any, as_json: bool) -> str:
    kind = type(value)
    if kind is int:
        return str(value)   # what json.dumps says, five times faster
    if kind is str and not as_json:
        return value
    return json.dumps(value, separators=(", ", ": "))
