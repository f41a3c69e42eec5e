"""THREAD_MULTIPLE: several threads of each rank send and receive at once, correctly.

* Every rank runs THREADS threads; thread t of rank r ping-pongs ROUNDS messages with
  thread t of its partner rank on tag t, in the object API and in the buffer API, and
  checks every payload (a wrong or lost message fails an assert, a deadlock times out).
* Meanwhile one more thread per rank receives from ANY_SOURCE on its own tag what every
  other rank's extra thread sends it, and checks that messages from one sender arrive in
  the order they were sent (MPI's non-overtaking rule holds per thread).
* A thread blocked in a receive is woken by another thread of the same rank that sends
  to it (a message to self), and a rank's threads can wait on requests at once.
* Each rank's threads send a large message to the next rank and receive one from the
  previous at the same time.
"""

import os
import threading

import numpy as np

from shoal import MPI

THREADS = 4
ROUNDS = int(os.environ.get("THREADS_ROUNDS", "300"))  # fewer where each costs more (TCP)
ORDERED = int(os.environ.get("THREADS_ORDERED", "200"))
SELF_TAG = 99
ANY_TAG_BASE = 50

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
provided = MPI.Query_thread()
assert provided == MPI.THREAD_MULTIPLE, provided
failures: list[BaseException] = []


def guarded(function, *args):
    def run():
        try:
            function(*args)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
    return threading.Thread(target=run)


def ping_pong(thread: int) -> None:
    partner = rank ^ 1
    if partner >= size:
        return
    buffer = np.empty(16, dtype=np.int64)
    for i in range(ROUNDS):
        value = (rank, thread, i)
        expected = np.arange(16, dtype=np.int64) * (thread + 1) + i
        if rank < partner:
            comm.send(value, dest=partner, tag=thread)
            assert comm.recv(source=partner, tag=thread) == (partner, thread, i)
            comm.Send(expected, dest=partner, tag=thread)
            comm.Recv(buffer, source=partner, tag=thread)
        else:
            assert comm.recv(source=partner, tag=thread) == (partner, thread, i)
            comm.send(value, dest=partner, tag=thread)
            comm.Recv(buffer, source=partner, tag=thread)
            comm.Send(expected, dest=partner, tag=thread)
        assert np.array_equal(buffer, expected), (rank, thread, i, buffer)


def ordered_sender() -> None:
    for i in range(ORDERED):
        for dest in range(size):
            if dest != rank:
                comm.send((rank, i), dest=dest, tag=ANY_TAG_BASE)


def ordered_receiver() -> None:
    seen = {source: -1 for source in range(size) if source != rank}
    status = MPI.Status()
    for _ in range(ORDERED * (size - 1)):
        source, i = comm.recv(source=MPI.ANY_SOURCE, tag=ANY_TAG_BASE, status=status)
        assert status.Get_source() == source
        assert i == seen[source] + 1, (rank, source, i, seen[source])
        seen[source] = i


def woken_by_a_sibling() -> None:
    # One thread waits for a message that only another thread of this rank sends.
    got: list[object] = []
    waiter = guarded(lambda: got.append(comm.recv(source=rank, tag=SELF_TAG)))
    waiter.start()
    comm.send("from a sibling", dest=rank, tag=SELF_TAG)
    waiter.join(30)
    assert not waiter.is_alive(), "a thread blocked in recv was never woken"
    assert got == ["from a sibling"]


def requests_from_many_threads() -> None:
    # Each thread posts a receive and waits on it while the main thread sends.
    if size < 2:
        return
    partner = (rank + 1) % size
    before = (rank - 1) % size
    results: dict[int, object] = {}
    waiters = []
    for t in range(THREADS):
        request = comm.irecv(source=before, tag=200 + t)
        waiters.append(guarded(lambda t=t, r=request: results.__setitem__(t, r.wait())))
    for waiter in waiters:
        waiter.start()
    for t in reversed(range(THREADS)):
        comm.send(("req", before, t), dest=partner, tag=200 + t)
    for waiter in waiters:
        waiter.join(60)
    assert results == {t: ("req", (before - 1) % size, t) for t in range(THREADS)}, results


def large_both_ways_at_once() -> None:
    """Every rank's thread sends a large message to the next rank while another receives
    one from the previous: with blocking sends, each large message is copied in two
    halves, the sender writing one, so every rank must answer the next one's request
    while it waits for the previous one's (no cycle of waits)."""
    n = (4 << 20) + 24  # float64 elements: 32 MiB
    right, left = (rank + 1) % size, (rank - 1) % size
    got = np.zeros(n)

    def send() -> None:
        comm.Send(np.arange(n, dtype=np.float64) + rank, dest=right, tag=77)

    def receive() -> None:
        comm.Recv(got, source=left, tag=77)

    pair = [guarded(send), guarded(receive)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join(120)
    assert not any(t.is_alive() for t in pair), "a large send or receive is stuck"
    assert np.array_equal(got, np.arange(n, dtype=np.float64) + left), "a large message differs"


threads = [guarded(ping_pong, t) for t in range(THREADS)]
threads += [guarded(ordered_sender), guarded(ordered_receiver)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(120)
assert not any(t.is_alive() for t in threads), "a thread is stuck"
if failures:
    raise failures[0]
woken_by_a_sibling()
comm.Barrier()
requests_from_many_threads()
if failures:
    raise failures[0]
comm.Barrier()
large_both_ways_at_once()
if failures:
    raise failures[0]
comm.Barrier()
if rank == 0:
    print("threads ok", flush=True)
