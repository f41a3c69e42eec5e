"""Between the web server and the coordinator: who is connected, and to which stream.

An embedded coordinator (``shoal stream``) exists from the start.  A stream-server's
coordinator exists only while a root (``shoal stream --server``) runs a stream: volunteers
that join before wait here and are welcomed when the stream starts; when it ends they are
told to stop.
"""

from __future__ import annotations

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
                 secret: str | None = None, volunteer_secret: str | None = None) -> None:
        self.coordinator = coordinator
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
        return data
