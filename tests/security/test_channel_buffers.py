"""The channel's paths for transports that keep their own buffers: seal() into a given
buffer, open_frames() over a buffer with a cut frame at its end, frame_size() of that
frame, payloads opened into given buffers; the same bytes and the same refusals as
send() and receive_data()."""

from __future__ import annotations

import os
from typing import Any

import pytest

from shoal.security import (
    AuthenticationError,
    ChannelError,
    IntegrityError,
    ProtocolError,
    SecureChannel,
    Suite,
)
from shoal.security.channel import OPEN_INTO_MIN, OVERHEAD, SIZE_PREFIX
from shoal.security.records import ALERT_AUTH_FAILED, alert

# Both directions' classes: the compiled record core and its pure twin.
pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("record_core")]


def pair(suite: Suite = Suite.AES_256_GCM, **options: Any) -> tuple[SecureChannel, SecureChannel]:
    a_to_b, b_to_a = os.urandom(32), os.urandom(32)
    return (SecureChannel(suite, a_to_b, b_to_a, **options),
            SecureChannel(suite, b_to_a, a_to_b, **options))


def same_keys(count: int, **options: Any) -> list[SecureChannel]:
    """Channel ends with the same secrets: what one seals, each other seals identically
    (and each opens what any of them sealed)."""
    a_to_b, b_to_a = os.urandom(32), os.urandom(32)
    return [SecureChannel(Suite.AES_256_GCM, a_to_b, b_to_a, **options) for _ in range(count)]


@pytest.mark.parametrize("size", [0, 1, 48, 1000, 70_000])
def test_seal_and_seal_into_give_the_bytes_of_send(size: int) -> None:
    payload = os.urandom(size)
    one, two, three = same_keys(3)
    buffer = bytearray(size + OVERHEAD + 100)
    sent = one.send(payload)
    assert bytes(two.seal(memoryview(payload))) == sent
    into = three.seal(payload, memoryview(buffer))
    assert isinstance(into, memoryview) and into.obj is buffer and bytes(into) == sent


def test_open_frames_takes_whole_frames_and_frame_size_measures_the_cut_one() -> None:
    a_to_b, b_to_a = os.urandom(32), os.urandom(32)
    sender = SecureChannel(Suite.AES_256_GCM, a_to_b, b_to_a, max_frame=4096)
    messages = [os.urandom(n) for n in (3, 4000, 0, 100, 2500)]
    wire = b"".join(sender.send(m) for m in messages)
    for cut in range(len(wire) + 1):
        receiver = SecureChannel(Suite.AES_256_GCM, b_to_a, a_to_b, max_frame=4096)
        opened: list[Any] = []
        used = receiver.open_frames(memoryview(wire)[:cut], opened)
        assert opened == messages[:len(opened)]
        rest = cut - used
        if rest >= SIZE_PREFIX:
            size = receiver.frame_size(memoryview(wire)[used:cut])
            assert rest < size and wire[used:used + 4] == (size - 4).to_bytes(4, "big")
        opened_after: list[Any] = []
        assert receiver.open_frames(memoryview(wire)[used:], opened_after) == len(wire) - used
        assert opened + opened_after == messages


def test_large_payloads_open_into_the_buffers_given_and_small_ones_as_bytes() -> None:
    sender, receiver = pair(max_frame=1 << 20)
    big, small = os.urandom(OPEN_INTO_MIN + 5), os.urandom(100)
    wire = sender.send(big) + sender.send(small)
    given: list[bytearray] = []

    def into(n: int) -> memoryview:
        given.append(bytearray(n + 10))
        return memoryview(given[-1])[:n]

    opened: list[Any] = []
    assert receiver.open_frames(memoryview(wire), opened, into) == len(wire)
    assert [bytes(m) for m in opened] == [big, small]
    assert len(given) == 1 and opened[0].obj is given[0] and type(opened[1]) is bytes


def test_an_altered_frame_fails_open_frames_after_the_genuine_ones() -> None:
    sender, receiver = pair(max_frame=1 << 20)
    first, second = os.urandom(OPEN_INTO_MIN), os.urandom(OPEN_INTO_MIN)
    wire = bytearray(sender.send(first) + sender.send(second))
    wire[-100] ^= 0x01
    with pytest.raises(IntegrityError, match="frame 1 failed authentication") as caught:
        receiver.open_frames(memoryview(wire), [], lambda n: memoryview(bytearray(n)))
    assert [bytes(m) for m in caught.value.messages] == [first]
    with pytest.raises(ChannelError):
        receiver.open_frames(memoryview(wire), [])


def test_frame_size_refuses_an_oversized_frame_before_anything_is_buffered() -> None:
    sender, receiver = pair(max_frame=1024)
    frame = bytearray(SecureChannel(Suite.AES_256_GCM, os.urandom(32), os.urandom(32),
                                    max_frame=1 << 20).send(os.urandom(5000)))
    with pytest.raises(IntegrityError, match="exceeds this end's limit"):
        receiver.frame_size(memoryview(frame)[:SIZE_PREFIX])
    with pytest.raises(ChannelError):
        receiver.open_frames(memoryview(sender.send(b"late")), [])


def test_a_clients_first_bytes_may_be_an_alert_and_open_frames_raises_it() -> None:
    _, client = pair(alert_from_server=True)
    record = alert(ALERT_AUTH_FAILED)
    assert client.frame_size(memoryview(record)[:SIZE_PREFIX]) == len(record)
    assert client.open_frames(memoryview(record)[:7], []) == 0  # the rest of it first
    with pytest.raises(AuthenticationError):
        client.open_frames(memoryview(record), [])


def test_open_frames_and_receive_data_are_not_mixed() -> None:
    sender, receiver = pair()
    wire = sender.send(b"one") + sender.send(b"two")
    assert receiver.receive_data(wire[:5]) == []
    with pytest.raises(ChannelError, match="cannot be mixed"):
        receiver.open_frames(memoryview(wire[5:]), [])


def test_a_message_over_max_message_is_refused_by_open_frames_too() -> None:
    sender, receiver = pair(max_frame=4096, max_message=100)
    with pytest.raises(ProtocolError, match="exceeds the limit of 100"):
        receiver.open_frames(memoryview(sender.send(os.urandom(101))), [])
