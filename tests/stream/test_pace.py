"""How far ahead a local process is lent (shoal.stream.pace), driven without a clock."""

from __future__ import annotations

from shoal.stream.pace import AHEAD, LendAhead


def test_quick_items_deepen_the_queue_up_to_the_limit():
    ahead = LendAhead(least=2)
    assert ahead.depth(most=500) == 2            # nothing measured yet: two batches
    now, depth = 0.0, 2
    for _ in range(20):
        # The process answers all it holds after a round trip of 200 us and 1 us an item.
        now += 200e-6 + depth * 1e-6
        ahead.results(now, depth)
        depth = ahead.depth(most=500)
    assert depth == 500


def test_slow_items_keep_two_batches():
    ahead = LendAhead(least=8)
    now = 0.0
    for _ in range(10):
        now += 8 * 0.050                         # 50 ms an item, 8 at a time
        ahead.results(now, 8)
    assert ahead.item_time > AHEAD
    assert ahead.depth(most=500) == 8


def test_the_measure_follows_a_change_of_pace():
    ahead = LendAhead(least=1)
    now = 0.0
    for _ in range(10):
        now += 0.001
        ahead.results(now, 100)                  # 10 us an item
    quick = ahead.depth(most=10_000)
    for _ in range(10):
        now += 0.050
        ahead.results(now, 1)                    # then 50 ms an item
    assert abs(quick - AHEAD / 10e-6) <= 1 and ahead.depth(most=10_000) == 1
