"""The klyng-style API: shoal.init(main), rank(), size(), send(data, to, tag), recv(source, tag),
end(). Tags are ints or string subjects. Any number of ranks.
"""

import numpy as np

import shoal


def main():
    rank, size = shoal.rank(), shoal.size()
    assert isinstance(rank, int) and isinstance(size, int), (type(rank), type(size))
    assert size >= 1 and 0 <= rank < size, (rank, size)
    assert shoal.ANY_SOURCE not in range(size), shoal.ANY_SOURCE
    right, left = (rank + 1) % size, (rank - 1) % size

    if size >= 2:
        # --- a ring, int tags, positional and keyword arguments ---------------------------
        if rank == 0:
            shoal.send(("ring", rank), right, 1)
            got = shoal.recv(source=left, tag=1)
        else:
            got = shoal.recv(source=left, tag=1)
            shoal.send(("ring", rank), to=right, tag=1)
        assert got == ("ring", left), got

        # --- subjects pick messages out of order; same-named int and string tags differ -----
        if rank == 0:
            shoal.send("beta 1", 1, tag="beta")
            shoal.send("alpha 1", 1, tag="alpha")
            shoal.send("int 3", 1, tag=3)
            shoal.send("string 3", 1, tag="3")
            shoal.send("alpha 2", 1, tag="alpha")
            shoal.send("no tag", 1)  # the default tag is 0
        elif rank == 1:
            assert shoal.recv(source=0, tag="alpha") == "alpha 1"
            assert shoal.recv(source=0, tag="3") == "string 3"
            assert shoal.recv(source=0, tag=3) == "int 3"
            assert shoal.recv(source=0, tag="alpha") == "alpha 2"
            assert shoal.recv(source=0, tag=0) == "no tag"
            assert shoal.recv(source=0, tag="beta") == "beta 1"

        # --- many messages with one subject arrive in order ---------------------------------
        if rank == 1:
            for i in range(200):
                shoal.send(i, 0, tag="seq")
        elif rank == 0:
            got = [shoal.recv(source=1, tag="seq") for _ in range(200)]
            assert got == list(range(200)), got[:10]

        # --- everyone reports to rank 0 under a subject; rank 0 takes them from any source ---
        # (After this only rank 1 still sends to rank 0, so rank 0's wildcard receives below are
        # certain to get rank 1's messages.)
        if rank == 0:
            reports = sorted(shoal.recv(source=shoal.ANY_SOURCE, tag="report")
                             for _ in range(size - 1))
            assert reports == [(r, r * r) for r in range(1, size)], reports
        else:
            shoal.send((rank, rank * rank), 0, tag="report")

        # --- data of every kind, received with the default (any source, any tag) ------------
        if rank == 1:
            shoal.send(None, 0, tag="none")
            shoal.send(np.arange(5.0), 0, tag="array")
            shoal.send({"nested": [1, (2, 3)], "bytes": b"\x00\x01"}, 0)
            shoal.send(list(range(100_000)), 0, tag="big")
        elif rank == 0:
            assert shoal.recv() is None
            arr = shoal.recv(source=1)
            assert isinstance(arr, np.ndarray) and arr.tolist() == [0, 1, 2, 3, 4], arr
            assert shoal.recv(tag=shoal.ANY_TAG) == {"nested": [1, (2, 3)], "bytes": b"\x00\x01"}
            assert shoal.recv(source=shoal.ANY_SOURCE, tag="big") == list(range(100_000))

    if rank == 0:
        print("klyng_messages ok", flush=True)
    shoal.end()


shoal.init(main)
