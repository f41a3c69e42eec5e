"""Health samples of this machine (psutil), as the master stores them.

CPU percent is measured since the previous sample (psutil's non-blocking
form), network rates from the difference of the counters; temperature is the
hottest sensor's current value, or None where the platform has no sensors.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psutil


class HealthSampler:
    def __init__(self, disk_path: str = "/") -> None:
        self.disk_path = disk_path
        psutil.cpu_percent(interval=None)  # the first call only starts the measure
        self._net = psutil.net_io_counters()
        self._at = time.monotonic()

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        net = psutil.net_io_counters()
        elapsed = max(now - self._at, 1e-3)
        sent = (net.bytes_sent - self._net.bytes_sent) / elapsed if net and self._net else 0.0
        recv = (net.bytes_recv - self._net.bytes_recv) / elapsed if net and self._net else 0.0
        self._net, self._at = net, now
        load1, load5, load15 = psutil.getloadavg()
        try:
            disk = psutil.disk_usage(self.disk_path).percent
        except OSError:
            disk = 0.0
        return {"cpu_percent": psutil.cpu_percent(interval=None),
                "memory_percent": psutil.virtual_memory().percent,
                "load1": load1, "load5": load5, "load15": load15, "disk_percent": disk,
                "net_sent_bps": max(sent, 0.0), "net_recv_bps": max(recv, 0.0),
                "temperature_c": temperature()}


def temperature() -> float | None:
    """The hottest sensor's reading in Celsius; None without sensors."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    with contextlib.suppress(OSError, RuntimeError, ValueError):
        readings = [t.current for entries in reader().values() for t in entries
                    if t.current is not None]
        return max(readings) if readings else None
    return None
