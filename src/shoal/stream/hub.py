"""Between the web server and the coordinator: who is connected, and to which stream.

An embedded coordinator (``shoal stream``) exists from the start.  A stream-server's
coordinator exists only while a root (``shoal stream --server``) runs a stream: volunteers
that join before wait here and are welcomed when the stream starts; when it ends they are
told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from shoal.stream import protocol
from shoal.stream.coordinator import Coordinator, Link
from shoal.stream.guard import Limits, SecretCheck

VOLUNTEER_REFUSED = ("this stream needs the right secret to volunteer "
                     "(shoal volunteer URL --secret S)")


class Hub:
    """``secret``: what a root must present (a stream-server's ``--secret``);
    ``volunteer_secret``: what volunteers joining over the network must present.  Both are
    checked here, rate limited per address and overall (:mod:`shoal.stream.guard`); local
    processes speak to the coordinator directly, over pipes nobody else holds."""

    def __init__(self, coordinator: Coordinator | None = None, *,
                 secret: str | None = None, volunteer_secret: str | None = None,
                 lasting: bool = False) -> None:
        self.coordinator = coordinator
        self.lasting = lasting            # a stream-server's: it serves stream after stream
        self.reporting_interval = 3.0     # seconds per monitoring sample (set by the Watch)
        self.last_stream: dict[str, Any] | None = None   # the stream that ended last
        self._last_watched = float("-inf")
        self._end_shown = asyncio.Event()
        limits = Limits()
        self.root_check = SecretCheck(secret, limits, what="the root role",
                                      wrong="wrong or missing secret for the root role")
        self.volunteer_check = SecretCheck(volunteer_secret, limits, what="volunteering",
                                           wrong=VOLUNTEER_REFUSED)
        self.url = ""
        self.waiting: dict[Link, dict[str, Any]] = {}
        self.streams_run = 0
        self.started = time.monotonic()

    def hello(self, link: Link, message: dict[str, Any], peer: str) -> None:
        refused = self.volunteer_check.check(message.get("secret"), peer)
        if refused is not None:
            link.send(protocol.error(refused))
            link.close()
            return
        if self.coordinator is not None and self.coordinator.status is None:
            self.coordinator.hello(link, message)
        else:
            try:
                protocol.check_hello(message)
            except Exception as exc:
                link.send(protocol.error(str(exc)))
                link.close()
                return
            self.waiting[link] = message
            link.send(protocol.WAITING)

    def receive(self, link: Link, messages: list[dict[str, Any]]) -> None:
        if self.coordinator is not None and link in self.coordinator.members:
            self.coordinator.receive(link, messages)

    def lost(self, link: Link) -> None:
        self.waiting.pop(link, None)
        if self.coordinator is not None:
            self.coordinator.lost(link)

    def begin(self, coordinator: Coordinator) -> None:
        """A root's stream starts: the waiting volunteers are welcomed to it."""
        self.coordinator = coordinator
        self.streams_run += 1
        waiting, self.waiting = self.waiting, {}
        for link, message in waiting.items():
            coordinator.hello(link, message)

    def end(self) -> None:
        if self.coordinator is not None:
            self.last_stream = self.coordinator.snapshot()["stream"]
        self.coordinator = None

    def busy(self) -> bool:
        return self.coordinator is not None and self.coordinator.status is None

    def snapshot(self) -> dict[str, Any]:
        if self.coordinator is not None:
            data = self.coordinator.snapshot()
        else:
            data = {"stream": None, "volunteers": [], "departed": []}
        data["waiting_volunteers"] = len(self.waiting)
        data["url"] = self.url
        data["interval"] = self.reporting_interval
        data["lasting"] = self.lasting
        data["last_stream"] = self.last_stream
        return data

    def watched(self) -> dict[str, Any]:
        """The snapshot a monitor page asked for (``/monitor.json``)."""
        self._last_watched = time.monotonic()
        data = self.snapshot()
        if data["stream"] is not None and data["stream"]["status"] is not None:
            self._end_shown.set()
        return data

    async def show_the_end(self, grace: float = 1.5) -> None:
        """Before an ended stream's server goes: let a page that is watching (it polls
        once a second) see that the stream ended, rather than a server that is gone."""
        if time.monotonic() - self._last_watched > 5.0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._end_shown.wait(), grace)
