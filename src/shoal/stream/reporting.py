"""``shoal.report(...)``: what a processor tells the monitor about its own work.

Calls add up in this process; the volunteer sends the sums as ``report`` messages now and
then (see :mod:`shoal.stream.worker`).  Outside a volunteer (``--local``, or a plain call)
the sums simply accumulate, so a processor runs the same everywhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

MAX_FIGURE = 1e12   # shoal.stream.protocol.MAX_FIGURE (this module stays light)


@dataclass
class Totals:
    cpu_time: float = 0.0
    transfer_time: float = 0.0
    items: int = 0
    units: float = 0.0
    unit: str = ""      # the name of what is counted, when given (Pando's units: 'Gizmos')
    calls: int = 0


_lock = threading.Lock()
_totals = Totals()


MAX_UNIT = 64   # characters of a unit's name


def unit_name(units: str) -> str:
    """A unit's name as the monitor shows it, checked (ValueError)."""
    name = units.strip()
    if not name or len(name) > MAX_UNIT or not name.isprintable():
        raise ValueError(f"shoal.report: units must be a number, or a name of 1 to "
                         f"{MAX_UNIT} printable characters, not {units!r}")
    return name


def report(*, cpu_time: float = 0.0, transfer_time: float = 0.0, items: int = 0,
           units: float | str = 0.0) -> None:
    """Tell the monitor about work done: seconds of CPU and of data transfer, items, units.

    ``units`` is how many units of work were done (a number), or the name of what
    ``items`` counts (``units="Gizmos"``, as Pando's): the monitor then shows Gizmos per
    second.  Mirrors Pando's ``report({cpuTime, dataTransferTime, nbItems, units})``, in
    seconds where Pando has milliseconds.  When a processor never calls it, the monitor uses
    each result's own CPU time instead.
    """
    unit = ""
    if isinstance(units, str):
        unit, units = unit_name(units), items
    for name, value in (("cpu_time", cpu_time), ("transfer_time", transfer_time),
                        ("items", items), ("units", units)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not 0 <= value <= MAX_FIGURE:   # NaN and infinities fail this too
            raise ValueError(f"shoal.report: {name} must be a number from 0 to "
                             f"{MAX_FIGURE:g}, not {value!r}")
    with _lock:
        _totals.cpu_time += cpu_time
        _totals.transfer_time += transfer_time
        _totals.items += int(items)
        _totals.units += units
        _totals.unit = unit or _totals.unit
        _totals.calls += 1


def drain() -> Totals | None:
    """The sums since the last drain (None if report was not called since)."""
    global _totals
    with _lock:
        if not _totals.calls:
            return None
        taken, _totals = _totals, Totals()
    return taken
