"""Processors for benchmarks/stream_throughput.py (importable by every contender's workers)."""

from __future__ import annotations

import shoal


def square(x):
    """The trivial function: what is left is each system's per-item overhead."""
    return x * x


@shoal.stream.processor
def stream_square(x):
    return x * x


def busy(x):
    """About 20 ms of pure-Python CPU, the same for every item."""
    total = 0
    for i in range(300_000):
        total += i ^ x
    return total & 0xFFFF


def busy_chunk(chunk):
    return [busy(x) for x in chunk]


def square_chunk(chunk):
    return [x * x for x in chunk]
