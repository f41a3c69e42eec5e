"""Per-volunteer monitoring: throughput, CPU usage and transfer load over intervals.

Every reporting interval closes one sample per volunteer: throughput is items per second,
CPU usage is CPU seconds per second (1.0 = one core busy), transfer load is seconds spent
moving data per second.  Each figure is summarised over the samples kept (the last
``HISTORY``) by its average, *real* standard deviation (Pando's is a mean absolute
deviation), minimum and maximum.  CPU time comes from ``shoal.report`` when the processor
calls it, else from each result's own CPU time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

HISTORY = 120


def summary(samples: deque[float] | list[float]) -> dict[str, float | int]:
    """count, average, population standard deviation, minimum, maximum, last."""
    n = len(samples)
    if n == 0:
        return {"count": 0, "avg": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "last": 0.0}
    mean = math.fsum(samples) / n
    variance = math.fsum((x - mean) ** 2 for x in samples) / n
    return {"count": n, "avg": mean, "std": math.sqrt(variance), "min": min(samples),
            "max": max(samples), "last": samples[-1]}


@dataclass
class VolunteerStats:
    """What one volunteer did in the current interval, and the closed intervals' samples."""

    items_done: int = 0
    failed: int = 0
    _items: int = 0
    _result_cpu: float = 0.0
    _reported_cpu: float = 0.0
    _transfer: float = 0.0
    _units: float = 0.0
    _reported: bool = False
    unit: str = ""                 # what the units count (shoal.report(units="Gizmos"))
    throughput: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    cpu: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    transfer: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    units: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def result(self, ok: bool, cpu_time: float) -> None:
        self.items_done += 1
        self._items += 1
        self._result_cpu += cpu_time
        if not ok:
            self.failed += 1

    def results(self, count: int, cpu_time: float) -> None:
        """``count`` ok results at once (one ``results`` message)."""
        self.items_done += count
        self._items += count
        self._result_cpu += cpu_time

    def report(self, cpu_time: float, transfer_time: float, units: float,
               unit: str = "") -> None:
        self._reported = True
        self.unit = unit or self.unit
        self._reported_cpu += cpu_time
        self._transfer += transfer_time
        self._units += units

    def close_interval(self, seconds: float) -> None:
        if seconds <= 0:
            return
        cpu = self._reported_cpu if self._reported else self._result_cpu
        self.throughput.append(self._items / seconds)
        self.cpu.append(cpu / seconds)
        self.transfer.append(self._transfer / seconds)
        self.units.append(self._units / seconds)
        self._items = 0
        self._result_cpu = self._reported_cpu = self._transfer = self._units = 0.0
        self._reported = False

    def as_json(self) -> dict[str, Any]:
        return {"items_done": self.items_done, "failed": self.failed,
                "throughput": summary(self.throughput), "cpu_usage": summary(self.cpu),
                "transfer_load": summary(self.transfer), "units_per_s": summary(self.units),
                "unit": self.unit,
                # One throughput sample per reporting interval, the last just closed: what
                # the monitor page charts.
                "series": [round(x, 3) for x in self.throughput]}
