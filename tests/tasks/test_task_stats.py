"""The service's counters, fed with a made-up clock."""

from __future__ import annotations

import pytest

from shoal.tasks.stats import WINDOW, Tally, Throughput


def test_throughput_is_tasks_per_second_over_the_last_minute():
    rate = Throughput(start=1000.0)
    assert rate.rate(1000.0) == 0.0
    rate.add(1000.2, 5)
    rate.add(1000.7, 5)
    assert rate.rate(1001.0) == 10.0              # younger than a second: per one second
    for second in range(1001, 1010):
        rate.add(second + 0.5, 10)
    assert rate.rate(1010.0) == pytest.approx(100 / 10)   # ten seconds old: over ten
    assert rate.rate(1005.0 + WINDOW) == pytest.approx(40 / WINDOW)  # 1000-1005 are out
    assert rate.rate(2000.0) == 0.0


def test_a_tally_counts_values_and_errors():
    tally = Tally()
    tally.count(True, 3)
    tally.count(False)
    assert (tally.done, tally.failed) == (3, 1)
