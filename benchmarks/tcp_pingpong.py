"""Ping-pong latency and bandwidth: encrypted TCP links against shared memory.

    python benchmarks/tcp_pingpong.py [--quick]

Two processes (forked from this one), each with its own engine, bounce a
message of each size back and forth; latency is half the round trip
(median of the timed rounds), bandwidth is the size over that one-way time.
``tcp`` is :class:`~shoal.transport.tcp.TcpEndpoint` over 127.0.0.1 (every
byte sealed and opened with AES-256-GCM, TCP through the loopback device);
``shm`` is the shared-memory rings with their large-message rendezvous.
Loopback hides the network, so the TCP figures bound what the software costs,
not what a real link gives.  Needs ``pip install 'shoal[beacon]'``.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

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
    endpoint: Endpoint = make(rank)  # type: ignore[operator]
    engine = Engine(rank, 2, endpoint)
    results = {size: statistics.median(pingpong(engine, size, rounds_for(size, quick))) / 2
               for size in sizes}
    engine.close()
    report.send(results)


def measure(make: object, sizes: list[int], quick: bool) -> dict[int, float]:
    ctx = multiprocessing.get_context("fork")
    pipes = [ctx.Pipe(duplex=False) for _ in range(2)]
    procs = [ctx.Process(target=child, args=(r, make, sizes, quick, pipes[r][1]))
             for r in range(2)]
    for proc in procs:
        proc.start()
    results = pipes[0][0].recv()
    for proc in procs:
        proc.join()
    return results


def tcp_maker() -> object:
    key = JobKey.generate()
    listeners = [listen("127.0.0.1"), listen("127.0.0.1")]
    addresses = [s.getsockname()[:2] for s in listeners]

    def make(rank: int) -> Endpoint:
        listeners[1 - rank].close()
        return TcpEndpoint(rank, 2, key, listeners[rank], addresses)

    return make


def shm_maker() -> object:
    job = ShmJob.create(2)

    def make(rank: int) -> Endpoint:
        return ShmEndpoint(rank, 2, os.dup(job._fd), job._doorbells[rank][0],
                           [w for _, w in job._doorbells])

    return make


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = SIZES[:-1] if quick else SIZES
    rows = {"tcp (AES-GCM)": measure(tcp_maker(), sizes, quick),
            "shm": measure(shm_maker(), sizes, quick)}
    print(f"{'bytes':>10} | " + " | ".join(f"{name:>26}" for name in rows))
    print(f"{'':>10} | " + " | ".join(f"{'one-way us':>12} {'MB/s':>13}" for _ in rows))
    for size in sizes:
        cells = []
        for results in rows.values():
            seconds = results[size]
            cells.append(f"{seconds * 1e6:12.1f} {size / seconds / 1e6:13.1f}")
        print(f"{size:>10} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
