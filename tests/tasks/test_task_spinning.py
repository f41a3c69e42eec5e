"""The local cluster's loop spins before it sleeps (shoal.tasks.spinning), and what one
event sets off in the cluster is delivered in one turn of its loop (links.in_one_turn)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import psutil
import pytest

from shoal.errors import ConfigurationError
from shoal.tasks import Executor, spinning
from shoal.tasks.links import after_turn, in_one_turn, memory_pair
from shoal.tasks.spinning import FLOOR, Spin, SpinningSelector

MOST = 200e-6


# -- the spin's state machine (pure) ---------------------------------------------------

def test_a_spin_that_finds_an_event_grows_half_again_up_to_the_most() -> None:
    spin = Spin(MOST)
    spin.seconds = 40e-6
    spin.found()
    assert spin.seconds == pytest.approx(60e-6)
    for _ in range(10):
        spin.found()
    assert spin.seconds == MOST


def test_a_spin_whose_event_came_later_than_any_spin_would_last_halves_down_to_the_floor(
        ) -> None:
    spin = Spin(MOST)
    spin.slept(0.5)
    assert spin.seconds == MOST / 2
    for _ in range(40):
        spin.slept(0.5)
    assert spin.seconds == FLOOR


def test_events_that_a_full_spin_would_have_found_grow_it_back_from_the_floor() -> None:
    # Long tasks shrank it; short ones again (their results come within the most a spin
    # lasts): it doubles back, where growing only on finds would stay on the floor.
    spin = Spin(MOST)
    for _ in range(40):
        spin.slept(0.5)
    rounds = 0
    while spin.seconds < MOST:
        spin.slept(100e-6)
        rounds += 1
    assert spin.seconds == MOST and rounds <= 8


def test_no_spin_at_all_stays_none() -> None:
    spin = Spin(0.0)
    spin.found()
    spin.slept(1e-6)
    spin.slept(1.0)
    assert spin.seconds == 0.0


# -- the selector, over a real socket pair ---------------------------------------------

@pytest.fixture
def pair():
    """A SpinningSelector (``most``, a core free or not) watching one end of a socket pair:
    (selector, that end, the other end); all closed after the test."""
    made: list = []

    def make(most: float, allowed: bool = True):
        ours, theirs = socket.socketpair()
        selector = SpinningSelector(most, lambda: allowed)
        selector.register(ours, 1)  # EVENT_READ
        made.extend((selector, ours, theirs))
        return selector, ours, theirs

    yield make
    for thing in made:
        thing.close()


def _send_later(sock: socket.socket, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), sock.send(b"x")),
                              daemon=True)
    thread.start()
    return thread


def test_an_event_already_there_is_found_by_the_spin(pair) -> None:
    selector, ours, theirs = pair(MOST)
    selector.spin.seconds = 50e-6
    theirs.send(b"x")
    ready = selector.select(None)
    assert [key.fileobj for key, _ in ready] == [ours]
    assert selector.spin.seconds == pytest.approx(75e-6)  # found: half again


def test_an_event_long_after_the_spin_wakes_the_sleep_and_halves_the_spin(pair) -> None:
    selector, ours, theirs = pair(MOST)
    sender = _send_later(theirs, 0.2)
    ready = selector.select(None)
    sender.join(5)
    assert [key.fileobj for key, _ in ready] == [ours]
    assert selector.spin.seconds == MOST / 2


def test_a_timer_due_is_no_failure_of_the_spin(pair) -> None:
    selector, _, _ = pair(MOST)
    assert selector.select(0.05) == []
    assert selector.spin.seconds == MOST
    assert selector.select(0) == []


@pytest.mark.parametrize(("most", "allowed"), [(MOST, False), (0.0, True)])
def test_without_a_free_core_or_a_spin_it_sleeps_at_once(pair, most: float,
                                                         allowed: bool) -> None:
    # Observed through the spin's state: a wait that spun and then slept 0.2 s would have
    # halved it (the test above); this one never entered the spin.
    selector, ours, theirs = pair(most, allowed)
    sender = _send_later(theirs, 0.2)
    ready = selector.select(None)
    sender.join(5)
    assert [key.fileobj for key, _ in ready] == [ours]
    assert selector.spin.seconds == most


def test_the_most_is_read_from_the_environment_and_a_bad_one_is_one_line() -> None:
    assert spinning.configured({}) == spinning.DEFAULT_US / 1e6
    assert spinning.configured({"SHOAL_TASKS_SPIN_US": "0"}) == 0.0
    assert spinning.configured({"SHOAL_TASKS_SPIN_US": "50"}) == pytest.approx(50e-6)
    with pytest.raises(ConfigurationError) as caught:
        spinning.configured({"SHOAL_TASKS_SPIN_US": "fast"})
    assert str(caught.value).startswith("SHOAL_TASKS_SPIN_US must be a number of microseconds")
    assert "\n" not in str(caught.value)


def test_a_bad_spin_setting_stops_the_executor_before_any_process_starts(monkeypatch) -> None:
    monkeypatch.setenv("SHOAL_TASKS_SPIN_US", "-5")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ConfigurationError, match="SHOAL_TASKS_SPIN_US must be"):
        Executor(workers=1)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


@pytest.mark.parametrize("spin_us", ["0", "200"])
def test_the_local_cluster_runs_tasks_spinning_or_not(monkeypatch, spin_us: str) -> None:
    monkeypatch.setenv("SHOAL_TASKS_SPIN_US", spin_us)
    with Executor(workers=2) as ex:
        assert [ex.submit(pow, 2, i).result(60) for i in range(20)] == [2**i for i in range(20)]
        assert list(ex.map(abs, range(-300, 0), chunksize=7)) == list(range(300, 0, -1))


# -- one turn --------------------------------------------------------------------------

async def _pair_collecting(first: str, second: str) -> tuple[Any, list[object], Any]:
    """An in-process pair; what reaches the second end is collected, in order, while the
    returned task serves it."""
    ours, theirs = memory_pair(first, second)
    got: list[object] = []
    serving = asyncio.ensure_future(theirs.serve(lambda batch: got.extend(batch) or True))
    await asyncio.sleep(0)  # serve() now
    return ours, got, serving


def test_what_one_event_posts_in_process_is_delivered_before_its_turn_ends() -> None:
    async def main() -> None:
        service_end, agent_end = memory_pair("service", "agent")
        seen: list[tuple[str, object]] = []

        def at_agent(batch: list) -> bool:
            seen.extend(("agent", m) for m in batch)
            agent_end.post(("ready", len(batch)))  # an answer: delivered in the same turn
            return True

        def at_service(batch: list) -> bool:
            seen.extend(("service", m) for m in batch)
            return True

        served = [asyncio.ensure_future(agent_end.serve(at_agent)),
                  asyncio.ensure_future(service_end.serve(at_service))]
        await asyncio.sleep(0)  # both serve() now

        def event(n: int) -> None:
            service_end.post(("run", n))
            service_end.post(("run", n + 1))
            assert seen == []  # never inside the poster's own call

        in_one_turn(event, 1)
        assert seen == [("agent", ("run", 1)), ("agent", ("run", 2)), ("service", ("ready", 2))]

        # Outside a turn, a post goes in the loop's next pass, as before.
        seen.clear()
        service_end.post(("run", 3))
        assert seen == []
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert seen == [("agent", ("run", 3)), ("service", ("ready", 1))]
        await service_end.close()
        for task in served:
            task.cancel()

    asyncio.run(main())


def test_posts_of_a_turn_whose_handler_raised_still_arrive() -> None:
    async def main() -> None:
        ours, got, serving = await _pair_collecting("a", "b")

        def failing(_: object) -> None:
            ours.post(("run", 1))
            raise RuntimeError("a bug in the handler")

        with pytest.raises(RuntimeError, match="a bug in the handler"):
            in_one_turn(failing, None)
        assert got == []
        await asyncio.sleep(0)
        assert got == [("run", 1)]
        ours.post(("run", 2))  # the link still works after
        await asyncio.sleep(0)
        assert got == [("run", 1), ("run", 2)]
        serving.cancel()

    asyncio.run(main())


def test_work_put_off_to_the_end_of_a_turn_runs_after_what_was_posted_before_it() -> None:
    # The agent feeds its processes after the service has had their results (after_turn).
    async def main() -> None:
        ours, order, serving = await _pair_collecting("agent", "service")

        def event(_: object) -> None:
            ours.post(("done", 1))
            after_turn(lambda: order.append("fed"))
            assert order == []

        in_one_turn(event, None)
        assert order == [("done", 1), "fed"]
        after_turn(lambda: order.append("at once"))  # no turn: now
        assert order[-1] == "at once"
        serving.cancel()

    asyncio.run(main())
