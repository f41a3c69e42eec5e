"""Ping-pong latency and bandwidth: encrypted TCP links against plain sockets and
shared memory.

    python benchmarks/tcp_pingpong.py [--quick]

Two processes (forked from this one), each with its own engine, bounce a
message of each size back and forth; latency is half the round trip
(median of the timed rounds), bandwidth is the size over that one-way time,
and "cpu" is what both processes spent (user and system) per one-way message.
``tcp`` is :class:`~shoal.transport.tcp.TcpEndpoint` over 127.0.0.1 (every
byte sealed and opened with AES-256-GCM, TCP through the loopback device);
``plain`` is two plain Python TCP sockets doing the same without engine,
framing or cipher (``TCP_NODELAY``, ``sendall``/``recv_into``): the floor
for Python over TCP; ``shm`` is the shared-memory rings with their
large-message rendezvous.  Loopback hides the network, so the TCP figures
bound what the software costs, not what a real link gives; on a busy machine
the cpu column is the steadier one.  Needs ``pip install 'shoal[beacon]'``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
import statistics
import struct
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import harness

from shoal.security import JobKey
from shoal.spmd.engine import Engine
from shoal.transport.base import Endpoint
from shoal.transport.shm import ShmEndpoint, ShmJob
from shoal.transport.tcp import TcpEndpoint, listen

SIZES = [8, 1024, 16 * 1024, 256 * 1024, 1 << 20, 4 << 20, 16 << 20]


def rounds_for(size: int, quick: bool) -> int:
    budget = 30_000_000 if quick else 300_000_000  # bytes moved per size, roughly
    return max(5, min(2000 if quick else 10_000, budget // max(size, 1) // 2))


def pingpong(engine: Engine, size: int, rounds: int) -> list[float]:
    other = 1 - engine.rank
    payload = bytearray(size)
    target = memoryview(bytearray(size))
    times = []
    for i in range(rounds + 3):  # three warm-up rounds
        start = time.perf_counter()
        if engine.rank == 0:
            out = engine.send(other, 0, 1, [payload])
            engine.receive(0, other, 1, target, lambda: "pong")
        else:
            engine.receive(0, other, 1, target, lambda: "ping")
            out = engine.send(other, 0, 1, [payload])
        engine.wait_until(lambda o=out: o.done, lambda: "send")
        if i >= 3:
            times.append(time.perf_counter() - start)
    return times


def child(rank: int, make: object, sizes: list[int], quick: bool, report: Connection) -> None:
    made = make(rank)  # type: ignore[operator]
    engine = Engine(rank, 2, made) if isinstance(made, Endpoint) else None
    results = {}
    for size in sizes:
        start = resource.getrusage(resource.RUSAGE_SELF)
        times = (pingpong(engine, size, rounds_for(size, quick)) if engine is not None
                 else plain_pingpong(made, rank, size, rounds_for(size, quick)))
        spent = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (spent.ru_utime - start.ru_utime + spent.ru_stime - start.ru_stime) / (
            len(times) + 3)
        results[size] = (statistics.median(times) / 2, cpu)
    if engine is not None:
        engine.close()
    else:
        made.close()
    report.send(results)


def plain_pingpong(sock: socket.socket, rank: int, size: int, rounds: int) -> list[float]:
    """The same exchange over a plain socket, each message behind its 8-byte length."""
    message = struct.pack("<Q", size) + bytes(size)
    back = memoryview(bytearray(size + 8))

    def receive() -> None:
        got = 0
        while got < size + 8:
            n = sock.recv_into(back[got:])
            if not n:
                raise EOFError("the other process hung up")
            got += n

    times = []
    for i in range(rounds + 3):
        start = time.perf_counter()
        if rank == 0:
            sock.sendall(message)
            receive()
        else:
            receive()
            sock.sendall(message)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return times


def measure(make: object, sizes: list[int], quick: bool) -> dict[int, float]:
    ctx = multiprocessing.get_context("fork")
    pipes = [ctx.Pipe(duplex=False) for _ in range(2)]
    procs = [ctx.Process(target=child, args=(r, make, sizes, quick, pipes[r][1]))
             for r in range(2)]
    for proc in procs:
        proc.start()
    results = [pipe[0].recv() for pipe in pipes]
    for proc in procs:
        proc.join()
    # rank 0's time; the cpu of both processes per one-way message (a round trip is two)
    return {size: (results[0][size][0], (results[0][size][1] + results[1][size][1]) / 2)
            for size in results[0]}


def tcp_maker() -> object:
    key = JobKey.generate()
    listeners = [listen("127.0.0.1"), listen("127.0.0.1")]
    addresses = [s.getsockname()[:2] for s in listeners]

    def make(rank: int) -> Endpoint:
        listeners[1 - rank].close()
        return TcpEndpoint(rank, 2, key, listeners[rank], addresses)

    return make


def plain_maker() -> object:
    listener = socket.create_server(("127.0.0.1", 0))
    address = listener.getsockname()

    def make(rank: int) -> socket.socket:
        if rank == 1:
            sock, _ = listener.accept()
        else:
            sock = socket.create_connection(address)
        listener.close()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    return make


def shm_maker() -> object:
    job = ShmJob.create(2)

    def make(rank: int) -> Endpoint:
        return ShmEndpoint(rank, 2, os.dup(job._fd), job._doorbells[rank][0],
                           [w for _, w in job._doorbells])

    return make


def main() -> None:
    quick = harness.plain_options(__doc__)
    sizes = SIZES[:-1] if quick else SIZES
    rows = {"tcp (AES-GCM)": measure(tcp_maker(), sizes, quick),
            "plain sockets": measure(plain_maker(), sizes, quick),
            "shm": measure(shm_maker(), sizes, quick)}
    print(f"{'bytes':>10} | " + " | ".join(f"{name:>30}" for name in rows)
          + " | tcp / plain (time, cpu)")
    print(f"{'':>10} | " + " | ".join(f"{'one-way us':>10} {'MB/s':>9} {'cpu us':>9}"
                                      for _ in rows) + " |")
    for size in sizes:
        cells = []
        for results in rows.values():
            seconds, cpu = results[size]
            cells.append(f"{seconds * 1e6:10.1f} {size / seconds / 1e6:9.1f} {cpu * 1e6:9.1f}")
        tcp, tcp_cpu = rows["tcp (AES-GCM)"][size]
        plain, plain_cpu = rows["plain sockets"][size]
        ratios = f"{tcp / plain:5.2f}, {tcp_cpu / max(plain_cpu, 1e-9):5.2f}"
        print(f"{size:>10} | " + " | ".join(cells) + f" | {ratios}")
    print(f"\n(load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
