"""What the service and the task-system runner know of each other, as protocols.

The service (:mod:`.service`) runs task systems (:mod:`.runner`); the runner
only needs the narrow :class:`Host` view of the service, and the service only
the :class:`Owner` view of whoever submitted a task (an executor's session or
a running task system).  Both live here so that imports point one way:
service -> runner -> owners.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

Result = tuple[Any, int, bytes, str]    # (the owner's key, status, blob, where it ran)


class Owner(Protocol):
    """Who gets a task's result: an executor's session, or a task system."""

    retries: int
    label: str
    tasks: dict[Any, int]

    def deliver(self, results: list[Result]) -> None: ...


class Host(Protocol):
    """The service as a task system's runner sees it (every call in the loop's thread)."""

    loop: asyncio.AbstractEventLoop | None
    functions: dict[Any, tuple[bytes, str]]

    def submit(self, owner: Owner, tasks: list[tuple[Any, Any, bytes]]) -> None: ...

    def cancel(self, owner: Owner, keys: Any) -> None: ...

    def forget_functions(self, label: str) -> None: ...

    def system_started(self, runner: Any) -> None: ...

    def system_ended(self, runner: Any) -> None: ...
