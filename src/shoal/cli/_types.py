"""Argument types shared by the subcommands: one wording for each kind of bad value.

(The leading underscore keeps this module out of the subcommand list.)
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type[int] | type[float]) -> int | float | None:
    try:
        return kind(text)
    except ValueError:
        return None


def port(text: str) -> int:
    """A port to listen on: 0 asks the system for a free one."""
    value = _number(text, int)
    if value is None or not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, not {text!r}")
    return int(value)


def remote_port(text: str) -> int:
    """A port to connect to: 0 makes no sense there."""
    value = _number(text, int)
    if value is None or not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, not {text!r}")
    return int(value)


def seconds(text: str) -> float:
    value = _number(text, float)
    if value is None or not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, not {text!r}")
    return float(value)


def count(text: str) -> int:
    """A whole number that may be 0 (workers to start, an offset)."""
    value = _number(text, int)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(value)


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return int(value)
