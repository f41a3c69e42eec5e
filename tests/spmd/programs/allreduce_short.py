"""Short Allreduce on plain buffers: every C number type with every op it is defined for,
at several counts, bitwise the same as the general path (a [buf, datatype] spec) and as
numpy's reduction of every rank's values; the two paths meeting in one Allreduce (ranks
alternating plain buffers and specs); a partner that comes late; IN_PLACE; the errors of
an op on a type it is not defined for.  Any number of ranks.
"""

import time

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()

FORMATS = "bBhHiIlLqQfd"
OPS = {"SUM": np.add, "PROD": np.multiply, "MAX": np.maximum, "MIN": np.minimum,
       "LAND": np.logical_and, "LOR": np.logical_or, "LXOR": np.logical_xor,
       "BAND": np.bitwise_and, "BOR": np.bitwise_or, "BXOR": np.bitwise_xor}
COUNTS = (1, 3, 17, 500)  # (500 doubles: 4,000 bytes, the short path's largest)


def values(of_rank, fmt, count):
    """Rank ``of_rank``'s operand: zeros, negatives (signed types) and values that wrap."""
    k = np.arange(count)
    raw = (of_rank * 37 + k * 11 + 5) % 120 - (0 if fmt.isupper() else 50)
    raw[::7] = 0
    if fmt in "fd":
        return (raw / 4).astype(fmt)
    return raw.astype(fmt)


def defined(opname, fmt):
    return fmt not in "fd" or opname in ("SUM", "PROD", "MAX", "MIN")


def expected(opname, fmt, count):
    result = values(0, fmt, count)
    with np.errstate(over="ignore"):
        for other in range(1, size):
            result = OPS[opname](values(other, fmt, count), result).astype(fmt)
    return result


def run(opname, fmt, count, form):
    mine = values(rank, fmt, count)
    out = np.full(count, 99, dtype=fmt)
    op, mpitype = getattr(MPI, opname), MPI._typedict[fmt]
    if form == "plain":
        world.Allreduce(mine, out, op=op)
    elif form == "spec":
        world.Allreduce([mine, mpitype], [out, mpitype], op=op)
    elif form == "mixed":  # the two paths meet
        if rank % 2:
            world.Allreduce([mine, mpitype], [out, mpitype], op=op)
        else:
            world.Allreduce(mine, out, op=op)
    else:  # in place
        out = mine.copy()
        world.Allreduce(MPI.IN_PLACE, out, op=op)
    return out


checked = 0
for fmt in FORMATS:
    for opname in OPS:
        if not defined(opname, fmt):
            mine, out, op = values(rank, fmt, 2), np.zeros(2, dtype=fmt), getattr(MPI, opname)
            calls = {"plain": lambda: run(opname, fmt, 2, "plain"),  # noqa: B023
                     "spec": lambda: run(opname, fmt, 2, "spec"),  # noqa: B023
                     "Reduce": lambda: world.Reduce(mine, out, op=op),  # noqa: B023
                     "Ireduce": lambda: world.Ireduce(mine, out, op=op).Wait(),  # noqa: B023
                     "Iallreduce": lambda: world.Iallreduce(mine, out, op=op).Wait()}  # noqa: B023
            for form, call in calls.items():  # every rank raises, none waits for another
                try:
                    call()
                except MPI.Exception as exc:
                    assert exc.Get_error_class() == MPI.ERR_OP, (opname, fmt, form, exc)
                else:
                    raise AssertionError(f"MPI.{opname} on {fmt!r} ({form}) did not fail")
            continue
        for count in COUNTS:
            want = expected(opname, fmt, count)
            for form in ("plain", "spec", "mixed", "in place"):
                got = run(opname, fmt, count, form)
                assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (
                    opname, fmt, count, form, got[:6], want[:6])
                checked += 1

# A partner that comes late: the others' first step waits longer than any spin.
for late in range(size):
    for fmt, opname in (("d", "SUM"), ("q", "MAX"), ("i", "BXOR")):
        if rank == late:
            time.sleep(0.03)
        got = run(opname, fmt, 5, "plain")
        want = expected(opname, fmt, 5)
        assert got.tobytes() == want.tobytes(), (late, opname, fmt, got, want)

# Many in a row, partners drifting apart (no barrier): every result right.
total = np.zeros(1)
for i in range(2000):
    one = np.array([float(rank + i)])
    world.Allreduce(MPI.IN_PLACE, one, op=MPI.SUM)
    assert one[0] == size * i + size * (size - 1) / 2, (i, one)

world.Barrier()
if rank == 0:
    assert checked == 4 * len(COUNTS) * sum(defined(o, f) for f in FORMATS for o in OPS), checked
    print("allreduce_short ok")
