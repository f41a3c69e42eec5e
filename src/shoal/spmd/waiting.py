"""How the engine waits: spin first, then sleep on the transport (THREAD_MULTIPLE).

:class:`Waiting` is the waiting half of :class:`~shoal.spmd.engine.Engine` (its base
class): :meth:`~Waiting.wait_until`, where every blocking call waits, spins for the
engine's adaptive spin (:class:`~shoal.spmd.spinning.Spin`), polling the transport with
the GIL released (``Endpoint.wait``) and making progress on every stream, then sleeps: one
thread on the transport's doorbell (or in its sockets), the others on a condition that
whoever makes progress notifies.  The engine keeps the state (its lock, the spin, who
sleeps) and the progress itself (``progress``/``_progress``); this module only waits.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shoal.errors import CommunicationError
from shoal.wire.header import HEADER_SIZE

if TYPE_CHECKING:
    from shoal.spmd.matching import Matcher, Message
    from shoal.spmd.spinning import Spin
    from shoal.transport.base import Endpoint

SLEEP_SECONDS = 0.02  # a lost wake-up costs at most this
_ALONE_POLL_SECONDS = 0.002  # a 1-rank job's thread waiting for another one
_NAP_SECONDS = 0.001  # a sleep under the engine's lock while other threads may want it
_DIRECT_SLEEPS = 4  # sleeps of a receive's fast path (see Waiting._sleep_for) before it posts
SPIN_QUANTUM_NS = 50_000  # a spinning thread looks at the engine's state this often

give_way = getattr(os, "sched_yield", lambda: None)  # let a peer sharing this core run


class Waiting:
    """The engine's waiting (see the module docstring); the attributes below are the
    engine's."""

    rank: int
    endpoint: Endpoint | None
    matcher: Matcher
    fast_spin_ns: int
    _lock: threading.Lock
    _changed: threading.Condition
    _spinning: Spin
    _users: set[int]
    _busy: Any
    _reading: list[Any]
    _waiters: int
    _sleeper: bool

    def progress(self) -> None:
        raise NotImplementedError

    def _progress(self) -> None:
        raise NotImplementedError

    def _try_receive(self, ctx: int, source: int, tag: int, buffer: memoryview | None,
                     locked: bool = False) -> Message | None:
        raise NotImplementedError

    def idle(self) -> None:
        """A call that asks and returns (Test, Iprobe, Parrived) found nothing: on an
        oversubscribed machine give the core away, so that a program polling in a loop
        lets the rank it waits for run (MPICH yields there too)."""
        if not self._spinning.yield_mask:
            give_way()

    def _nap(self) -> float:
        """How long to sleep holding the engine's lock (a transport whose sleep reads its
        streams): briefly once several threads use the engine, which may need the lock to
        send what this one waits for."""
        return _NAP_SECONDS if len(self._users) > 1 else SLEEP_SECONDS

    def _wake(self) -> None:
        """Tell the threads waiting in wait_until that the engine's state changed: they
        look at their requests again (the doorbell sleeper, through its doorbell)."""
        with self._lock:
            self._changed.notify_all()
            sleeper = self._sleeper
        endpoint = self.endpoint
        if sleeper and endpoint is not None:
            endpoint.wake_self()

    def _wait_alone(self, done: Callable[[], bool], describe: Callable[[], str]) -> None:
        """wait_until in a 1-rank job: only another thread of this rank can complete the
        wait (a send to itself, THREAD_MULTIPLE); with no other thread it is a deadlock."""
        while not done():
            if threading.active_count() == 1:
                raise CommunicationError(
                    f"deadlock: rank {self.rank} of a 1-rank job would wait forever in "
                    f"{describe()}: no other rank exists to complete it")
            with self._changed:
                self._changed.wait(_ALONE_POLL_SECONDS)

    def _spun(self, found: bool) -> None:
        """A spin ended, having found what it waited for or not (see :class:`Spin`)."""
        spin = self._spinning
        spin.spun(found)
        self.fast_spin_ns = spin.fast_ns

    def _slept(self, waited: float) -> None:
        """A wait outlasted its spin and slept, ``waited`` seconds in all (see
        :meth:`Spin.slept`)."""
        spin = self._spinning
        spin.slept(waited)
        self.fast_spin_ns = spin.fast_ns

    def wait_until(self, done: Callable[[], bool], describe: Callable[[], str]) -> None:
        """Make progress until ``done()``; spin first, then sleep on the transport.

        ``done`` is called without the engine's lock (it may call the engine).
        """
        if done():
            return
        endpoint = self.endpoint
        if endpoint is None:
            self._wait_alone(done, describe)
            return
        self._users.add(threading.get_ident())
        spin = self._spinning
        started = time.perf_counter()
        deadline = started + spin.seconds
        spins = 0
        slept = False
        while spin.seconds:
            self.progress()
            if done():
                self._spun(True)
                return
            spins += 1
            if endpoint.wait(-1, self._busy, SPIN_QUANTUM_NS, spin.yield_rounds):
                continue
            if time.perf_counter() > deadline:
                slept = True
                break
            if not spins & spin.yield_mask:
                # Let a peer that shares this core run: on a loaded or
                # oversubscribed machine it is the one we are waiting for.
                give_way()
        endpoint.set_status(describe())
        try:
            self._sleep_until(done)
        finally:
            endpoint.set_status("")
        if slept:
            self._slept(time.perf_counter() - started)

    def _sleep_until(self, done: Callable[[], bool]) -> None:
        """The sleeping phase: one thread sleeps on the transport, the others on a
        condition; whoever makes progress wakes them."""
        endpoint = self.endpoint
        assert endpoint is not None
        lock = self._lock
        lock.acquire()
        self._waiters += 1
        try:
            while True:
                self._progress()
                self._changed.notify_all()
                lock.release()
                try:
                    if done():
                        return
                finally:
                    lock.acquire()
                if self._sleeper:
                    # Another thread watches the transport; it notifies after progress.
                    self._changed.wait(SLEEP_SECONDS)
                    continue
                self._sleeper = True
                endpoint.set_sleeping(True)
                self._progress()
                if not endpoint.sleeps_unlocked:
                    # Its sleep reads the streams: it sleeps holding the lock, in naps.
                    try:
                        endpoint.sleep(self._nap())
                    finally:
                        endpoint.set_sleeping(False)
                        self._sleeper = False
                    continue
                lock.release()
                try:
                    if not done():
                        endpoint.sleep(SLEEP_SECONDS)
                finally:
                    lock.acquire()
                    endpoint.set_sleeping(False)
                    self._sleeper = False
        finally:
            self._waiters -= 1
            lock.release()

    def _sleep_for(self, ctx: int, source: int, tag: int,
                   buffer: memoryview | None) -> Message | None:
        """The fast path of a blocking receive on a transport whose sleep reads the
        streams (TCP), once spinning is over or where it does not spin: sleep on it and
        take the next small frame from ``source`` straight off its stream, while that
        frame is the answer (nothing posted or waiting on ``ctx``), for a few sleeps at
        most; None: go the general way (post and wait).

        Such a transport's sleep reads its sockets, so it sleeps under the engine's
        lock; with other threads about, in short naps (they may need the lock to send
        what this one waits for).
        """
        endpoint = self.endpoint
        assert endpoint is not None
        matcher = self.matcher
        lock = self._lock
        self._users.add(threading.get_ident())
        for _ in range(_DIRECT_SLEEPS):
            lock.acquire()
            try:
                if (matcher.posted.get(ctx) or matcher.unexpected.get(ctx)
                        or self._reading[source] is not None):
                    return None  # no longer the simple case
                if self._busy:
                    self._progress()
                endpoint.set_sleeping(True)
                try:  # look once more now that peers know to wake us, then sleep
                    if endpoint.readable(source) < HEADER_SIZE:
                        endpoint.sleep(self._nap())
                finally:
                    endpoint.set_sleeping(False)
                message = self._try_receive(ctx, source, tag, buffer, True)  # (as above)
                if message is not None:
                    return message
                if endpoint.readable(source) >= HEADER_SIZE:
                    return None  # a large frame: post, so that it streams into place
                self._progress()  # keep every other stream moving (and drain what woke us)
            finally:
                lock.release()
            if self._waiters:
                self._wake()
        return None
