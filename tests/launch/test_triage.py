"""The pure rule that picks a job's cause among near-simultaneous failure reports."""

from __future__ import annotations

import pytest

from shoal.errors import CommunicationError, PeerLostError
from shoal.launch.triage import GRACE, Held, Triage, lost_peer
from shoal.security.errors import IntegrityError, TruncationError

pytestmark = pytest.mark.timeout(10)


def _held(rank: int, since: float) -> Held:
    return Held(rank=rank, where="h", status=1, traceback=f"Traceback {rank}",
                summary=f"PeerLostError: rank {rank}", since=since)


def test_a_held_report_is_due_only_after_its_grace() -> None:
    triage = Triage(grace=1.0)
    assert triage.due(100.0) is None and triage.deadline() is None
    triage.hold(_held(0, since=10.0))
    assert triage.holds(0) and not triage.holds(1)
    assert triage.due(10.9) is None
    assert triage.deadline() == 11.0
    assert triage.due(11.0) == _held(0, since=10.0)


def test_the_oldest_report_is_the_one_that_becomes_due_and_release_empties() -> None:
    triage = Triage(grace=1.0)
    triage.hold(_held(2, since=5.0))
    triage.hold(_held(1, since=5.5))
    due = triage.due(6.2)
    assert due is not None and due.rank == 2
    assert [h.rank for h in triage.release()] == [2, 1]
    assert triage.release() == [] and triage.due(100.0) is None and not triage.holds(2)


def test_the_default_grace_is_short_but_covers_a_report_crossing_another_host() -> None:
    assert 0.5 <= GRACE <= 3.0


def test_lost_peer_errors_and_what_is_raised_from_them_are_consequences() -> None:
    assert lost_peer(PeerLostError("gone"))
    assert lost_peer(TruncationError("ended without an authenticated close"))
    try:
        try:
            raise PeerLostError("the connection to rank 1 ended")
        except PeerLostError as exc:
            raise CommunicationError("Recv failed") from exc
    except CommunicationError as wrapped:
        assert lost_peer(wrapped)
    try:
        try:
            raise PeerLostError("gone")
        except PeerLostError:
            raise ValueError("while handling it") from None
    except ValueError as hidden:
        assert lost_peer(hidden)  # __context__ is kept even when suppressed


def test_causes_are_not_consequences() -> None:
    assert not lost_peer(IntegrityError("a frame failed its integrity check"))
    assert not lost_peer(ZeroDivisionError("division by zero"))
    assert not lost_peer(CommunicationError("bad rank"))
    loop = ValueError("a")
    loop.__context__ = ValueError("b")
    loop.__context__.__context__ = loop  # a cycle ends the walk
    assert not lost_peer(loop)
