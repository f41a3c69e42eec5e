"""Rate limiting of failed logins, per peer address and overall (a small pure class).

With a password login an active attacker gets one guess per handshake, so
the number of handshakes that may fail is what bounds the guessing.  Every
secret or token check of a server (a beacon's login, the task service's, a
cluster token, a stream secret) goes through one limiter: ``begin(peer)``
before the check (refused: the returned seconds to wait), then ``failure`` or
``success``.  The rule, per peer (usually an IP address):

* the first ``free_failures`` failures of a peer cost nothing;
* every further failure blocks the peer for ``base_delay * 2**k`` seconds
  (k = 0, 1, 2, ...), at most ``max_delay``;
* a success, or ``forget_after`` seconds without a failure, forgets the peer;
* at most ``max_pending`` handshakes of one peer may be under way at once, so
  a burst of parallel connections cannot bypass the back-off.

And overall, so that many addresses (a botnet, or 127.0.0.0/8 on one machine)
cannot each take their free failures:

* failures of all peers together draw on a budget of ``overall_free_failures``
  that refills at ``overall_rate`` failures a second (a token bucket); an
  attempt under way holds one unit of it until it succeeds (the unit comes
  back) or fails (it is spent), so parallel attempts cannot overdraw it;
* while the budget is spent, attempts of peers that have not logged in
  successfully within ``forget_after`` seconds are refused, with the time
  until a unit is back; peers that did log in recently keep their per-peer
  limits only, so an attack from elsewhere does not lock out known users.

So a password is guessed at most ``overall_free_failures`` times at once and
``overall_rate`` times a second after that, however many addresses guess.
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
    reserved: int = 0  # pending attempts holding a unit of the overall budget
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
                 overall_free_failures: int = 20, overall_rate: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if free_failures < 0 or base_delay <= 0 or max_delay < base_delay or max_pending < 1:
            raise ValueError("LoginRateLimiter needs free_failures >= 0, 0 < base_delay "
                             "<= max_delay and max_pending >= 1")
        if overall_free_failures < 1 or overall_rate <= 0:
            raise ValueError("LoginRateLimiter needs overall_free_failures >= 1 and "
                             "overall_rate > 0")
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_pending = max_pending
        self.max_peers = max_peers
        self.overall_free_failures = overall_free_failures
        self.overall_rate = overall_rate
        self._clock = clock
        self._peers: OrderedDict[str, _Peer] = OrderedDict()
        # The overall budget: units left (spent failures make it negative, down to
        # -overall_free_failures), when it was last refilled, and units held by attempts.
        self._budget = float(overall_free_failures)
        self._budget_at = clock()
        self._reserved = 0
        self._trusted: OrderedDict[str, float] = OrderedDict()  # peer -> last success
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

    def _refill(self, now: float) -> None:
        cap = float(self.overall_free_failures)
        self._budget = min(cap, self._budget + max(0.0, now - self._budget_at) * self.overall_rate)
        self._budget_at = now

    def _is_trusted(self, peer: str, now: float) -> bool:
        since = self._trusted.get(peer)
        if since is None:
            return False
        if now - since > self.forget_after:
            del self._trusted[peer]
            return False
        return True

    def _overall_wait(self, now: float) -> float:
        """Seconds until the overall budget has a unit free (0.0: it has one now)."""
        self._refill(now)
        free = self._budget - self._reserved
        if free >= 1.0:
            return 0.0
        return min(self.max_delay, max(1.0, (1.0 - free) / self.overall_rate))

    def _peer_wait(self, peer: str, now: float) -> float:
        entry = self._entry(peer, now)
        if entry is None:
            return 0.0
        if entry.pending >= self.max_pending:
            return max(1.0, entry.blocked_until - now)
        return max(0.0, entry.blocked_until - now)

    @_locked
    def retry_after(self, peer: str) -> float:
        """Seconds until ``peer`` may try again (0.0: it may try now)."""
        now = self._clock()
        wait = self._peer_wait(peer, now)
        if not self._is_trusted(peer, now):
            wait = max(wait, self._overall_wait(now))
        return wait

    @_locked
    def begin(self, peer: str) -> float:
        """Start a login attempt: 0.0 if allowed (it is then pending), else seconds to wait."""
        now = self._clock()
        wait = self._peer_wait(peer, now)
        if wait > 0:
            log.warning("login from %s refused: too many failed attempts, retry in %.0f s",
                        peer, wait)
            return wait
        trusted = self._is_trusted(peer, now)
        if not trusted:
            wait = self._overall_wait(now)
            if wait > 0:
                log.warning("login from %s refused: too many failed logins from all "
                            "addresses together, retry in %.0f s", peer, wait)
                return wait
        entry = self._peers.get(peer)
        if entry is None:
            entry = self._peers[peer] = _Peer()
            self._evict()
        self._peers.move_to_end(peer)
        entry.pending += 1
        if not trusted:
            entry.reserved += 1
            self._reserved += 1
        return 0.0

    def _release(self, entry: _Peer) -> None:
        """An attempt ended: its unit of the overall budget is no longer held."""
        entry.pending = max(0, entry.pending - 1)
        if entry.reserved > 0:
            entry.reserved -= 1
            self._reserved -= 1

    @_locked
    def failure(self, peer: str) -> None:
        """A pending attempt failed: count it and maybe start blocking the peer."""
        now = self._clock()
        entry = self._peers.get(peer)
        if entry is None:
            entry = self._peers[peer] = _Peer()
            self._evict()
        self._release(entry)
        entry.failures += 1
        entry.last_failure = now
        self._refill(now)
        self._budget = max(-float(self.overall_free_failures), self._budget - 1.0)
        if self._budget < 1.0:
            log.warning("the budget of failed logins from all addresses is spent; "
                        "logins from addresses not seen succeeding wait %.0f s",
                        self._overall_wait(now))
        delay = self.delay_after(entry.failures)
        if delay > 0:
            entry.blocked_until = max(entry.blocked_until, now + delay)
            log.warning("%d failed logins from %s; refusing it for %.0f s",
                        entry.failures, peer, delay)

    @_locked
    def success(self, peer: str) -> None:
        """A pending attempt succeeded: the peer's failures are forgiven."""
        self._trusted[peer] = self._clock()
        self._trusted.move_to_end(peer)
        while len(self._trusted) > self.max_peers:
            self._trusted.popitem(last=False)
        entry = self._peers.get(peer)
        if entry is None:
            return
        self._release(entry)
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
