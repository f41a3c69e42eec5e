"""2-D heat equation on a plate cut into slabs of rows: halo exchange with numpy buffers.

The plate is a grid of ``--rows`` x ``--cols`` points; the top edge is held at
1.0 and the other edges at 0.0.  Each step is one explicit (Jacobi) update

    u[i, j] += alpha * (u[i-1, j] + u[i+1, j] + u[i, j-1] + u[i, j+1] - 4 u[i, j])

Each rank owns a slab of the inner rows plus one ghost row above and below.
Before every step it swaps its edge rows with its neighbours through
``comm.Sendrecv`` of numpy rows (the buffer API, no pickling; ``MPI.PROC_NULL``
at the plate's top and bottom), and after every step ``comm.Allreduce`` sums
the squared change over all ranks into the global residual.

At the end rank 0 gathers the slabs (``comm.gather`` of numpy arrays) and
prints the residual and a checksum; with ``--check`` it also runs the same
steps on the whole grid alone and says whether the two grids are identical.
They must be bit for bit: each point sees the same arithmetic in the same order.

Run it:

    shoal run -n 4 examples/heat.py --check
    mpiexec -n 4 python examples/heat.py --check
"""

from __future__ import annotations

import argparse

import numpy as np

from shoal import MPI

ALPHA = 0.2  # explicit scheme is stable for alpha <= 0.25


def initial_plate(rows: int, cols: int) -> np.ndarray:
    plate = np.zeros((rows, cols), dtype=np.float64)
    plate[0, :] = 1.0  # the hot edge
    return plate


def step(u: np.ndarray, new: np.ndarray) -> float:
    """One update of the inner points of ``u`` into ``new``; returns the sum of squared changes.

    ``u`` and ``new`` have the same shape; the first and last rows and columns
    are read, never written.  The whole-plate run and every slab use this very
    function, which is what makes their results identical.
    """
    inner = u[1:-1, 1:-1]
    new[1:-1, 1:-1] = inner + ALPHA * (
        u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * inner
    )
    change = new[1:-1, 1:-1] - inner
    return float(np.sum(change * change))


def serial(rows: int, cols: int, steps: int) -> tuple[np.ndarray, float]:
    u = initial_plate(rows, cols)
    new = u.copy()
    squared = 0.0
    for _ in range(steps):
        squared = step(u, new)
        u, new = new, u
    return u, float(np.sqrt(squared))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=258, help="grid rows, edges included")
    parser.add_argument("--cols", type=int, default=258, help="grid columns, edges included")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--check", action="store_true",
                        help="also compute the whole plate on rank 0 and compare")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    inner_rows = args.rows - 2
    if inner_rows < size:
        raise SystemExit(f"need at least {size} inner rows for {size} ranks")

    # This rank owns inner rows first..stop-1 (global numbering, row 0 is the
    # top edge); its slab holds them plus the row above and the row below.
    first = 1 + inner_rows * rank // size
    stop = 1 + inner_rows * (rank + 1) // size
    u = np.ascontiguousarray(initial_plate(args.rows, args.cols)[first - 1:stop + 1])
    new = u.copy()
    above = rank - 1 if rank > 0 else MPI.PROC_NULL
    below = rank + 1 if rank < size - 1 else MPI.PROC_NULL

    local = np.zeros(1)
    total = np.zeros(1)
    for _ in range(args.steps):
        # Top owned row up, bottom ghost row from below; then the reverse.
        # A PROC_NULL neighbour leaves the ghost row alone: it is the plate's edge.
        comm.Sendrecv(u[1], dest=above, sendtag=1, recvbuf=u[-1], source=below, recvtag=1)
        comm.Sendrecv(u[-2], dest=below, sendtag=2, recvbuf=u[0], source=above, recvtag=2)
        local[0] = step(u, new)
        comm.Allreduce(local, total, op=MPI.SUM)
        u, new = new, u
    residual = float(np.sqrt(total[0]))

    slabs = comm.gather(u[1:-1], root=0)
    if rank == 0:
        assert slabs is not None
        plate = initial_plate(args.rows, args.cols)
        plate[1:-1] = np.concatenate(slabs)
        print(f"heat: {args.rows}x{args.cols} plate, {args.steps} steps on {size} ranks")
        print(f"residual {residual:.12e} checksum {plate.sum():.12f}")
        if args.check:
            whole, serial_residual = serial(args.rows, args.cols, args.steps)
            same = bool(np.array_equal(whole, plate))
            # The residual is a sum over ranks, so its rounding may differ a little.
            close = abs(residual - serial_residual) <= 1e-12 * max(serial_residual, 1e-300)
            print(f"serial checksum {whole.sum():.12f}: grids identical {same}, "
                  f"residuals agree {close}")
            print("equals serial: " + ("yes" if same and close else "NO"), flush=True)


if __name__ == "__main__":
    main()
