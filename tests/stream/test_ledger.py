"""The coordinator's bookkeeping rules, driven directly (no sockets, no processes)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.stream.ledger import Ledger, Outcome, Run


def ok(item_id: int, value: object = None) -> Outcome:
    return Outcome(item_id, True, value=value if value is not None else item_id * 10)


def fill(ledger: Ledger, values: list[object]) -> list[int]:
    return [ledger.admit(value) for value in values]


def test_ids_follow_input_order_from_zero():
    ledger = Ledger(window=10)
    assert fill(ledger, ["a", "b", "c"]) == [0, 1, 2]


def test_a_volunteer_is_never_lent_more_than_its_capacity():
    ledger = Ledger(window=10)
    ledger.join("v", 2)
    fill(ledger, list(range(5)))
    assert ledger.lend("v") == [(0, 0), (1, 1)]
    assert ledger.lend("v") == []
    assert ledger.settle("v", ok(0))
    assert ledger.lend("v") == [(2, 2)]


def test_results_are_released_in_input_order_only():
    ledger = Ledger(window=10)
    ledger.join("a", 1)
    ledger.join("b", 1)
    fill(ledger, [0, 1])
    ledger.lend("a")
    ledger.lend("b")
    ledger.settle("b", ok(1))
    assert ledger.release() == []
    assert ledger.buffered == 1
    ledger.settle("a", ok(0))
    assert [o.id for o in ledger.release()] == [0, 1]


def test_an_unordered_ledger_releases_results_as_they_settle():
    ledger = Ledger(window=10, ordered=False)
    ledger.join("a", 2)
    fill(ledger, [0, 1])
    ledger.lend("a")
    ledger.settle("a", ok(1))
    assert [o.id for o in ledger.release()] == [1]


def test_a_lost_volunteers_items_are_lent_again_before_newer_ones():
    ledger = Ledger(window=10)
    ledger.join("a", 2)
    ledger.join("b", 1)
    fill(ledger, list(range(4)))
    assert [i for i, _ in ledger.lend("a")] == [0, 1]
    assert [i for i, _ in ledger.lend("b")] == [2]
    assert ledger.lose("a") == [0, 1]
    ledger.settle("b", ok(2))
    assert [i for i, _ in ledger.lend("b")] == [0]
    assert ledger.relent == 2


def test_consecutive_items_are_lent_and_settled_as_one_run():
    ledger = Ledger(window=100)
    ledger.join("a", 8)
    assert list(ledger.admit_many(["a", "b", "c", "d"])) == [0, 1, 2, 3]
    lent = ledger.lend_batch("a", limit=3)
    assert lent.ids == range(0, 3) and lent.values == ["a", "b", "c"]
    assert ledger.settle_run("a", 0, ["A", "B", "C"]) == 3
    [run] = ledger.release_runs()
    assert run == Run(0, ["A", "B", "C"])
    assert ledger.released == 3 and ledger.free_slots("a") == 8


def test_a_run_of_results_counts_only_for_the_items_the_volunteer_holds():
    ledger = Ledger(window=100)
    ledger.join("a", 2)
    ledger.join("b", 2)
    ledger.admit_many(list(range(4)))
    ledger.lend_batch("a")          # 0, 1
    ledger.lend_batch("b")          # 2, 3
    assert ledger.settle_run("a", 0, [0, 10]) == 2
    assert ledger.settle_run("a", 1, [10, 20, 30]) == 0   # 1 again, 2 and 3 are b's
    assert ledger.duplicates == 1 and ledger.unsolicited == 2
    assert ledger.settle_run("b", 2, [20, 30]) == 2
    assert [o.value for o in ledger.release()] == [0, 10, 20, 30]


def test_failures_keep_their_place_between_runs():
    ledger = Ledger(window=100)
    ledger.join("a", 5)
    ledger.admit_many(list(range(5)))
    ledger.lend_batch("a")
    ledger.settle_run("a", 3, [30, 40])
    ledger.settle("a", Outcome(2, False, error="ValueError: no"))
    ledger.settle_run("a", 0, [0, 10])
    first, failed, last = ledger.release_runs()
    assert first == Run(0, [0, 10]) and last == Run(3, [30, 40])
    assert isinstance(failed, Outcome) and failed.id == 2 and failed.item == 2
    assert ledger.released == 5


def test_items_taken_back_from_a_lost_volunteer_go_out_alone_to_empty_hands():
    ledger = Ledger(window=100)
    ledger.join("a", 4)
    ledger.join("b", 4)
    ledger.admit_many(list(range(6)))
    ledger.lend_batch("a", limit=2)            # 0, 1
    ledger.lend_batch("b", limit=2)            # 2, 3
    assert ledger.lose("a") == [0, 1]
    assert ledger.lend("b") == []              # b holds items: 0 waits for empty hands
    ledger.settle_run("b", 2, [2, 3])
    assert ledger.lend("b") == [(0, 0)]        # alone ...
    assert ledger.lend("b") == []              # ... and nothing more until it answers
    ledger.settle("b", ok(0))
    assert ledger.lend("b") == [(1, 1)]
    assert ledger.attempts(1) == 2


def test_a_killer_item_fails_and_its_batch_neighbours_are_computed():
    ledger = Ledger(window=100, max_losses=3)
    ledger.admit_many(["ok", "deadly", "ok too"])
    ledger.end_input()
    names = iter(range(100))
    outcomes: list[Outcome] = []
    while not ledger.finished():
        volunteer = next(names)
        ledger.join(volunteer, 3)
        lent = ledger.lend(volunteer)
        if any(value == "deadly" for _, value in lent):
            ledger.lose(volunteer)          # it dies computing the batch
        else:
            for item_id, value in lent:
                ledger.settle(volunteer, Outcome(item_id, True, value=value))
        outcomes += ledger.release()
    assert [(o.ok, o.value) for o in outcomes] == [(True, "ok"), (False, None), (True, "ok too")]
    assert "ItemLost" in outcomes[1].error
    assert ledger.relent == 4               # the batch once, then the killer alone twice


def test_a_result_arriving_twice_is_used_once():
    ledger = Ledger(window=10)
    ledger.join("a", 2)
    fill(ledger, [7, 8])
    ledger.lend("a")
    assert ledger.settle("a", ok(0, "first"))
    assert not ledger.settle("a", ok(0, "again"))
    assert ledger.duplicates == 1
    assert [o.value for o in ledger.release()] == ["first"]
    assert ledger.free_slots("a") == 1


def test_a_volunteer_cannot_settle_an_item_it_does_not_hold():
    ledger = Ledger(window=10)
    ledger.join("a", 1)
    ledger.join("b", 1)
    fill(ledger, [7])
    ledger.lend("a")
    assert not ledger.settle("b", ok(0, "forged"))
    assert not ledger.settle("b", ok(99, "made up"))
    assert ledger.unsolicited == 2 and ledger.release() == []
    assert ledger.settle("a", ok(0, "real"))
    assert [o.value for o in ledger.release()] == ["real"]


def test_a_lost_volunteers_late_result_is_not_used():
    ledger = Ledger(window=10)
    ledger.join("a", 1)
    fill(ledger, [7])
    ledger.lend("a")
    ledger.lose("a")
    ledger.join("b", 1)
    ledger.lend("b")
    assert not ledger.settle("a", ok(0, "late"))
    assert ledger.settle("b", ok(0, "relent"))
    assert [o.value for o in ledger.release()] == ["relent"]


def test_an_error_result_fails_the_item_at_once():
    ledger = Ledger(window=10)
    ledger.join("a", 1)
    fill(ledger, ["x"])
    ledger.lend("a")
    ledger.settle("a", Outcome(0, False, error="ValueError: bad", traceback="tb"))
    [failed] = ledger.release()
    assert not failed.ok and failed.item == "x" and failed.error == "ValueError: bad"
    assert ledger.waiting_count == 0


def test_an_item_that_keeps_killing_volunteers_fails_after_max_losses():
    ledger = Ledger(window=10, max_losses=3)
    fill(ledger, ["deadly"])
    for attempt in range(3):
        ledger.join(attempt, 1)
        assert [i for i, _ in ledger.lend(attempt)] == [0]
        ledger.lose(attempt)
    [failed] = ledger.release()
    assert not failed.ok and "3 volunteers were lost" in failed.error


def test_the_window_bounds_items_admitted_and_not_yet_released():
    ledger = Ledger(window=3)
    ledger.join("a", 1)
    ledger.join("b", 5)
    fill(ledger, [0, 1, 2])
    assert ledger.room() == 0
    with pytest.raises(ValueError):
        ledger.admit(3)
    ledger.lend("a")                 # item 0: slow
    ledger.lend("b")
    ledger.settle("b", ok(1))
    ledger.settle("b", ok(2))
    assert ledger.release() == []    # waiting for 0: still no room
    assert ledger.room() == 0 and ledger.demand() == 0
    ledger.settle("a", ok(0))
    assert len(ledger.release()) == 3
    assert ledger.room() == 3
    assert ledger.peak_open == 3


def test_demand_counts_free_slots_beyond_what_already_waits():
    ledger = Ledger(window=100)
    ledger.join("a", 4)
    assert ledger.demand() == 4
    fill(ledger, [0])
    assert ledger.demand() == 3


def test_an_input_that_is_no_value_fails_in_its_place_without_being_lent():
    ledger = Ledger(window=10)
    ledger.join("a", 2)
    ledger.admit(1)
    ledger.admit_failed("{bad", "BadInput: not JSON")
    ledger.admit(3)
    assert [i for i, _ in ledger.lend("a")] == [0, 2]
    ledger.settle("a", ok(2))
    ledger.settle("a", ok(0))
    assert [(o.id, o.ok) for o in ledger.release()] == [(0, True), (1, False), (2, True)]


def test_the_stream_finishes_when_input_ended_and_everything_was_released():
    ledger = Ledger(window=10)
    ledger.join("a", 1)
    fill(ledger, [0])
    ledger.end_input()
    assert not ledger.finished()
    ledger.lend("a")
    ledger.settle("a", ok(0))
    assert not ledger.finished()
    ledger.release()
    assert ledger.finished()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_interleaving_releases_each_item_exactly_once_in_order(data):
    ledger = Ledger(window=data.draw(st.integers(1, 8)), max_losses=1000)
    total = data.draw(st.integers(0, 25))
    fed = 0
    names = iter(range(10_000))
    volunteers: list[int] = []
    released: list[Outcome] = []
    for _ in range(120):
        if ledger.finished():
            break
        action = data.draw(st.sampled_from(["join", "admit", "lend", "settle", "lose"]))
        if action == "join" or not volunteers:
            volunteer = next(names)
            ledger.join(volunteer, data.draw(st.integers(1, 3)))
            volunteers.append(volunteer)
        elif action == "admit":
            while fed < total and ledger.room():
                ledger.admit(fed)
                fed += 1
            if fed == total:
                ledger.end_input()
        elif action == "lend":
            ledger.lend(data.draw(st.sampled_from(volunteers)))
        elif action == "settle":
            volunteer = data.draw(st.sampled_from(volunteers))
            held = sorted(ledger.held(volunteer))
            if held and data.draw(st.booleans()):
                # A run from its lowest id, as a volunteer's results message says it (it may
                # overlap items it does not hold: those must not count).
                start, count = held[0], data.draw(st.integers(1, 4))
                ledger.settle_run(volunteer, start, [i * 10 for i in range(start, start + count)])
            else:
                for item_id in held:
                    ledger.settle(volunteer, ok(item_id))
        else:
            ledger.lose(volunteers.pop(data.draw(st.integers(0, len(volunteers) - 1))))
        released += ledger.release()
        assert ledger.open_count <= ledger.window
        for volunteer in volunteers:
            assert len(ledger.held(volunteer)) <= 3
    assert [o.id for o in released] == list(range(len(released)))
    assert all(o.ok and o.value == o.id * 10 for o in released)
