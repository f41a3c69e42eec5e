"""The monitor's clock: closes a reporting interval every ``--reporting-interval``
seconds, logs it on stderr with ``--monitor-log``, and keeps a progress line on a
terminal's stderr (rich)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any, TextIO

from shoal.stream.hub import Hub


def log_line(snapshot: dict[str, Any]) -> str:
    """One JSON line per interval: the stream's counts and each volunteer's last sample."""
    stream = snapshot.get("stream") or {}
    line = {"t": round(stream.get("elapsed", 0.0), 3),
            **{k: stream.get(k) for k in ("read", "released", "outstanding", "buffered",
                                          "open", "peak_open", "window", "relent",
                                          "duplicates", "lent_twice", "failures")},
            "volunteers": [{"id": v["id"], "kind": v["kind"], "done": v["items_done"],
                            "items_per_s": round(v["throughput"]["last"], 3),
                            "cpu": round(v["cpu_usage"]["last"], 3),
                            "transfer": round(v["transfer_load"]["last"], 3)}
                           for v in snapshot.get("volunteers", [])]}
    return "shoal stream monitor: " + json.dumps(line)


class Watch:
    def __init__(self, hub: Hub, *, interval: float, log: bool,
                 progress: bool, err: TextIO | None = None) -> None:
        self.hub = hub
        hub.reporting_interval = interval
        self.interval = interval
        self.log = log
        self.err = err or sys.stderr
        self._progress = None
        if progress:
            from rich.console import Console
            from rich.live import Live

            self._progress = Live("", console=Console(file=self.err), transient=True,
                                  refresh_per_second=4)
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self._progress is not None:
            self._progress.start()
        self._task = asyncio.ensure_future(self._run())

    def _line(self) -> str:
        snap = self.hub.snapshot()
        s = snap.get("stream") or {}
        rate = sum(v["throughput"]["last"] for v in snap["volunteers"])
        return (f"[bold]{s.get('released', 0)}[/] done, {s.get('outstanding', 0)} lent, "
                f"{s.get('buffered', 0)} waiting for order, {len(snap['volunteers'])} "
                f"volunteers, {rate:.1f} items/s, {s.get('failures', 0)} failed  {self.hub.url}")

    async def _run(self) -> None:
        last = time.monotonic()
        next_close = last + self.interval
        while True:
            await asyncio.sleep(min(0.25, self.interval) if self._progress else self.interval)
            now = time.monotonic()
            if now >= next_close:
                coordinator = self.hub.coordinator
                if coordinator is not None:
                    coordinator.close_interval(now - last)
                last, next_close = now, now + self.interval
                if self.log and coordinator is not None:
                    self.err.write(log_line(self.hub.snapshot()) + "\n")
                    self.err.flush()
            if self._progress is not None:
                self._progress.update(self._line())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._progress is not None:
            self._progress.stop()
