"""Bandwidth of numpy arrays between two ranks, 64 KiB to 16 MiB, buffer API and object API.

    python benchmarks/bandwidth.py [--quick]       # runs both runtimes, prints the table

Rank 0 sends a burst of messages to rank 1, which answers with one empty
acknowledgement when it has them all; bandwidth is the burst's bytes over the
burst's time (MB/s, 10^6 bytes), the median over many bursts after a warm-up.

* buffer: ``comm.Send(array) / comm.Recv(array)`` into a preallocated array.
* object: ``comm.send(array) / array = comm.recv()``: the ndarray goes through
  the object API.  mpi4py pickles it in band (the bytes are copied into the
  pickle, and out of it on the other side); shoal sends the array's memory as
  an out-of-band buffer.  The target is shoal >= 2x mpi4py at 16 MiB.

The same file is the MPI program (``--program``), started by the driver as

    python -m shoal run -n 2 benchmarks/bandwidth.py --program
    mpiexec -launcher fork -n 2 python benchmarks/bandwidth.py --program
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import Report, Row

SIZES = [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20]
BURST_BYTES = 16 << 20  # a burst carries about this much (at least 4 messages)
TARGETS = {"buffer": ">= 0.9", "object": ">= 2"}  # buffer: from 64 KiB; object: at 16 MiB


def program(argv: list[str]) -> None:
    import argparse

    import numpy as np

    from shoal import MPI

    parser = argparse.ArgumentParser()
    parser.add_argument("--program", action="store_true")
    parser.add_argument("--seconds", type=float, default=0.5, help="timed run per case")
    args = parser.parse_args(argv)

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    if comm.Get_size() != 2:
        raise SystemExit("bandwidth needs exactly 2 ranks")
    ack = np.zeros(1, dtype=np.uint8)

    results: dict[str, dict[str, float]] = {"buffer": {}, "object": {}}
    for api in ("buffer", "object"):
        for size in SIZES:
            count = max(4, BURST_BYTES // size)
            array = (np.arange(size, dtype=np.int64) % 251).astype(np.uint8)

            def burst(api: str = api, array: np.ndarray = array, count: int = count) -> None:
                if rank == 0:
                    for _ in range(count):
                        if api == "buffer":
                            comm.Send(array, dest=1, tag=3)
                        else:
                            comm.send(array, dest=1, tag=3)
                    comm.Recv(ack, source=1, tag=4)
                else:
                    for _ in range(count):
                        if api == "buffer":
                            comm.Recv(array, source=0, tag=3)
                        else:
                            received = comm.recv(source=0, tag=3)
                    if api == "object" and not (
                            isinstance(received, np.ndarray) and received.nbytes == array.nbytes):
                        raise SystemExit(f"object API delivered {type(received)}")
                    comm.Send(ack, dest=0, tag=4)

            comm.Barrier()
            start = time.perf_counter()
            for _ in range(2):
                burst()
            per = (time.perf_counter() - start) / 2
            repeats = comm.bcast(int(min(1000, max(5, args.seconds / per))), root=0)
            times = np.empty(repeats)
            comm.Barrier()
            for i in range(repeats):
                t0 = time.perf_counter()
                burst()
                times[i] = time.perf_counter() - t0
            results[api][str(size)] = count * size / float(np.median(times)) / 1e6

    if rank == 0:
        print(json.dumps({"benchmark": "bandwidth", "mb_per_s": results}), flush=True)


def measure(quick: bool) -> Report:
    report = Report("Bandwidth of numpy arrays (2 ranks, median, MB/s)")
    args = ["--program", "--seconds", "0.1" if quick else "0.5"]
    results = harness.run_program(report, 2, Path(__file__).resolve(), args,
                                   timeout=300, rounds=1 if quick else 3)
    report.raw = {backend: result for backend, result in results.items()}
    for api in ("buffer", "object"):
        for size in SIZES:
            shoal = harness.pick(results[harness.SHOAL], "mb_per_s", api, str(size))
            mpich = harness.pick(results[harness.MPICH], "mb_per_s", api, str(size))
            report.rows.append(Row("bandwidth", f"{api} {harness.size_label(size)}", "MB/s",
                                   shoal, mpich, better="higher",
                                   target=TARGETS[api] if api == "buffer" or size == 16 << 20
                                   else ""))
    return report


if __name__ == "__main__":
    raise SystemExit(harness.script(program, measure))
