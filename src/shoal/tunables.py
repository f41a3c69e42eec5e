"""shoal's numeric settings from the environment, read in one place and checked.

``SHOAL_SPIN_US`` (microseconds a waiting rank spins before it sleeps),
``SHOAL_SHM_RING_BYTES`` (the ring per pair of ranks), ``SHOAL_RENDEZVOUS_BYTES`` and
``SHOAL_SPLIT_BYTES`` (message sizes from which one copy, or two halves at once, are
used), ``SHOAL_TCP_LINGER`` (seconds an ending rank's TCP links get to send what they
hold and see the peer's end) and ``SHOAL_TASKS_SPIN_US`` (microseconds the local task
cluster's loop spins before it sleeps).  Unset or empty means the default.  A bad value is a
:class:`ConfigurationError` whose one line names the variable, what it takes and what it
got: ``shoal run`` checks every one before it starts a rank (its ``--env`` included), and
a rank reading one checks it again, for ranks started some other way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from shoal.errors import ConfigurationError

# name -> (unit, whole numbers only)
SETTINGS = {
    "SHOAL_SPIN_US": ("microseconds", False),
    "SHOAL_SHM_RING_BYTES": ("bytes", True),
    "SHOAL_RENDEZVOUS_BYTES": ("bytes", True),
    "SHOAL_SPLIT_BYTES": ("bytes", True),
    "SHOAL_TCP_LINGER": ("seconds", False),
    "SHOAL_TASKS_SPIN_US": ("microseconds", False),
}


def read(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """The value of setting ``name`` (``default`` when unset or empty); an int for the
    settings in whole numbers."""
    text = (os.environ if env is None else env).get(name, "").strip()
    if not text:
        return default
    unit, whole = SETTINGS[name]
    value: float | None
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or value < 0 or not math.isfinite(value):
        kind = "a whole number" if whole else "a number"
        raise ConfigurationError(f"{name} must be {kind} of {unit}, 0 or more, not {text!r} "
                                 "(unset it for the default)")
    return value


def check(env: Mapping[str, str]) -> None:
    """Raise :class:`ConfigurationError` for the first bad setting in ``env``."""
    for name in SETTINGS:
        read(name, 0, env)
