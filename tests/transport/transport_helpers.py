"""Helpers of the transport tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def in_threads(*jobs: Callable[[], Any], timeout: float = 20.0) -> list[Any]:
    """Run each job (one rank's side) in its own thread; their results, or the first error."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a rank hung"
    if errors:
        raise errors[0]
    return results


def close_all(endpoints: Any) -> None:
    """Close endpoints at once, not one by one: each waits briefly for its peers' CLOSE."""
    in_threads(*(endpoint.close for endpoint in endpoints if endpoint is not None))


def counting(link: Any, name: str) -> list[Any]:
    """Wrap the link's compiled read ``name`` (recv_open, recv_take): the kinds of what
    each call returned (True: taken into the buffer)."""
    calls: list[Any] = []
    read = getattr(link, name)

    def wrapped(*args: Any) -> Any:
        got = read(*args)
        calls.append(True if got is True else type(got))
        return got

    setattr(link, name, wrapped)
    return calls
