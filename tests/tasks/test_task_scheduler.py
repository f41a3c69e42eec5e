"""The pure scheduler: events in, actions out, no sockets and no clock."""

from __future__ import annotations

import pytest

from shoal.tasks.scheduler import Scheduler, policy_class
from shoal.tasks.scheduler.state import (
    Assign,
    Cancelled,
    CancelRequested,
    Deliver,
    Disconnect,
    Fail,
    HeartbeatMissed,
    KillRunning,
    Retry,
    TasksFinished,
    TasksLost,
    TasksSubmitted,
    WorkerJoined,
    WorkerLeft,
    WorkerReady,
)


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def assigned(actions):
    return {a.worker: [t for t, _ in a.tasks] for a in of(actions, Assign)}


def push(name="least-loaded"):
    return Scheduler(policy_class(name)())


def test_pull_gives_tasks_only_to_workers_that_asked_and_only_as_many():
    s = push("pull")
    s.handle(WorkerJoined("a", 2))
    s.handle(WorkerJoined("b", 2))
    assert assigned(s.handle(TasksSubmitted([(i, 3) for i in range(5)]))) == {}
    assert assigned(s.handle(WorkerReady("b", 3))) == {"b": [0, 1, 2]}
    assert assigned(s.handle(WorkerReady("a", 10))) == {"a": [3, 4]}
    assert s.workers["a"].credit == 8


def test_least_loaded_spreads_by_running_tasks_per_core():
    s = push("least-loaded")
    s.handle(WorkerJoined("big", 4))
    s.handle(WorkerJoined("small", 1))
    got = assigned(s.handle(TasksSubmitted([(i, 3) for i in range(10)])))
    # Unmeasured workers hold 2 tasks per core: 8 and 2, the small one rated as loaded.
    assert len(got["big"]) == 8 and len(got["small"]) == 2


def test_fastest_first_prefers_the_worker_measured_faster():
    s = push("fastest-first")
    s.handle(WorkerJoined("slow", 1))
    s.handle(WorkerJoined("fast", 1))
    first = assigned(s.handle(TasksSubmitted([(1, 3), (2, 3)])))
    assert sorted(first) == ["fast", "slow"]
    s.handle(TasksFinished("slow", [(first["slow"][0], 1, 1.0)]))
    s.handle(TasksFinished("fast", [(first["fast"][0], 1, 0.01)]))
    got = assigned(s.handle(TasksSubmitted([(10, 3), (11, 3)])))
    assert got == {"fast": [10, 11]}


def test_a_result_is_delivered_once_and_duplicates_are_dropped():
    s = push()
    s.handle(WorkerJoined("a", 1))
    s.handle(TasksSubmitted([(7, 3)]))
    first = s.handle(TasksFinished("a", [(7, 1, 0.1)]))
    assert of(first, Deliver) == [Deliver([7])]
    again = s.handle(TasksFinished("a", [(7, 1, 0.1)]))
    assert of(again, Deliver) == []


def test_a_lost_worker_has_its_tasks_run_elsewhere_not_on_it_again():
    s = push()
    s.handle(WorkerJoined("a", 1))
    s.handle(TasksSubmitted([(1, 3), (2, 3)]))
    s.handle(WorkerJoined("b", 1))
    s.handle(TasksFinished("a", [(1, 1, 0.5)]))
    actions = s.handle(WorkerLeft("a", "connection reset"))
    assert [r.task for r in of(actions, Retry)] == [2]
    assert assigned(actions) == {"b": [2]}
    assert s.tasks[2].attempt == 2


def test_a_stale_attempt_that_finishes_first_is_accepted_and_the_other_is_killed():
    s = push()
    s.handle(WorkerJoined("a", 1))
    s.handle(WorkerJoined("b", 1))
    s.handle(TasksSubmitted([(1, 3)]))
    holder = next(iter(assigned(s.handle(TasksSubmitted([])))), None) or s.tasks[1].worker
    other = "b" if holder == "a" else "a"
    s.handle(TasksLost(holder, [(1, 1, "segfault")]))
    assert s.tasks[1].worker == other
    actions = s.handle(TasksFinished(holder, [(1, 1, 0.1)]))
    assert of(actions, Deliver) == [Deliver([1])]
    assert of(actions, KillRunning) == [KillRunning(other, [(1, 2)])]
    assert of(s.handle(TasksFinished(other, [(1, 2, 0.1)])), Deliver) == []


def test_a_task_that_keeps_killing_its_process_is_failed_as_poison():
    s = push()
    s.handle(WorkerJoined("a", 1))
    s.handle(TasksSubmitted([(1, 2)]))
    fails = []
    for attempt in range(1, 4):
        fails += of(s.handle(TasksLost("a", [(1, attempt, "signal 9")])), Fail)
    assert len(fails) == 1 and fails[0].kind == "poison"
    assert "3 times" in fails[0].message and 1 not in s.tasks


def test_a_task_lost_with_workers_more_than_retries_fails_with_lost():
    s = push()
    s.handle(TasksSubmitted([(1, 1)]))
    actions = []
    for name in ("a", "b"):
        s.handle(WorkerJoined(name, 1))
        actions += s.handle(WorkerLeft(name))
    assert [f.kind for f in of(actions, Fail)] == ["lost"]


def test_heartbeat_missed_drops_the_worker_and_retries_its_tasks():
    s = push()
    s.handle(WorkerJoined("a", 1))
    s.handle(TasksSubmitted([(1, 3)]))
    s.handle(WorkerJoined("b", 1))
    actions = s.handle(HeartbeatMissed("a"))
    assert Disconnect("a") in actions and assigned(actions) == {"b": [1]}
    assert "a" not in s.workers


def test_cancel_removes_a_queued_task_and_kills_a_running_one():
    s = push()
    s.handle(WorkerJoined("a", 1))
    s.handle(TasksSubmitted([(i, 3) for i in range(4)]))  # 2 running (depth 2), 2 queued
    running = list(s.workers["a"].tasks)
    actions = s.handle(CancelRequested([running[0], 3]))
    assert of(actions, Cancelled) == [Cancelled([running[0], 3])]
    assert of(actions, KillRunning) == [KillRunning("a", [(running[0], 1)])]
    assert of(s.handle(TasksFinished("a", [(running[0], 1, 0.1)])), Deliver) == []
    assert 3 not in s.tasks


def test_an_unknown_policy_name_says_which_exist():
    with pytest.raises(LookupError, match="least-loaded"):
        policy_class("no-such-policy")
