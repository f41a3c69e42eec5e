"""Rate limiting of failed logins, per peer address (a small pure class).

With a password login an active attacker gets one guess per handshake, so
the number of handshakes that may fail is what bounds the guessing.  The rule:

* the first ``free_failures`` failures of a peer cost nothing;
* every further failure blocks the peer for ``base_delay * 2**k`` seconds
  (k = 0, 1, 2, ...), at most ``max_delay``;
* a success, or ``forget_after`` seconds without a failure, forgets the peer;
* at most ``max_pending`` handshakes of one peer may be under way at once, so
  a burst of parallel connections cannot bypass the back-off.

Blocked attempts are refused before any password-dependent work.  Failures
and refusals are logged on ``logging.getLogger("shoal.security")``.  The
clock is injectable, so the class is tested without sleeping.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("shoal.security")


@dataclass
class _Peer:
    failures: int = 0
    pending: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: LoginRateLimiter, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


class LoginRateLimiter:
    """Exponential back-off of failed logins for each peer (usually an IP address)."""

    def __init__(self, *, free_failures: int = 3, base_delay: float = 1.0,
                 max_delay: float = 300.0, forget_after: float = 3600.0,
                 max_pending: int = 32, max_peers: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if free_failures < 0 or base_delay <= 0 or max_delay < base_delay or max_pending < 1:
            raise ValueError("LoginRateLimiter needs free_failures >= 0, 0 < base_delay "
                             "<= max_delay and max_pending >= 1")
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_pending = max_pending
        self.max_peers = max_peers
        self._clock = clock
        self._peers: OrderedDict[str, _Peer] = OrderedDict()
        # One limiter serves every login of a server, and handshakes run in threads (the
        # blocking adapter's server, and the asyncio adapter, which computes SPAKE2 off its
        # event loop), so its bookkeeping is serialised.
        self._lock = threading.RLock()

    def delay_after(self, failures: int) -> float:
        """Seconds a peer is blocked after its ``failures``-th failure in a row."""
        extra = failures - self.free_failures
        if extra <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(extra - 1, 64))

    def _entry(self, peer: str, now: float) -> _Peer | None:
        entry = self._peers.get(peer)
        if entry is not None and entry.pending == 0 and (
                now - entry.last_failure > self.forget_after and now >= entry.blocked_until):
            del self._peers[peer]
            return None
        return entry

    @_locked
    def retry_after(self, peer: str) -> float:
        """Seconds until ``peer`` may try again (0.0: it may try now)."""
        now = self._clock()
        entry = self._entry(peer, now)
        if entry is None:
            return 0.0
        if entry.pending >= self.max_pending:
            return max(1.0, entry.blocked_until - now)
        return max(0.0, entry.blocked_until - now)

    @_locked
    def begin(self, peer: str) -> float:
        """Start a login attempt: 0.0 if allowed (it is then pending), else seconds to wait."""
        wait = self.retry_after(peer)
        if wait > 0:
            log.warning("login from %s refused: too many failed attempts, retry in %.0f s",
                        peer, wait)
            return wait
        entry = self._peers.get(peer)
        if entry is None:
            entry = self._peers[peer] = _Peer()
            self._evict()
        self._peers.move_to_end(peer)
        entry.pending += 1
        return 0.0

    @_locked
    def failure(self, peer: str) -> None:
        """A pending attempt failed: count it and maybe start blocking the peer."""
        now = self._clock()
        entry = self._peers.get(peer)
        if entry is None:
            entry = self._peers[peer] = _Peer()
            self._evict()
        entry.pending = max(0, entry.pending - 1)
        entry.failures += 1
        entry.last_failure = now
        delay = self.delay_after(entry.failures)
        if delay > 0:
            entry.blocked_until = max(entry.blocked_until, now + delay)
            log.warning("%d failed logins from %s; refusing it for %.0f s",
                        entry.failures, peer, delay)

    @_locked
    def success(self, peer: str) -> None:
        """A pending attempt succeeded: the peer's failures are forgiven."""
        entry = self._peers.get(peer)
        if entry is None:
            return
        entry.pending = max(0, entry.pending - 1)
        entry.failures = 0
        entry.blocked_until = 0.0
        if entry.pending == 0:
            del self._peers[peer]

    def _evict(self) -> None:
        # Forget the least recently seen peers first, never one with a pending attempt.
        while len(self._peers) > self.max_peers:
            for name, entry in self._peers.items():
                if entry.pending == 0:
                    del self._peers[name]
                    break
            else:
                return

    def __len__(self) -> int:
        return len(self._peers)
