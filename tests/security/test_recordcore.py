"""The compiled record core (shoal.security._recordcore): the same frames as the pure
record layer, byte for byte, and nothing opened that the pure layer would refuse."""

from __future__ import annotations

import os
import select
import socket
import threading

import pytest

from shoal.security import ChannelError, IntegrityError, SecureChannel, Suite
from shoal.security import channel as channel_module
from shoal.security.channel import HEADER_SIZE, OVERHEAD

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(channel_module._CDirection is None,
                       reason="the compiled record core is not built (no OpenSSL headers?)"),
]

SUITES = [Suite.AES_256_GCM, Suite.CHACHA20_POLY1305]
LIMIT = 1 << 20
BULK = channel_module.BULK_MIN
# Sizes on both sides of the bulk AEAD's threshold, up to seal_send's most.
LARGE = (BULK - 47, BULK, 64 * 1024, channel_module.SEAL_SEND_LIMIT)


@pytest.fixture(autouse=True, params=["evp", "bulk"])
def aead_path(request, monkeypatch) -> str:
    """Every test twice: large frames sealed and opened by the core's own EVP calls, and
    through cryptography's AEAD (set_bulk), whichever this machine would choose."""
    if request.param == "bulk" and not (channel_module._HAS_ENCRYPT_INTO
                                        and channel_module._HAS_DECRYPT_INTO):
        pytest.skip("this cryptography has no encrypt_into / decrypt_into")
    monkeypatch.setattr(channel_module, "_BULK", request.param == "bulk")
    return request.param


def ends(suite: Suite, pure: bool, monkeypatch: pytest.MonkeyPatch, secrets: tuple[bytes, bytes],
         **options: int) -> tuple[SecureChannel, SecureChannel]:
    """Two channel ends with the given secrets, compiled or pure."""
    if pure:
        monkeypatch.setenv("SHOAL_PURE_PYTHON", "1")
    else:
        monkeypatch.delenv("SHOAL_PURE_PYTHON", raising=False)
    a_to_b, b_to_a = secrets
    made = (SecureChannel(suite, a_to_b, b_to_a, **options),
            SecureChannel(suite, b_to_a, a_to_b, **options))
    monkeypatch.delenv("SHOAL_PURE_PYTHON", raising=False)
    return made


@pytest.fixture
def secrets() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


def test_the_switch_picks_the_compiled_or_the_pure_directions(monkeypatch, secrets) -> None:
    compiled, _ = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    pure, _ = ends(Suite.AES_256_GCM, True, monkeypatch, secrets)
    assert hasattr(compiled._send, "seal_send") and hasattr(compiled._recv, "recv_open")
    assert not hasattr(pure._send, "seal_send")
    monkeypatch.setenv("SHOAL_PURE_PYTHON", "1")
    assert channel_module.compiled() is False


@pytest.mark.parametrize("suite", SUITES)
def test_compiled_frames_are_the_pure_frames_byte_for_byte(monkeypatch, secrets, suite) -> None:
    compiled, _ = ends(suite, False, monkeypatch, secrets)
    pure, _ = ends(suite, True, monkeypatch, secrets)
    sizes = (0, 1, 15, 16, 17, 48, 1000, *LARGE)
    for size in sizes:
        payload = os.urandom(size)
        split = size // 3
        frame = compiled._send.seal(payload[:split], payload[split:])
        assert frame == pure.seal(payload)
        assert len(frame) == size + OVERHEAD
    frame = compiled._send.seal(b"", payload)  # no prefix: the body alone is the plaintext
    assert frame == pure.seal(payload)
    assert compiled._send.seq == pure._send.seq == len(sizes) + 1
    assert compiled._send.epoch_bytes == pure._send.epoch_bytes


@pytest.mark.parametrize("suite", SUITES)
def test_each_side_opens_what_the_other_sealed(monkeypatch, secrets, suite) -> None:
    c_send, c_recv = ends(suite, False, monkeypatch, secrets)
    p_send, p_recv = ends(suite, True, monkeypatch, secrets)
    # The first frame of a session is always the pure layer's to read (it may be a
    # handshake ALERT): open() leaves it, counting nothing.
    first = p_send.seal(b"first")
    assert c_recv._recv.open(first, LIMIT) is None and c_recv._recv.seq == 0
    assert c_recv.receive_data(first) == [b"first"]
    assert p_recv.receive_data(c_send.seal(b"first")) == [b"first"]
    sizes = [i * 37 for i in range(1, 50)] + list(LARGE)
    for size in sizes:
        message = os.urandom(size)
        assert c_recv._recv.open(p_send.seal(message), LIMIT) == message
        assert p_recv.receive_data(c_send._send.seal(message[:5], message[5:])) == [message]
    # The two layers share one count: frames opened either way follow each other.
    assert c_recv.receive_data(p_send.seal(b"by python")) == [b"by python"]
    assert c_recv._recv.open(p_send.seal(b"by C"), LIMIT) == b"by C"
    assert c_recv._recv.seq == p_send._send.seq == len(sizes) + 3


@pytest.mark.parametrize("size", [100, BULK, 64 * 1024])
def test_open_refuses_what_the_pure_layer_refuses_and_counts_nothing(monkeypatch, secrets,
                                                                        size) -> None:
    send, recv = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    recv.receive_data(send.seal(b"first"))
    good = send.seal(b"x" * size)
    opener = recv._recv
    for bad in (
        good[:-1] + bytes([good[-1] ^ 1]),                         # a flipped tag bit
        good[:20] + bytes([good[20] ^ 0x80]) + good[21:],          # a flipped ciphertext bit
        good[:5] + b"\x01" + good[6:],                             # MORE set: not whole
        good + b"\x00",                                            # more than one frame
        good[:-1],                                                 # less than one frame
    ):
        assert opener.open(bad, LIMIT) is None
        assert opener.seq == 1
    assert opener.open(good, 50) is None  # longer than the limit given
    assert opener.open(good, LIMIT) == b"x" * size
    assert opener.open(good, LIMIT) is None  # a replay: frame 1 again where 2 is next
    assert opener.seq == 2
    # What open() left is the pure layer's, which says what is wrong.
    flipped = send.seal(b"y" * 10)
    flipped = flipped[:-1] + bytes([flipped[-1] ^ 1])
    with pytest.raises(IntegrityError, match="failed authentication"):
        recv.receive_data(flipped)


@pytest.mark.parametrize("suite", SUITES)
def test_the_compiled_count_moves_to_the_next_key_where_the_pure_one_does(monkeypatch, secrets,
                                                                           suite) -> None:
    c_send, c_recv = ends(suite, False, monkeypatch, secrets, rekey_bytes=500)
    p_send, p_recv = ends(suite, True, monkeypatch, secrets, rekey_bytes=500)
    c_recv.receive_data(p_send.seal(b"first"))
    p_recv.receive_data(c_send.seal(b"first"))
    keys = []  # (the AEAD objects themselves: ids of freed ones may repeat)
    for i in range(40):
        message = bytes([i]) * 100  # 132 counted a frame: a new key every fourth frame
        assert p_recv.receive_data(c_send._send.seal(b"", message)) == [message]
        assert c_recv._recv.open(p_send.seal(message), LIMIT) == message
        if c_send._send.aead not in keys:
            keys.append(c_send._send.aead)
    assert len(keys) >= 10 and c_send._send.epoch_bytes == p_send._send.epoch_bytes


def test_a_used_up_sequence_is_refused_by_both(monkeypatch, secrets) -> None:
    for pure in (False, True):
        send, _ = ends(Suite.AES_256_GCM, pure, monkeypatch, secrets)
        send._send.seq = (1 << 64) - 1
        with pytest.raises(ChannelError, match="used up"):
            send.seal(b"the last number")
        assert send._send.seq == 1 << 64
        with pytest.raises(ChannelError, match="used up"):
            if pure:
                send._send.advance(0)
            else:
                send._send.seal(b"", b"no more")
    compiled, _ = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    with pytest.raises(OverflowError):
        compiled._send.seq = (1 << 64) + 1


def test_seal_send_sends_a_frame_or_hands_back_what_the_socket_did_not_take(monkeypatch,
                                                                            secrets) -> None:
    send, recv = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    try:
        assert send._send.seal_send(left.fileno(), b"head:", b"body") is None
        assert recv.receive_data(right.recv(1024)) == [b"head:body"]
        # Fill the socket: each call then gives back the unsent rest of its frame, whole
        # (nothing of it was sent) once the socket takes nothing.
        rests = []
        for i in range(200):
            rest = send._send.seal_send(left.fileno(), b"", bytes([i]) * 1000)
            if rest is not None:
                rests.append((i, rest))
        assert rests, "the socket never filled"
        i, rest = rests[-1]
        assert len(rest) == 1000 + OVERHEAD
        with pytest.raises(ValueError, match="at most"):
            send._send.seal_send(left.fileno(), b"", bytes(140_000))
    finally:
        left.close()
        right.close()


def test_recv_open_reads_once_and_opens_only_one_whole_frame(monkeypatch, secrets) -> None:
    send, recv = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    left, right = socket.socketpair()
    buffer = memoryview(bytearray(1 << 16))
    fd = right.fileno()
    try:
        assert recv._recv.recv_open(fd, buffer, LIMIT) == -1  # nothing there
        left.sendall(send.seal(b"first"))
        n = recv._recv.recv_open(fd, buffer, LIMIT)  # frame 0: the pure layer's
        assert n == 5 + OVERHEAD and recv.open_frames(buffer[:n], out := []) == n
        assert out == [b"first"]
        left.sendall(send.seal(b"second"))
        assert recv._recv.recv_open(fd, buffer, LIMIT) == b"second"
        two = send.seal(b"third") + send.seal(b"fourth")
        left.sendall(two)
        n = recv._recv.recv_open(fd, buffer, LIMIT)  # two frames in one read: left whole
        assert n == len(two) and bytes(buffer[:n]) == two
        assert recv._recv.seq == 2
        assert recv.open_frames(buffer[:n], out := []) == n and out == [b"third", b"fourth"]
        left.sendall(send.seal(b"fifth")[:HEADER_SIZE + 2])  # a cut frame: left
        assert recv._recv.recv_open(fd, buffer, LIMIT) == HEADER_SIZE + 2
        left.close()
        assert recv._recv.recv_open(fd, buffer, LIMIT) == 0  # the end of the stream
        with pytest.raises(BufferError):
            recv._recv.recv_open(fd, b"read-only", LIMIT)
    finally:
        left.close()
        right.close()


@pytest.fixture
def rest_spin():
    """Set how long recv_take waits for more of a cut frame; put back after the test."""
    from shoal.security import _recordcore

    previous = _recordcore.set_rest_spin(200_000)
    yield _recordcore.set_rest_spin
    _recordcore.set_rest_spin(previous)


def _take_args(size: int) -> tuple[bytes, bytes, bytearray, bytearray]:
    """recv_take's want, mask, head and into for a 2-byte prefix b"ok" and ``size`` bytes."""
    return b"ok", b"\xff\xff", bytearray(2), bytearray(size)


def test_recv_take_reads_the_rest_of_a_frame_its_read_cut(monkeypatch, secrets,
                                                          rest_spin) -> None:
    send, recv = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    left, right = socket.socketpair()
    # A small send buffer: the peer cannot put the whole frame there before this end
    # reads, so the first read takes only its start and the rest follows as it reads.
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    buffer = memoryview(bytearray(1 << 18))
    fd = right.fileno()
    want, mask, head, into = _take_args(100_000)
    rest_spin(5_000_000_000)  # (a byte at least every 5 s: the test's machine may be busy)
    try:
        left.sendall(send.seal(b"first"))  # frame 0: the pure layer's
        n = recv._recv.recv_open(fd, buffer, LIMIT)
        assert recv.open_frames(buffer[:n], []) == n
        body = os.urandom(100_000)
        frame = send._send.seal(b"ok", body)
        sender = threading.Thread(target=left.sendall, args=(frame,))
        sender.start()
        try:
            assert select.select([right], [], [], 10)[0], "the frame did not start to come"
            got = recv._recv.recv_take(fd, buffer, LIMIT, want, mask, -1, head, into)
        finally:
            sender.join(10)
        assert got is True and head == b"ok" and bytes(into) == body
        assert recv._recv.seq == 2
    finally:
        left.close()
        right.close()


def test_recv_take_hands_back_a_cut_frame_whose_rest_does_not_come(monkeypatch, secrets,
                                                                    rest_spin) -> None:
    send, recv = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    left, right = socket.socketpair()
    buffer = memoryview(bytearray(1 << 18))
    fd = right.fileno()
    want, mask, head, into = _take_args(1000)
    rest_spin(1_000_000)
    try:
        left.sendall(send.seal(b"first"))
        n = recv._recv.recv_open(fd, buffer, LIMIT)
        assert recv.open_frames(buffer[:n], []) == n
        frame = send._send.seal(b"ok", b"x" * 1000)
        left.sendall(frame[:600])
        # What came is handed back unopened, nothing counted, into untouched; the caller
        # keeps it, and opens the frame once the rest comes.
        assert recv._recv.recv_take(fd, buffer, LIMIT, want, mask, -1, head, into) == 600
        assert recv._recv.seq == 1 and into == bytearray(1000) and head == bytearray(2)
        cut = bytes(buffer[:600])
        left.sendall(frame[600:])
        assert recv.open_frames(cut + right.recv(4096), out := []) == len(frame)
        assert out == [b"ok" + b"x" * 1000]
        # A cut frame whose body would not fit into is not waited for either.
        rest_spin(60_000_000_000)  # (were it waited for, the test would time out)
        frame = send._send.seal(b"ok", b"y" * 2000)
        left.sendall(frame[:600])
        assert recv._recv.recv_take(fd, buffer, LIMIT, want, mask, -1, head, into) == 600
    finally:
        left.close()
        right.close()


@pytest.mark.parametrize("size", [1000, BULK, 100_000])
def test_recv_take_takes_a_matching_frame_and_opens_any_other_whole(monkeypatch, secrets,
                                                                    size) -> None:
    send, recv = ends(Suite.AES_256_GCM, False, monkeypatch, secrets)
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    buffer = memoryview(bytearray(1 << 18))
    fd = right.fileno()
    want, mask, head, into = _take_args(size)
    length_at = 2  # (the prefix below: b"ok" and the body's length, u64 little-endian)
    want, mask, head = b"ok" + bytes(8), b"\xff\xff" + bytes(8), bytearray(10)
    try:
        left.sendall(send.seal(b"first"))
        n = recv._recv.recv_open(fd, buffer, LIMIT)
        assert recv.open_frames(buffer[:n], []) == n

        def take(prefix: bytes, body: bytes) -> object:
            left.sendall(send._send.seal(prefix, body))
            assert select.select([right], [], [], 10)[0]
            return recv._recv.recv_take(fd, buffer, LIMIT, want, mask, length_at, head, into)

        body = os.urandom(size)
        assert take(b"ok" + size.to_bytes(8, "little"), body) is True
        assert head == b"ok" + size.to_bytes(8, "little") and bytes(into) == body
        # Not the awaited message (another prefix, or a length that is not the body's):
        # opened all the same, counted, and its plaintext handed back; into is not touched.
        into[:] = bytes(size)
        other = b"no" + size.to_bytes(8, "little")
        assert take(other, body) == other + body
        wrong = b"ok" + (size + 1).to_bytes(8, "little")
        assert take(wrong, body) == wrong + body
        assert into == bytearray(size) and recv._recv.seq == 4
        # A forged frame: handed back unopened, nothing counted; the pure layer says why.
        frame = send._send.seal(b"ok" + size.to_bytes(8, "little"), body)
        forged = frame[:-1] + bytes([frame[-1] ^ 1])
        left.sendall(forged)
        assert select.select([right], [], [], 10)[0]
        got = recv._recv.recv_take(fd, buffer, LIMIT, want, mask, length_at, head, into)
        assert got == len(forged) and recv._recv.seq == 4
        with pytest.raises(IntegrityError, match="failed authentication"):
            recv.open_frames(buffer[:got], [])
    finally:
        left.close()
        right.close()


def test_large_frames_go_through_cryptography_only_where_its_openssl_is_newer(
        monkeypatch) -> None:
    from cryptography.hazmat.backends.openssl.backend import backend

    from shoal.security import _recordcore

    ours = _recordcore.OPENSSL_VERSION_NUMBER
    assert ours >> 28 >= 1  # (OpenSSL's number: the major release in the top bits)
    cases = [(ours, False), (ours + 0x1000, False),  # the same release, a later patch
             (ours + 0x100000, True), (ours + 0x10000000, True)]  # a later minor, major
    for theirs, bulk in cases:
        monkeypatch.setattr(channel_module, "_BULK", None)  # (decided again, as at start)
        monkeypatch.setattr(backend, "openssl_version_number", lambda theirs=theirs: theirs)
        assert channel_module._bulk_aead() is (bulk and channel_module._HAS_ENCRYPT_INTO
                                               and channel_module._HAS_DECRYPT_INTO)


@pytest.mark.parametrize("suite", SUITES)
def test_seal_send_many_sends_the_frames_seal_makes_and_hands_back_a_partial_send(
        monkeypatch, secrets, suite) -> None:
    compiled, _ = ends(suite, False, monkeypatch, secrets)
    pure, opener = ends(suite, True, monkeypatch, secrets)
    left, right = socket.socketpair()
    try:
        head = compiled.seal(b"the header")  # (a held frame: sealed by the record layer)
        assert pure.seal(b"the header") == head
        body = os.urandom(100_000)
        step = 32 * 1024
        taken, rest = compiled._send.seal_send_many(left.fileno(), head, body, step)
        assert (taken, rest) == (len(body), None)
        expected = head + b"".join(pure.seal(body[i:i + step])
                                   for i in range(0, len(body), step))
        got = b""
        while len(got) < len(expected):
            got += right.recv(1 << 20)
        assert got == expected and compiled._send.seq == pure._send.seq == 5
        assert opener.receive_data(got) == [b"the header"] + [
            body[i:i + step] for i in range(0, len(body), step)]
        # A socket that takes only part of a send: the frames sealed so far count, and
        # what the socket did not take comes back, to go first.
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        left.setblocking(False)
        big = os.urandom(4 << 20)
        taken, rest = compiled._send.seal_send_many(left.fileno(), b"", big, step)
        assert 0 < taken < len(big) and taken % step == 0 and isinstance(rest, bytes)
        assert compiled._send.seq == 5 + taken // step
        with pytest.raises(ValueError):
            compiled._send.seal_send_many(left.fileno(), b"x" * 2000, body, step)
        with pytest.raises(ValueError):
            compiled._send.seal_send_many(left.fileno(), b"", body, 0)
    finally:
        left.close()
        right.close()


@pytest.mark.parametrize("group_frames", [1, 3, 8, 40])
def test_seal_send_many_in_groups_sends_the_same_frames(monkeypatch, secrets,
                                                        group_frames) -> None:
    # Several frames sealed before each send(): the bytes on the wire are the same frames,
    # in the same order, whatever the group (40 frames: more than the body has).
    suite = SUITES[0]
    compiled, _ = ends(suite, False, monkeypatch, secrets)
    pure, opener = ends(suite, True, monkeypatch, secrets)
    left, right = socket.socketpair()
    try:
        step = 16 * 1024
        body = os.urandom(10 * step + 123)
        head = compiled.seal(b"the header")
        assert pure.seal(b"the header") == head
        taken, rest = compiled._send.seal_send_many(left.fileno(), head, body, step,
                                                    group_frames * step)
        assert (taken, rest) == (len(body), None)
        pieces = [body[i:i + step] for i in range(0, len(body), step)]
        expected = head + b"".join(pure.seal(piece) for piece in pieces)
        got = b""
        while len(got) < len(expected):
            got += right.recv(1 << 20)
        assert got == expected and compiled._send.seq == pure._send.seq == 1 + len(pieces)
        assert opener.receive_data(got) == [b"the header", *pieces]
        # A socket that takes part of a group: the frames sealed so far count (a whole
        # number of groups), and what it did not take comes back.
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        left.setblocking(False)
        big = os.urandom(4 << 20)
        taken, rest = compiled._send.seal_send_many(left.fileno(), b"", big, step,
                                                    group_frames * step)
        assert 0 < taken < len(big) and taken % (group_frames * step) == 0
        assert isinstance(rest, bytes) and len(rest) <= group_frames * (step + OVERHEAD)
        with pytest.raises(ValueError):  # less than one frame
            compiled._send.seal_send_many(left.fileno(), b"", body, step, step - 1)
        with pytest.raises(ValueError):  # more than the core's bound
            compiled._send.seal_send_many(left.fileno(), b"", body, step, 64 << 20)
    finally:
        left.close()
        right.close()


@pytest.mark.parametrize("suite", SUITES)
def test_open_into_opens_whole_frames_in_place_and_stops_where_python_must_look(
        monkeypatch, secrets, suite) -> None:
    send, recv = ends(suite, False, monkeypatch, secrets)
    recv.receive_data(send.seal(b"first"))  # (frame 0 is the pure layer's)
    step = 32 * 1024
    body = os.urandom(5 * step)
    frames = [send.seal(body[i:i + step]) for i in range(0, len(body), step)]
    into = bytearray(len(body))
    # Two whole frames and the start of a third: the two are opened, the cut one is left.
    data = frames[0] + frames[1] + frames[2][:100]
    assert recv._recv.open_into(data, into, LIMIT) == (len(frames[0]) * 2, 2 * step)
    assert into[:2 * step] == body[:2 * step] and recv._recv.seq == 3
    # A forged frame stops it, nothing counted; the pure layer says what is wrong.
    forged = frames[2][:-1] + bytes([frames[2][-1] ^ 1])
    view = memoryview(into)[2 * step:]
    assert recv._recv.open_into(forged + frames[3], view, LIMIT) == (0, 0)
    assert recv._recv.seq == 3
    assert recv._recv.open_into(frames[2] + frames[3], view, LIMIT) == (
        2 * len(frames[2]), 2 * step)
    # One that does not fit what is left of into, or is longer than the limit, is left.
    assert recv._recv.open_into(frames[4], memoryview(into)[:step - 1], LIMIT) == (0, 0)
    assert recv._recv.open_into(frames[4], memoryview(into)[4 * step:], 1000) == (0, 0)
    assert recv._recv.open_into(frames[4], memoryview(into)[4 * step:], LIMIT) == (
        len(frames[4]), step)
    assert bytes(into) == body and recv._recv.seq == 6
    # Once into is full, nothing more is opened, not even an empty frame: what follows a
    # body is the next message's.
    empty = send.seal(b"")
    assert recv._recv.open_into(empty, bytearray(0), LIMIT) == (0, 0)
    assert recv._recv.open_into(empty, bytearray(1), LIMIT) == (len(empty), 0)
    assert recv._recv.seq == 7
    # A replayed frame (out of sequence) is left too.
    assert recv._recv.open_into(frames[4], bytearray(step), LIMIT) == (0, 0)
    with pytest.raises(IntegrityError, match="replayed, reordered or dropped"):
        recv.open_frames(memoryview(frames[4]), [])


@pytest.mark.parametrize("suite", SUITES)
def test_the_one_call_paths_move_to_the_next_key_between_frames(monkeypatch, secrets,
                                                                suite) -> None:
    # A key lasts rekey_bytes: in one seal_send_many or open_into call the key changes
    # every few frames (turn() runs from inside the C loop), and both ends agree.
    options = {"rekey_bytes": 100_000}
    c_send, c_recv = ends(suite, False, monkeypatch, secrets, **options)
    p_send, p_recv = ends(suite, True, monkeypatch, secrets, **options)
    c_recv.receive_data(p_send.seal(b"first"))
    p_recv.receive_data(c_send.seal(b"first"))
    step = 32 * 1024
    body = os.urandom(20 * step)
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    right.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    try:
        keys = c_send._send.aead
        sent: list[object] = []
        sender = threading.Thread(target=lambda: sent.append(
            c_send._send.seal_send_many(left.fileno(), b"", body, step)))
        sender.start()
        got = b""
        while len(got) < len(body) + 20 * OVERHEAD:
            got += right.recv(1 << 20)
        sender.join(10)
        assert sent == [(len(body), None)]
        assert c_send._send.aead is not keys  # (the key did change on the way)
        assert p_recv.receive_data(got) == [body[i:i + step] for i in range(0, len(body), step)]
    finally:
        left.close()
        right.close()
    frames = b"".join(p_send.seal(body[i:i + step]) for i in range(0, len(body), step))
    into = bytearray(len(body))
    keys = c_recv._recv.aead
    assert c_recv._recv.open_into(frames, into, LIMIT) == (len(frames), len(body))
    assert bytes(into) == body and c_recv._recv.aead is not keys
    assert c_recv._recv.seq == p_send._send.seq == 21
