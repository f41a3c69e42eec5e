"""The encrypted TCP transport: pairs and meshes of endpoints in one process, driven by
the engine from one thread per rank, over real sockets on 127.0.0.x."""

from __future__ import annotations

import contextlib
import os
import random
import resource
import socket
import time

import pytest
from transport_helpers import close_all, in_threads, proxied_pair, recv, send

from shoal.errors import CommunicationError, PeerLostError, TransportError
from shoal.security import IntegrityError, JobKey
from shoal.spmd.engine import Engine
from shoal.transport.tcp import SEND_BOUND, TcpEndpoint, listen, loopback_mesh

# Every test on both record layers: the links' small frames sealed and opened by the
# compiled record core, and by the pure Python one (the record_core fixture, conftest.py).
pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("record_core")]


def test_large_messages_cross_in_both_directions_at_once(pair) -> None:
    a, b = pair
    big = [bytes([r]) * (SEND_BOUND * 3 + 12345) for r in range(2)]

    def rank(engine: Engine) -> bytes:
        me, other = engine.rank, 1 - engine.rank
        outgoing = engine.send(other, 0, 7, [big[me]])
        got = recv(engine, other, 7)
        engine.wait_until(lambda: outgoing.done, lambda: "send")
        return got

    got_a, got_b = in_threads(lambda: rank(a), lambda: rank(b))
    assert got_a == big[1] and got_b == big[0]


def test_many_small_messages_arrive_in_order(pair) -> None:
    a, b = pair
    count = 2000

    def sender() -> None:
        for i in range(count):
            send(a, 1, i.to_bytes(4, "little") * (1 + i % 50))

    def receiver() -> list[int]:
        return [int.from_bytes(recv(b, 0)[:4], "little") for _ in range(count)]

    _, order = in_threads(sender, receiver)
    assert order == list(range(count))


def test_a_ring_of_four_ranks_on_four_hosts_passes_a_token_around() -> None:
    endpoints = loopback_mesh(4, hosts=[f"127.0.0.{i + 1}" for i in range(4)])
    engines = [Engine(rank, 4, endpoint) for rank, endpoint in enumerate(endpoints)]
    try:
        def rank(engine: Engine) -> bytes:
            me = engine.rank
            if me == 0:
                send(engine, 1, b"token:0")
                return recv(engine, 3)
            token = recv(engine, me - 1)
            send(engine, (me + 1) % 4, token + b",%d" % me)
            return token

        results = in_threads(*(lambda e=e: rank(e) for e in engines))
        assert results[0] == b"token:0,1,2,3"
    finally:
        close_all(endpoints)


def test_a_full_send_queue_takes_nothing_until_the_peer_reads() -> None:
    a, b = loopback_mesh(2)
    try:
        taken = 0
        for _ in range(1000):
            n = a.write(1, bytes(1 << 20))
            if not n:
                break
            taken += n
        assert a.write(1, b"x") == 0  # bounded: the engine must queue the rest
        got = 0
        while got < taken:
            b.sleep(0.5)
            n = b.readable(0)
            b.read_bytes(0, n)
            got += n
            a.readable(1)  # any call on the link pushes queued ciphertext
        assert got == taken
        assert a.write(1, b"x") == 1
    finally:
        close_all([a, b])


def test_a_peer_that_closes_ends_the_link_with_a_clear_error(pair) -> None:
    a, b = pair
    in_threads(lambda: send(a, 1, b"last words"), lambda: recv(b, 0))
    b.endpoint.close()
    b.endpoint = None
    # A clean close is no error by itself (a rank may finish before the others);
    # sending to the rank that left is.
    for _ in range(100):
        a.progress()
        if a.endpoint.links[1].peer_closed:
            break
        a.endpoint.sleep(0.05)
    with pytest.raises(PeerLostError, match=r"rank 1 on 127\.0\.0\.2 closed its link"):
        in_threads(lambda: send(a, 1, b"anyone there?"))


def test_a_peer_that_dies_without_closing_is_lost_not_awaited(pair) -> None:
    a, b = pair
    link = b.endpoint.links[0]
    link.sock.shutdown(socket.SHUT_RDWR)  # as if the process died: no authenticated CLOSE
    with pytest.raises(PeerLostError, match="without an authenticated close"):
        in_threads(lambda: recv(a, 1))


def test_a_flipped_byte_on_the_wire_fails_the_link_with_an_integrity_error() -> None:
    handshake_bytes = 2000  # well past the handshake: flip a byte inside a data frame
    (a, b), _ = proxied_pair(flip=True, after=handshake_bytes)
    try:
        with pytest.raises(TransportError, match="integrity") as caught:
            in_threads(lambda: send(a, 1, b"\x00" * 100_000), lambda: recv(b, 0))
        assert isinstance(caught.value.__cause__, IntegrityError)
        assert "rank 0" in str(caught.value)
    finally:
        close_all([a.endpoint, b.endpoint])


def test_the_bytes_on_the_wire_never_contain_the_plaintext() -> None:
    (a, b), proxy = proxied_pair(flip=False)
    marker = b"SHOAL-SECRET-MARKER-" * 50
    try:
        in_threads(lambda: [send(a, 1, marker + bytes([i])) for i in range(20)],
                   lambda: [recv(b, 0) for _ in range(20)])
        big = marker * 5000
        in_threads(lambda: send(a, 1, big), lambda: recv(b, 0))
        assert len(proxy.captured) > len(big)
        assert b"SHOAL-SECRET" not in proxy.captured
    finally:
        close_all([a.endpoint, b.endpoint])


def test_a_rank_with_the_wrong_job_key_cannot_join() -> None:
    listeners = [listen("127.0.0.1"), listen("127.0.0.1")]
    addresses = [s.getsockname() for s in listeners]
    with pytest.raises(TransportError, match="could not authenticate its link to rank 1"):
        in_threads(lambda: TcpEndpoint(0, 2, JobKey.generate(), listeners[0], addresses,
                                       timeout=3),
                   lambda: TcpEndpoint(1, 2, JobKey.generate(), listeners[1], addresses,
                                       timeout=3))


def test_frames_cut_anywhere_by_the_network_arrive_whole_in_both_directions() -> None:
    # Through a proxy that passes a few bytes at a time, every read ends inside a
    # frame somewhere: in its length, its header, its ciphertext or its tag.
    (a, b), _ = proxied_pair(flip=False, dribble=700)
    sizes = [1, 5, 13, 48, 1000, 20_000, 70_000, 200_000]
    messages = [bytes(random.Random(n).getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
                for n in sizes]
    messages = [m[:n] for m, n in zip(messages, sizes, strict=True)]
    try:
        def rank(engine: Engine) -> list[bytes]:
            other = 1 - engine.rank
            if engine.rank == 0:
                for i, message in enumerate(messages):
                    send(engine, other, message, tag=i)
                return [recv(engine, other, tag=i) for i in range(len(messages))]
            got = [recv(engine, other, tag=i) for i in range(len(messages))]
            for i, message in enumerate(got):
                send(engine, other, message, tag=i)
            return got

        there, back = in_threads(lambda: rank(b), lambda: rank(a), timeout=25)
        assert there == messages and back == messages
    finally:
        close_all([a.endpoint, b.endpoint])


def test_large_messages_left_waiting_are_not_overwritten_by_later_ones(pair) -> None:
    # Large frames are opened into reused buffers: a message that waits unreceived
    # while others arrive must keep its own bytes.
    a, b = pair
    messages = {tag: bytes([tag]) * (150_000 + tag) for tag in range(1, 7)}

    def sender() -> None:
        for tag, message in messages.items():
            send(a, 1, message, tag=tag)

    def receiver() -> dict[int, bytes]:
        time.sleep(0.2)  # let every message arrive before the first receive
        return {tag: recv(b, 0, tag=tag) for tag in sorted(messages, reverse=True)}

    _, got = in_threads(sender, receiver)
    assert got == messages


def test_a_rank_with_more_than_1024_open_files_builds_its_links() -> None:
    # select.select() refuses descriptors from 1024 on: the listener here gets one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1100 + 64
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    opened = []
    try:
        opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
        a, b = loopback_mesh(2, timeout=5)
        try:
            assert max(link.fd for link in (a.links[1], b.links[0])) >= 1024
            engines = [Engine(0, 2, a), Engine(1, 2, b)]
            _, got = in_threads(lambda: send(engines[0], 1, b"many files"),
                                lambda: recv(engines[1], 0))
            assert got == b"many files"
        finally:
            close_all([a, b])
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _looks_while_waiting(a: Engine, b: Engine) -> int:
    """How often b's engine looked at its stream from a while a's message took 0.3 s."""
    looks = 0
    endpoint = b.endpoint
    take_frame, readable = endpoint.take_frame, endpoint.readable

    def counted_take_frame(*args):  # type: ignore[no-untyped-def]
        nonlocal looks
        looks += 1
        return take_frame(*args)

    def counted_readable(*args):  # type: ignore[no-untyped-def]
        nonlocal looks
        looks += 1
        return readable(*args)

    endpoint.take_frame, endpoint.readable = counted_take_frame, counted_readable

    def late_sender() -> None:
        time.sleep(0.3)
        send(a, 1, b"worth the wait")

    _, got = in_threads(late_sender, lambda: recv(b, 0))
    assert got == b"worth the wait"
    return looks


def test_a_receive_waiting_on_tcp_spins_briefly_then_sleeps(pair) -> None:
    # A receive that waits spins (the engine's adaptive spin, a few milliseconds at
    # most: an epoll_wait a round, a look at the stream every 50 us), then sleeps.
    # Spinning through the 0.3 s would look at the stream some 10,000 times.
    looks = _looks_while_waiting(*pair)
    assert looks < 1000, f"the receive looked at its socket {looks} times in 0.3 s"


def test_with_no_spin_a_receive_waiting_on_tcp_sleeps_at_once(monkeypatch) -> None:
    monkeypatch.setenv("SHOAL_SPIN_US", "0")
    endpoints = loopback_mesh(2, hosts=["127.0.0.1", "127.0.0.2"])
    try:
        a, b = (Engine(rank, 2, endpoint) for rank, endpoint in enumerate(endpoints))
        looks = _looks_while_waiting(a, b)
        assert looks < 100, f"the receive looked at its socket {looks} times in 0.3 s"
    finally:
        close_all(endpoints)


def test_a_tcp_rank_spins_unless_its_host_has_more_ranks_than_cores() -> None:
    from shoal.transport.tcp_mesh import same_machine as _same_machine

    cores = len(os.sched_getaffinity(0))
    # Every rank on this machine (loopback addresses, one or several), more of them than
    # cores: spins give way at every round.
    size = cores + 1
    for hosts in (None, [f"127.0.0.{r + 1}" for r in range(size)]):
        endpoints = loopback_mesh(size, hosts=hosts)
        try:
            assert {e.ranks_here for e in endpoints} == {size}
            assert not any(Engine(r, size, e)._spinning.yield_mask
                           for r, e in enumerate(endpoints))
        finally:
            close_all(endpoints)
    # Ranks on two other machines' addresses, one each: each has its host's cores.
    assert _same_machine("10.1.0.1", "10.1.0.1") and not _same_machine("10.1.0.1", "10.1.0.2")
    assert not _same_machine("127.0.0.1", "10.1.0.1") and _same_machine("::1", "127.0.0.1")
    assert not _same_machine("node-a", "node-b")


class CountingSocket:
    """A socket's stand-in that records the bytes each send or sendmsg call passed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.calls: list[int] = []

    def send(self, data, *flags):  # type: ignore[no-untyped-def]
        sent = self.sock.send(data, *flags)
        self.calls.append(sent)
        return sent

    def sendmsg(self, buffers, *args):  # type: ignore[no-untyped-def]
        sent = self.sock.sendmsg(buffers, *args)
        self.calls.append(sent)
        return sent

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.sock, name)


def test_the_header_of_a_large_message_leaves_with_its_first_frame(pair) -> None:
    # One system call and one segment fewer per message, and one wake-up fewer for
    # the receiver (it would wake for the header alone).
    a, b = pair
    link = a.endpoint.links[1]
    counting = CountingSocket(link.sock)
    link.sock = counting
    heads: list[int] = []  # the compiled send's: the held frames it was given to send first
    if link.seal_send_many is not None:
        compiled = link.seal_send_many

        def seal_send_many(fd, head, body, step, group):  # type: ignore[no-untyped-def]
            heads.append(len(head))
            return compiled(fd, head, body, step, group)

        link.seal_send_many = seal_send_many
    message = os.urandom(300_000)  # (over a link's one_frame: a header, then body frames)
    _, got = in_threads(lambda: send(a, 1, message), lambda: recv(b, 0))
    assert got == message
    header_frame = 48 + 30  # the engine's header, sealed
    if link.seal_send_many is not None:  # sent with the first frame, in the same send()
        assert heads == [header_frame] and not counting.calls, (heads, counting.calls)
    else:
        assert counting.calls and counting.calls[0] > header_frame, counting.calls


def test_the_inbox_hands_out_copies_of_pooled_payloads_and_recycles_their_buffers() -> None:
    from shoal.transport.tcp_buffers import Inbox, Pool

    pool = Pool(16)
    inbox = Inbox(pool)
    first, second = pool.take(10), pool.take(12)
    first[:] = b"0123456789"
    second[:] = b"abcdefghijkl"
    inbox.append(b"xy")
    inbox.append(first)
    inbox.append(second)
    assert len(inbox) == 24 and bytes(inbox.peek(5)) == b"xy012"
    taken = inbox.read_bytes(6)
    assert taken == b"xy0123" and type(taken) is bytes
    whole = inbox.read_bytes(6)  # the rest of the first pooled payload: a copy
    assert whole == b"456789" and type(whole) is bytes and len(pool.spare) == 1
    reused = pool.take(3)  # the first buffer, back from the pool: overwriting it...
    reused[:] = b"!!!"
    assert whole == b"456789"  # ...changes nothing already handed out
    target = bytearray(12)
    inbox.read_into(memoryview(target), 12)
    assert target == b"abcdefghijkl" and len(inbox) == 0 and len(pool.spare) == 1
    # A payload larger than the pool's buffers (a large one-frame message) gets a buffer
    # of its own, which the pool does not keep.
    large = pool.take(40)
    assert len(large) == 40 and large.obj is not reused.obj and len(pool.spare) == 1
    inbox.append(large)
    assert len(inbox.read_bytes(40)) == 40 and len(pool.spare) == 1


def _arrived(endpoint: TcpEndpoint, src: int, n: int) -> None:
    """Wait until ``n`` bytes of plaintext from ``src`` are in the endpoint's inbox."""
    deadline = time.monotonic() + 10
    while endpoint.readable(src) < n:
        assert time.monotonic() < deadline, "the frames did not arrive"
        endpoint.wait(src, (), 1_000_000, 0)


def test_take_match_takes_only_a_whole_matching_data_frame_from_the_head(pair) -> None:
    a, b = pair
    endpoint = b.endpoint
    send(a, 1, b"first", tag=5)
    send(a, 1, b"second" * 10, tag=6)
    _arrived(endpoint, 0, 2 * 48 + 5 + 60)
    # Not the head's tag, context or kind of receive: nothing is taken.
    assert endpoint.take_match(0, 0, 6, 1 << 14, None) is None
    assert endpoint.take_match(0, 2, 5, 1 << 14, None) is None
    assert endpoint.take_match(0, 0, 5, 4, None) is None  # larger than the limit
    assert endpoint.readable(0) == 2 * 48 + 5 + 60
    # A buffer that is read-only is refused before anything is taken.
    with pytest.raises(BufferError):
        endpoint.take_match(0, 0, 5, 1 << 14, b"\0" * 16)
    frame = endpoint.take_match(0, 0, -1, 1 << 14, None)  # any tag
    assert (frame.source, frame.tag, frame.ctx, frame.length) == (0, 5, 0, 5)
    assert bytes(frame.body) == b"first"
    # Into a buffer: the body is copied there (as bytes, whatever the buffer's items).
    into = memoryview(bytearray(64)).cast("I")
    frame = endpoint.take_match(0, 0, 6, 1 << 14, into)
    assert frame.body is None and frame.length == 60
    assert into.cast("B")[:60].tobytes() == b"second" * 10
    assert endpoint.readable(0) == 0


def test_take_match_leaves_a_body_that_does_not_fit_the_buffer_to_the_receive(pair) -> None:
    a, b = pair
    send(a, 1, b"x" * 100, tag=1)
    _arrived(b.endpoint, 0, 148)
    frame = b.endpoint.take_match(0, 0, 1, 1 << 14, bytearray(10))
    assert frame.length == 100 and bytes(frame.body) == b"x" * 100  # the engine truncates
    send(a, 1, b"y" * 100, tag=1)
    with pytest.raises(CommunicationError, match="100 bytes arrived for a 10-byte buffer"):
        b.receive(0, 0, 1, memoryview(bytearray(10)), lambda: "recv")


def test_wait_on_tcp_says_when_the_awaited_link_became_readable(pair) -> None:
    a, b = pair
    endpoint = b.endpoint
    assert endpoint.wait(0, (), 1_000_000, 0) is False  # nothing came within 1 ms
    send(a, 1, b"ping")
    assert endpoint.wait(0, (), 5_000_000_000, 0) is True
    assert recv(b, 0) == b"ping"


def test_a_rank_refuses_a_connection_from_a_rank_it_does_not_link_to() -> None:
    # Rank 2 links to rank 1 only; rank 0 holds the job's key but is not among its peers
    # (a misconfiguration: rank 0 may see its link fail, or cut once it is made).
    key = JobKey.generate()
    listeners = [listen("127.0.0.1") for _ in range(3)]
    addresses = [s.getsockname()[:2] for s in listeners]
    peers = [{2}, {2}, {1}]
    made: list = [None] * 3

    def build(rank: int) -> None:
        with contextlib.suppress(TransportError):
            made[rank] = TcpEndpoint(rank, 3, key, listeners[rank], addresses, peers[rank],
                                     timeout=10)

    in_threads(*(lambda r=r: build(r) for r in range(3)))
    try:
        two = made[2]
        assert two is not None and made[1] is not None
        assert [link.peer for link in two.links if link is not None] == [1]
    finally:
        close_all([endpoint for endpoint in made if endpoint is not None])
