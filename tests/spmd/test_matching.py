"""The matching rules, checked on the pure state machine (no processes, no I/O)."""

from __future__ import annotations

import pytest

from shoal.spmd.matching import ANY_SOURCE, ANY_TAG, Matcher, Message, PostedReceive

pytestmark = pytest.mark.timeout(10)


def message(source: int, tag: int, stamp: int, ctx: int = 0) -> Message:
    return Message(source, tag, ctx, 0, 1, stamp, stamp, 0, b"")


def test_a_message_goes_to_the_earliest_posted_receive_that_matches() -> None:
    matcher = Matcher()
    first, second = PostedReceive(0, ANY_SOURCE, ANY_TAG), PostedReceive(0, 1, 5)
    assert matcher.post(first) is None and matcher.post(second) is None
    assert matcher.arrive(message(1, 5, 1)) is first
    assert matcher.arrive(message(1, 5, 2)) is second


def test_messages_from_one_source_are_matched_in_the_order_they_arrived() -> None:
    matcher = Matcher()
    for stamp in (10, 20, 30):
        assert matcher.arrive(message(2, 7, stamp)) is None
    taken = [matcher.take(0, 2, 7) for _ in range(3)]
    assert [m.stamp for m in taken if m] == [10, 20, 30]
    assert matcher.take(0, 2, 7) is None


def test_any_source_takes_the_message_sent_first_whatever_the_arrival_order() -> None:
    matcher = Matcher()
    matcher.arrive(message(3, 0, stamp=50))
    matcher.arrive(message(1, 0, stamp=20))
    matcher.arrive(message(2, 0, stamp=35))
    assert [matcher.take(0, ANY_SOURCE, ANY_TAG).source for _ in range(3)] == [1, 2, 3]


def test_a_tag_filter_skips_other_tags_without_losing_them() -> None:
    matcher = Matcher()
    matcher.arrive(message(1, 1, 1))
    matcher.arrive(message(1, 2, 2))
    assert matcher.take(0, 1, 2).tag == 2
    assert matcher.take(0, 1, ANY_TAG).tag == 1


def test_contexts_never_match_each_other() -> None:
    matcher = Matcher()
    receive = PostedReceive(ctx=2, source=ANY_SOURCE, tag=ANY_TAG)
    matcher.post(receive)
    assert matcher.arrive(message(0, 0, 1, ctx=0)) is None
    assert matcher.arrive(message(0, 0, 2, ctx=2)) is receive
    assert matcher.find(0, ANY_SOURCE, ANY_TAG).stamp == 1


def test_find_leaves_the_message_and_take_removes_it() -> None:
    matcher = Matcher()
    matcher.arrive(message(4, 9, 1))
    assert matcher.find(0, 4, 9) is matcher.find(0, 4, 9)
    assert matcher.pending() == 1
    assert matcher.take(0, 4, 9) is not None
    assert matcher.pending() == 0


def test_a_cancelled_receive_no_longer_matches() -> None:
    matcher = Matcher()
    receive = PostedReceive(0, 1, 1)
    matcher.post(receive)
    assert matcher.cancel(receive)
    assert not matcher.cancel(receive)
    assert matcher.arrive(message(1, 1, 1)) is None
