"""Hybrid endpoints (shared memory on a host, encrypted TCP between hosts) and the
authenticated rendezvous that tells ranks where the others listen."""

from __future__ import annotations

import os
import socket

import pytest
from transport_helpers import in_threads

from shoal.errors import TransportError
from shoal.security import JobKey
from shoal.spmd.engine import Engine
from shoal.transport import endpoint_class
from shoal.transport.hybrid import HybridEndpoint
from shoal.transport.rendezvous import (
    RankAddress,
    RendezvousServer,
    parse_address,
    read_job_key,
    register,
)
from shoal.transport.shm import ShmEndpoint, ShmJob
from shoal.transport.tcp import TcpEndpoint, loopback_mesh

pytestmark = pytest.mark.timeout(30)


def me(rank: int, host_id: str = "") -> RankAddress:
    return RankAddress(rank, f"127.0.0.{rank + 1}", 40000 + rank, host_id or f"h{rank}")


def test_every_rank_gets_the_whole_table_once_all_registered() -> None:
    key = JobKey.generate("job-7")
    with RendezvousServer(key, 3) as server:
        tables = in_threads(*(lambda r=r: register(server.address, key, me(r)) for r in range(3)))
        assert server.wait(1) == [me(r) for r in range(3)]
    assert all(table == [me(r) for r in range(3)] for table in tables)


def test_a_registration_without_the_job_key_is_refused_and_delays_nobody() -> None:
    key = JobKey.generate()
    with RendezvousServer(key, 2, timeout=5) as server:
        with pytest.raises(TransportError, match="could not register"):
            register(server.address, JobKey.generate(), me(0), timeout=5)
        tables = in_threads(*(lambda r=r: register(server.address, key, me(r)) for r in range(2)))
        assert tables[0] == tables[1] == [me(0), me(1)]
        assert any("handshake" in error for error in server.errors)


def test_a_rank_cannot_register_in_another_ranks_place() -> None:
    key = JobKey.generate()
    with RendezvousServer(key, 2, timeout=5) as server:
        sock = socket.create_connection(server.address)
        from shoal.security import open_secure
        from shoal.transport.rendezvous import _client_config

        with open_secure(sock, _client_config(key, 0)) as chan:
            chan.send(b'{"rank": 1, "host": "127.0.0.9", "port": 1}')
            with pytest.raises(Exception, match="closed"):
                chan.recv(timeout=5)
        assert any("registered as rank 1" in error for error in server.errors)


def test_the_job_key_is_read_from_a_pipe_and_the_pipe_closed() -> None:
    key = JobKey.generate()
    read_end, write_end = os.pipe()
    os.write(write_end, key.hex().encode() + b"\n")
    os.close(write_end)
    assert read_job_key(read_end) == key
    with pytest.raises(OSError):
        os.fstat(read_end)
    assert parse_address("[::1]:7") == ("::1", 7) and parse_address("h:80") == ("h", 80)


def test_the_registry_knows_tcp_and_hybrid() -> None:
    assert endpoint_class("tcp") is TcpEndpoint
    assert endpoint_class("hybrid") is HybridEndpoint


@pytest.fixture
def two_hosts_of_two():
    """Ranks 0, 1 on host A (127.0.0.1) and 2, 3 on host B (127.0.0.2)."""
    hosts = {0: [0, 1], 1: [2, 3]}
    jobs = [ShmJob.create(2, ring_bytes=1 << 16) for _ in hosts]
    remote = [[2, 3], [2, 3], [0, 1], [0, 1]]
    tcp = loopback_mesh(4, hosts=["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"],
                        peers=remote)
    endpoints = []
    for rank in range(4):
        host, local = divmod(rank, 2)
        job = jobs[host]
        shm = ShmEndpoint(local, 2, os.dup(job._fd), os.dup(job._doorbells[local][0]),
                          [os.dup(w) for _, w in job._doorbells])
        endpoints.append(HybridEndpoint(rank, 4, hosts[host], shm, tcp[rank]))
    yield endpoints
    in_threads(*(endpoint.close for endpoint in endpoints))
    for job in jobs:
        job.close()


def test_hybrid_routes_host_peers_through_memory_and_the_rest_through_tcp(
        two_hosts_of_two) -> None:
    endpoints = two_hosts_of_two
    assert [endpoints[0].is_local(p) for p in range(4)] == [True, True, False, False]
    assert [endpoints[3].is_local(p) for p in range(4)] == [False, False, True, True]
    engines = [Engine(rank, 4, endpoint) for rank, endpoint in enumerate(endpoints)]
    sizes = [10, 100_000, 3_000_000]  # small, ring-sized and larger than any buffer

    def rank(engine: Engine) -> dict[tuple[int, int], bool]:
        sends = [engine.send(peer, 0, n, [bytes([engine.rank]) * n])
                 for peer in range(4) if peer != engine.rank for n in sizes]
        ok = {}
        for peer in range(4):
            if peer != engine.rank:
                for n in sizes:
                    body = engine.receive(0, peer, n, None, lambda: "recv").body
                    ok[(peer, n)] = bytes(body) == bytes([peer]) * n
        engine.wait_until(lambda: all(s.done for s in sends), lambda: "send")
        return ok

    results = in_threads(*(lambda e=e: rank(e) for e in engines))
    assert all(all(result.values()) and len(result) == 9 for result in results)


def test_tcp_imports_neither_hybrid_nor_the_rendezvous_that_build_on_it() -> None:
    # Imports point down: hybrid and the environment contract sit on tcp, never under it.
    import ast
    import inspect

    import shoal.transport.tcp as tcp

    tree = ast.parse(inspect.getsource(tcp))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not imported & {"shoal.transport.hybrid", "shoal.transport.rendezvous"}


def test_a_rank_alone_on_its_host_waits_on_its_sockets_as_tcp_does() -> None:
    tcp = loopback_mesh(2)
    try:
        alone = HybridEndpoint(0, 2, [0], None, tcp[0])
        assert alone.spin is tcp[0].spin is None  # the engine's adaptive spin, as on TCP
        assert alone.ranks_here == 1
        # Its data path is TCP's own (no routing step), and it carries messages both ways.
        assert alone.take_match == tcp[0].take_match and alone.wait == tcp[0].wait
        a, b = Engine(0, 2, alone), Engine(1, 2, tcp[1])
        assert a.send_fast(1, 0, 3, b"there", 0)
        assert bytes(b.receive(0, 0, 3, None, lambda: "recv").body) == b"there"
        b.send(0, 0, 4, [b"and back"])
        into = bytearray(8)
        frame = a.receive_fast(1, 0, 4, into, 2_000_000_000) or a.receive(
            0, 1, 4, memoryview(into), lambda: "recv")
        assert frame.length == 8 and into == b"and back"
    finally:
        in_threads(*(endpoint.close for endpoint in tcp))


def test_hybrid_one_step_paths_reach_both_kinds_of_peer(two_hosts_of_two) -> None:
    # The engine's Python one-step paths on a hybrid endpoint: each small message goes to
    # and comes from its peer's own transport (memory on the host, TCP across).
    endpoints = two_hosts_of_two
    assert all(e.python_fast_paths and e.ranks_here == 2 for e in endpoints)
    engines = [Engine(rank, 4, endpoint) for rank, endpoint in enumerate(endpoints)]
    assert engines[0].send_fast == engines[0]._send_fast

    def rank(engine: Engine) -> list[bytes]:
        me = engine.rank
        for peer in range(4):
            if peer != me and not engine.send_fast(peer, 0, 1, bytes([me, peer]), 0):
                engine.send(peer, 0, 1, [bytes([me, peer])])
        got = []
        for peer in range(4):
            if peer != me:
                frame = engine.receive_fast(peer, 0, 1, None, 1_000_000_000)
                if frame is None:  # not whole yet after the spin: the general path
                    frame = engine.receive(0, peer, 1, None, lambda: "recv")
                got.append(bytes(frame.body))
        return got

    results = in_threads(*(lambda e=e: rank(e) for e in engines))
    for me, got in enumerate(results):
        assert got == [bytes([peer, me]) for peer in range(4) if peer != me]
