"""AEAD frames: messages get through whole, and any tampering ends the session."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from security_helpers import C2S, PASSWORD, S2C, Relay, Tamper, connect

from shoal.security import (
    ChannelClosed,
    ChannelError,
    ClientConfig,
    IntegrityError,
    JobKey,
    ProtocolError,
    SecureChannel,
    ServerConfig,
    Suite,
    TruncationError,
)
from shoal.security.channel import FLAG_MORE, HEADER, HEADER_SIZE, OVERHEAD

# Both directions' classes: the compiled record core and its pure twin.
pytestmark = pytest.mark.usefixtures("record_core")

MARKER = b"PLAINTEXT-MARKER-7f3a9c"


def pair(suite: Suite = Suite.AES_256_GCM, **options: Any) -> tuple[SecureChannel, SecureChannel]:
    """Two channel ends with matching secrets, without a handshake."""
    a_to_b, b_to_a = os.urandom(32), os.urandom(32)
    return (SecureChannel(suite, a_to_b, b_to_a, **options),
            SecureChannel(suite, b_to_a, a_to_b, **options))


def frames_of(wire: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos < len(wire):
        length = int.from_bytes(wire[pos:pos + 4], "big")
        frames.append(wire[pos:pos + 4 + length])
        pos += 4 + length
    return frames


@pytest.mark.timeout(30)
@pytest.mark.parametrize("suite", list(Suite))
def test_messages_of_every_size_arrive_whole_and_in_order(suite: Suite) -> None:
    sender, receiver = pair(suite, max_frame=1024)
    messages = [b"", b"x", os.urandom(1024), os.urandom(1025), os.urandom(10_000)]
    wire = b"".join(sender.send(m) for m in messages)
    assert receiver.receive_data(wire) == messages


@pytest.mark.timeout(30)
def test_bytes_may_arrive_in_any_chunks() -> None:
    sender, receiver = pair(max_frame=1024)
    messages = [os.urandom(n) for n in (0, 5, 3000, 70)]
    wire = b"".join(sender.send(m) for m in messages)
    received: list[bytes] = []
    for i in range(0, len(wire), 7):
        received += receiver.receive_data(wire[i:i + 7])
    assert received == messages


@pytest.mark.timeout(30)
def test_any_bytes_like_object_can_be_sent() -> None:
    sender, receiver = pair(max_frame=1024)
    data = bytearray(os.urandom(4000))
    view = memoryview(data).cast("I")
    wire = sender.send(data) + sender.send(view) + sender.send(memoryview(data)[10:20])
    assert receiver.receive_data(wire) == [bytes(data), bytes(data), bytes(data[10:20])]


@pytest.mark.timeout(30)
def test_a_large_message_is_split_at_the_peers_frame_limit() -> None:
    sender, _ = pair(max_frame=4096)
    frames = list(sender.iter_frames(os.urandom(10_000)))
    assert [len(f) - OVERHEAD for f in frames] == [4096, 4096, 1808]
    flags = [HEADER.unpack_from(f)[2] for f in frames]
    assert flags == [FLAG_MORE, FLAG_MORE, 0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("suite", list(Suite))
def test_the_ciphertext_contains_no_plaintext(suite: Suite) -> None:
    sender, _ = pair(suite, max_frame=1024)
    wire = sender.send(MARKER * 200) + sender.send(MARKER)
    assert MARKER not in wire
    assert MARKER[:8] not in wire


@pytest.mark.timeout(30)
def test_a_whole_session_on_the_wire_contains_no_plaintext() -> None:
    relay = connect(ClientConfig(password=PASSWORD, name="runner"),
                    ServerConfig(password=PASSWORD))
    relay.client.send(MARKER)
    relay.server.send(MARKER * 3)
    relay.pump()
    assert relay.server.inbox == [MARKER] and relay.client.inbox == [MARKER * 3]
    assert all(MARKER not in data for data in relay.wire.values())


@pytest.mark.timeout(30)
def test_equal_messages_encrypt_differently() -> None:
    sender, _ = pair()
    first, second = sender.send(MARKER), sender.send(MARKER)
    assert first[HEADER_SIZE:] != second[HEADER_SIZE:]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("position", [0, 3, 4, 5, 6, 13, 14, 20, -17, -1])
def test_a_frame_altered_anywhere_ends_the_session(position: int) -> None:
    sender, receiver = pair()
    frame = bytearray(sender.send(b"some payload bytes"))
    frame[position] ^= 0x01
    with pytest.raises((IntegrityError, ProtocolError)):
        # A longer length waits for more bytes, so it fails on the next frame or the end.
        receiver.receive_data(bytes(frame))
        receiver.receive_data(sender.send(b"x" * 100))
        receiver.receive_eof()
    with pytest.raises(ChannelError, match="ended after an error"):
        receiver.receive_data(sender.send(b"next"))


@pytest.mark.timeout(30)
def test_a_replayed_frame_ends_the_session() -> None:
    sender, receiver = pair()
    frame = sender.send(b"pay me once")
    assert receiver.receive_data(frame) == [b"pay me once"]
    with pytest.raises(IntegrityError, match="replayed, reordered or dropped"):
        receiver.receive_data(frame)


@pytest.mark.timeout(30)
def test_genuine_messages_before_a_bad_frame_travel_on_the_error() -> None:
    sender, receiver = pair()
    good = sender.send(b"first") + sender.send(b"second")
    bad = bytearray(sender.send(b"third"))
    bad[-1] ^= 1
    with pytest.raises(IntegrityError) as info:
        receiver.receive_data(good + bad)
    assert info.value.messages == (b"first", b"second")


@pytest.mark.timeout(30)
def test_reordered_frames_end_the_session() -> None:
    sender, receiver = pair()
    first, second = sender.send(b"one"), sender.send(b"two")
    with pytest.raises(IntegrityError, match="frame 1 arrived where frame 0"):
        receiver.receive_data(second + first)


@pytest.mark.timeout(30)
def test_a_dropped_frame_ends_the_session() -> None:
    sender, receiver = pair(max_frame=1024)
    frames = list(sender.iter_frames(os.urandom(3000)))
    with pytest.raises(IntegrityError):
        receiver.receive_data(frames[0] + frames[2])


@pytest.mark.timeout(30)
def test_a_frame_sent_back_to_its_sender_is_refused() -> None:
    sender, _ = pair()
    with pytest.raises(IntegrityError, match="failed authentication"):
        sender.receive_data(sender.send(b"to myself"))


@pytest.mark.timeout(30)
def test_a_frame_spliced_from_another_session_is_refused() -> None:
    _, receiver = pair()
    other, _ = pair()
    with pytest.raises(IntegrityError, match="failed authentication"):
        receiver.receive_data(other.send(b"from elsewhere"))


@pytest.mark.timeout(30)
def test_a_stream_cut_without_close_is_truncation() -> None:
    sender, receiver = pair()
    assert receiver.receive_data(sender.send(b"all of it")) == [b"all of it"]
    with pytest.raises(TruncationError, match="without an authenticated close"):
        receiver.receive_eof()


@pytest.mark.timeout(30)
def test_a_stream_cut_inside_a_frame_is_truncation() -> None:
    sender, receiver = pair()
    frame = sender.send(b"x" * 100)
    assert receiver.receive_data(frame[:50]) == []
    with pytest.raises(TruncationError, match="bytes of an unfinished message lost"):
        receiver.receive_eof()


@pytest.mark.timeout(30)
def test_a_clean_close_is_reported_once_the_messages_before_it_are_read() -> None:
    sender, receiver = pair()
    assert receiver.receive_data(sender.send(b"last words") + sender.close()) == [b"last words"]
    assert receiver.peer_closed
    receiver.receive_eof()  # the end of the stream after CLOSE is fine
    with pytest.raises(ChannelClosed):
        receiver.receive_data(b"")
    with pytest.raises(ChannelError, match="closed"):
        sender.send(b"more")


@pytest.mark.timeout(30)
def test_bytes_after_close_end_the_session() -> None:
    sender, receiver = pair()
    close = sender.close()
    with pytest.raises(IntegrityError, match="after the peer's CLOSE"):
        receiver.receive_data(close + b"\x00\x00")


@pytest.mark.timeout(30)
def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    _, receiver = pair(max_frame=1024)
    header = HEADER.pack(1 << 20, 0x10, 0, 0)
    with pytest.raises(IntegrityError, match="exceeds this end's limit"):
        receiver.receive_data(header)


@pytest.mark.timeout(30)
def test_a_message_over_the_message_limit_is_refused() -> None:
    sender, receiver = pair(max_frame=1024, max_message=2048)
    assert len(receiver.receive_data(sender.send(os.urandom(2048)))) == 1
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        receiver.receive_data(sender.send(os.urandom(2049)))


@pytest.mark.timeout(60)
def test_keys_roll_over_after_the_rekey_volume_and_both_ends_follow() -> None:
    sender, receiver = pair(max_frame=1024, rekey_bytes=5000)
    secrets_seen = set()
    for i in range(40):
        message = os.urandom(1000 + i)
        assert receiver.receive_data(sender.send(message)) == [message]
        # By the epoch's secret, not id() of its AEAD object: a freed object's id is reused.
        secrets_seen.add(sender._send._secret)
    assert len(secrets_seen) > 5  # several key epochs were used


# -- a man in the middle on a real session --------------------------------------


Action = Callable[[int, bytes, list[bytes]], list[bytes]]


def session(tamper: Tamper) -> Relay:
    job = JobKey.generate()
    relay = connect(job.client_config(0, 1), job.server_config(1), tamper)
    assert relay.client.complete and relay.server.complete
    return relay


def on_frame(direction: str, number: int, action: Action) -> Tamper:
    """A tamper policy acting on data frame ``number`` (0-based) of one direction."""
    held: list[bytes] = []

    def tamper(d: str, index: int, unit: bytes) -> list[bytes]:
        frame = index - 2  # units 0 and 1 are handshake records
        if d != direction or frame < 0:
            return [unit]
        return action(frame - number, unit, held)

    return tamper


def flip(offset: int, unit: bytes, held: list[bytes]) -> list[bytes]:
    if offset != 0:
        return [unit]
    altered = bytearray(unit)
    altered[len(altered) // 2] ^= 0x80
    return [bytes(altered)]


def replay(offset: int, unit: bytes, held: list[bytes]) -> list[bytes]:
    return [unit, unit] if offset == 0 else [unit]


def drop(offset: int, unit: bytes, held: list[bytes]) -> list[bytes]:
    return [] if offset == 0 else [unit]


def swap(offset: int, unit: bytes, held: list[bytes]) -> list[bytes]:
    if offset == 0:
        held.append(unit)
        return []
    if offset == 1:
        return [unit, *held]
    return [unit]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("direction", [C2S, S2C])
@pytest.mark.parametrize("action", [flip, replay, drop, swap])
def test_a_man_in_the_middle_who_touches_a_frame_ends_the_session(direction: str,
                                                                  action: Action) -> None:
    relay = session(on_frame(direction, 1, action))
    sender, receiver = ((relay.client, relay.server) if direction == C2S
                        else (relay.server, relay.client))
    for i in range(4):
        sender.send(b"message %d" % i)
        relay.pump()
    assert isinstance(receiver.error, IntegrityError)
    # Nothing after the tampering gets through (a replay fails on the copy).
    genuine = 2 if action is replay else 1
    assert receiver.inbox == [b"message %d" % i for i in range(genuine)]


@pytest.mark.timeout(30)
def test_a_man_in_the_middle_who_swallows_the_close_causes_truncation() -> None:
    relay = session(on_frame(C2S, 1, drop))
    relay.client.send(b"only message")
    relay.client.close()
    relay.pump()
    relay.hang_up()
    assert relay.server.inbox == [b"only message"]
    assert isinstance(relay.server.error, TruncationError)


@pytest.mark.timeout(30)
def test_a_man_in_the_middle_who_cuts_a_frame_in_half_causes_truncation() -> None:
    def halve(offset: int, unit: bytes, held: list[bytes]) -> list[bytes]:
        return [unit[:len(unit) // 2]] if offset == 0 else []

    relay = session(on_frame(C2S, 0, halve))
    relay.client.send(b"x" * 1000)
    relay.pump()
    relay.hang_up()
    assert relay.server.inbox == []
    assert isinstance(relay.server.error, TruncationError)


@pytest.mark.timeout(30)
def test_a_clean_close_through_an_honest_relay_is_not_an_error() -> None:
    relay = session(lambda d, i, unit: [unit])
    relay.client.send(b"bye")
    relay.client.close()
    relay.pump()
    relay.hang_up()
    assert relay.server.inbox == [b"bye"] and relay.server.error is None
    assert relay.server.channel is not None and relay.server.channel.peer_closed
