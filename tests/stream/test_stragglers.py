"""Stragglers (issue 11, item 9): an item overdue by several times the stream's usual time is
lent to an idle volunteer as well, the first result wins, and the output stays exactly once
and in order.  The ledger's rules first, with a clock the test moves; then real volunteers
frozen with SIGSTOP."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import psutil
from stream_helpers import LIVENESS, monitor, monitor_lines, start, stop, wait_for_url

from shoal.stream.ledger import MIN_OVERDUE, Ledger, Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def released_values(ledger: Ledger) -> list[object]:
    return [o.value for o in ledger.release()]


def a_stream_with_a_frozen_holder() -> tuple[Ledger, Clock]:
    """v1 holds item 0 and says nothing; v2 computes items 1 to 9, 10 ms each."""
    clock = Clock()
    ledger = Ledger(window=20, clock=clock)
    ledger.join("v1", 1)
    ledger.join("v2", 1)
    for value in range(10):
        ledger.admit(value * 10)
    assert ledger.lend("v1") == [(0, 0)]
    for item_id in range(1, 10):
        assert ledger.lend("v2") == [(item_id, item_id * 10)]
        clock.now += 0.01
        ledger.settle("v2", Outcome(item_id, True, value=item_id))
    assert released_values(ledger) == []   # item 0 holds the ordered output
    return ledger, clock


def test_an_item_late_by_several_usual_times_is_lent_to_an_idle_volunteer_as_well():
    ledger, clock = a_stream_with_a_frozen_holder()
    assert 0.009 < ledger.latency < 0.011
    # Lent 0.09 s ago: late, but not later than MIN_OVERDUE.
    assert ledger.overdue() == []
    clock.now += MIN_OVERDUE
    assert ledger.overdue() == [0]
    lent = ledger.lend_copies("v2", ledger.overdue())
    assert lent.pairs() == [(0, 0)]
    assert ledger.overdue() == []            # one copy at a time
    assert ledger.settle("v2", Outcome(0, True, value=0))
    assert released_values(ledger) == list(range(10))
    assert (ledger.copies, ledger.copies_won) == (1, 1)
    # The frozen volunteer wakes up: its result is a duplicate, used never.
    assert ledger.held("v1") == frozenset()
    assert not ledger.settle("v1", Outcome(0, True, value="late"))
    assert ledger.duplicates == 1 and released_values(ledger) == []


def test_when_the_first_holder_answers_first_the_copy_is_taken_back():
    ledger, clock = a_stream_with_a_frozen_holder()
    clock.now += 1.0
    ledger.lend_copies("v2", ledger.overdue())
    assert ledger.settle("v1", Outcome(0, True, value=0))
    assert ledger.held("v2") == frozenset() and ledger.copies_won == 0
    assert released_values(ledger) == list(range(10))
    assert not ledger.settle("v2", Outcome(0, True, value=0))


def test_losing_one_of_two_holders_loses_nothing():
    ledger, clock = a_stream_with_a_frozen_holder()
    clock.now += 1.0
    ledger.lend_copies("v2", ledger.overdue())
    assert ledger.lose("v1") == []           # v2 computes it: not lent again, no loss
    assert ledger.attempts(0) == 1 and ledger.relent == 0
    assert ledger.settle("v2", Outcome(0, True, value=0))
    assert released_values(ledger) == list(range(10))
    ledger2, clock2 = a_stream_with_a_frozen_holder()
    clock2.now += 1.0
    ledger2.join("v3", 1)
    ledger2.lend_copies("v3", ledger2.overdue())
    assert ledger2.lose("v3") == []          # the copy's holder left: v1 still holds it
    assert ledger2.held("v1") == frozenset({0})


def test_copies_go_only_to_volunteers_with_empty_hands_and_never_before_a_measure():
    clock = Clock()
    ledger = Ledger(window=20, clock=clock)
    ledger.join("v1", 1)
    ledger.join("v2", 2)
    for value in range(3):
        ledger.admit(value)
    ledger.lend("v1")
    ledger.lend("v2")
    clock.now += 60.0
    assert ledger.overdue() == []            # no result yet: no usual time to be late by
    ledger.join("v3", 1)
    ledger.admit(3)
    ledger.lend("v3")
    clock.now += 0.01
    ledger.settle("v3", Outcome(3, True, value=3))
    assert ledger.overdue() == [0, 1, 2]
    assert not ledger.lend_copies("v2", [0])   # it holds items 1 and 2
    assert ledger.lend_copies("v3", [0]).pairs() == [(0, 0)]   # v3 has empty hands
    assert ledger.copies == 1


# -- real volunteers, one of them frozen ---------------------------------------------------
VALUES = list(range(200))


def wait_until(check, what: str) -> None:
    deadline = time.monotonic() + LIVENESS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def finish_with_one_frozen(tmp_path: Path, args: list[str], pick) -> tuple[str, str]:
    """Run `shoal stream steady.py VALUES ARGS`, freeze (SIGSTOP) the volunteer ``pick``
    returns once 20 results are out, and let the stream finish; (stdout, stderr)."""
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        root = start("stream", str(Path(__file__).parent / "modules" / "steady.py"),
                     *map(str, VALUES), "--bind", "127.0.0.1", "--heartbeat", "300",
                     "--monitor-log", "--reporting-interval", "0.5", *args, stderr=err_file)
    frozen: list[psutil.Process] = []
    others: list = []
    try:
        url = wait_for_url(err, root)
        others += pick.start(url)
        wait_until(lambda: monitor(url)["stream"]["released"] >= 20, "20 results")
        victim = pick.victim(root)
        # Frozen between two items (it pulls the next one when done), a volunteer holds
        # nothing to be late with: freeze it while it holds an item, where that can be seen.
        for _ in range(50):
            victim.send_signal(signal.SIGSTOP)
            if pick.holds(monitor(url)) is not False:
                break
            victim.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        frozen.append(victim)
        # Without stragglers lent elsewhere, the frozen volunteer's item would hold the
        # output until two heartbeats (600 s) or for ever (a local process is not pinged).
        out, _ = root.communicate(timeout=LIVENESS)
    finally:
        for process in frozen:
            with contextlib.suppress(psutil.NoSuchProcess):   # ended with the stream
                process.send_signal(signal.SIGCONT)
        stop(root)
        for proc in others:
            stop(proc)
    assert root.returncode == 0, err.read_text()[-3000:]
    return out, err.read_text()


class TwoMachines:
    def __init__(self) -> None:
        self.volunteers: list = []

    def start(self, url: str) -> list:
        self.volunteers = [start("volunteer", url, "--once", "--name", f"m{i}")
                           for i in range(2)]
        return self.volunteers

    def victim(self, root) -> psutil.Process:
        return psutil.Process(self.volunteers[0].pid)

    def holds(self, snapshot) -> bool | None:
        """Whether the victim ("m0") holds an item now."""
        return any(v["name"] == "m0" and v["holding"] for v in snapshot["volunteers"])


class LocalProcesses:
    def start(self, url: str) -> list:
        return []

    def victim(self, root) -> psutil.Process:
        workers = [p for p in psutil.Process(root.pid).children()
                   if "shoal.stream.worker" in " ".join(p.cmdline())]
        assert len(workers) == 2
        return workers[0]

    def holds(self, snapshot) -> bool | None:
        return None  # local processes are not told apart in the snapshot: not known


def test_a_frozen_machine_volunteer_does_not_hold_the_ordered_output(tmp_path: Path):
    out, err = finish_with_one_frozen(tmp_path, ["--start-idle"], TwoMachines())
    assert out == "".join(f"{v * 3}\n" for v in VALUES)
    assert monitor_lines(err)[-1]["lent_twice"] >= 1


def test_a_frozen_local_process_does_not_hold_the_ordered_output(tmp_path: Path):
    # A local process is never pinged: an item it held when frozen and that was not lent
    # again would hold the output for ever, and communicate() above would time out. Whether
    # it held one cannot be seen (local processes are not told apart in the snapshot), so
    # lent_twice is not asked for (it was 0 once on a loaded machine: frozen between items).
    out, _ = finish_with_one_frozen(tmp_path, ["--workers", "2"], LocalProcesses())
    assert out == "".join(f"{v * 3}\n" for v in VALUES)
