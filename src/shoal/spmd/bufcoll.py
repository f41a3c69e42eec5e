"""Buffer collectives (``Reduce``, ``Allreduce``, ``Gather[v]`` ...) of an intra-communicator.

Data moves as raw bytes straight between the callers' buffers; reductions
use :func:`shoal.spmd.ops.apply_buffers`, which follows MPI's rule
``inout = in op inout``.  Partial results always combine the lower ranks'
value on the left, so non-commutative operators give rank order.

Buffer specs follow mpi4py: in the buffer that is split among the processes
(the root's receive buffer of ``Gather``, every receive buffer of
``Allgather``, both of ``Alltoall`` ...) an explicit count is the count *per
process*, and an inferred one is the buffer divided by the number of
processes.  A derived datatype that is not contiguous travels packed (see
:mod:`.buffers`); received data is unpacked by ``spec.commit()`` at the end.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import ops as _ops
from shoal.spmd import world
from shoal.spmd.buffers import BufferSpec, parse_buffer, parse_wspec
from shoal.spmd.collectives import ObjectCollectives, _commutes
from shoal.spmd.datatypes import _typedict, as_numpy
from shoal.spmd.ops import SUM, Op, _wrap_integer, apply_buffers, check_op

_RING_BYTES = 64 * 1024  # a commutative Allreduce at least this large goes round a ring
# A Bcast or Allreduce of a plain buffer (one contiguous array of a predefined type, not a
# [buf, count, datatype] list) up to this size takes the short path: no spec is parsed and
# each message goes in one call to the transport's fast path where it has one (the same
# frames, tags and tree as the general path, which it falls back to message by message).
_SHORT_BYTES = 4096
_numpy: Any = None  # the numpy module, once a short Allreduce needed it
# A few elements reduce faster in plain Python than through numpy (a ufunc call costs
# about a microsecond): sums and products of doubles and floats (IEEE: a float32 sum
# done in double and rounded is the float32 sum), and the integer ops that wrap as C's.
_SCALAR_COUNT = 16
_SCALAR_FLOAT_OPS = frozenset({"SUM", "PROD"})
_SCALAR_INT_OPS = frozenset({"SUM", "PROD", "MAX", "MIN"})
_INT_FORMATS = frozenset("bBhHiIlLqQ")


def _plain(buf: Any, writable: bool) -> memoryview | None:
    """``buf`` as a flat byte view when it is a plain buffer for the short paths, else
    None; the buffer's own format is ``_plain_format(buf)``."""
    found = _plain_format(buf, writable)
    return None if found is None else found[0]


def _plain_format(buf: Any, writable: bool) -> tuple[memoryview, str] | None:
    """(a flat byte view, the buffer's format) when ``buf`` is a plain buffer for the
    short paths, else None."""
    kind = type(buf)
    if kind is list or kind is tuple or buf is None or buf is C.IN_PLACE:
        return None
    try:
        view = memoryview(buf)
    except TypeError:
        return None
    fmt = view.format
    if (not view.c_contiguous or view.nbytes > _SHORT_BYTES or (writable and view.readonly)
            or fmt not in _typedict):
        return None
    return (view if view.ndim == 1 and fmt == "B" else view.cast("B")), fmt


def _short_reducible(op: Any, fmt: str) -> bool:
    """Whether the short paths reduce elements of format ``fmt`` with ``op``: a predefined
    op that numpy has a ufunc for, on a type it is defined for (not chars: the general
    path decides those, as it does user ops and MAXLOC)."""
    if type(op) is not Op:
        return False
    info = op._info
    category = _typedict[fmt].category
    return bool(info.ufunc and info.user is None and category != "char"
                and info.categories is not None and category in info.categories)


def _short_ufunc(op: Any, fmt: str) -> Any:
    """The numpy ufunc that reduces elements of format ``fmt`` with the predefined ``op``,
    or None when the general path must decide (user ops, MAXLOC, chars, no numpy)."""
    global _numpy
    if not _short_reducible(op, fmt):
        return None
    if _numpy is None:
        try:
            import numpy
        except ImportError:
            return None
        _numpy = numpy
    return getattr(_numpy, op._info.ufunc)


# The compiled rings' one-call Allreduce (``allreduce_fast``): the codes of the ops it
# applies, and the formats it takes (C's own number types).  Floats take SUM and PROD
# only: numpy's maximum and minimum have their own rules for NaN and signed zeros.
# (The codes are the C enum's: SUM 1, PROD 2 ... BXOR 10.)
_C_OPS = {getattr(_ops, name)._info: code for code, name in enumerate(
    ("SUM", "PROD", "MAX", "MIN", "LAND", "LOR", "LXOR", "BAND", "BOR", "BXOR"), 1)}
_C_FORMATS = "bBhHiIlLqQfd"


def _c_reductions() -> dict[str, tuple[int, ...]]:
    """What ``allreduce_fast`` may reduce: format -> the op codes, the pairs the short
    path takes (:func:`_short_reducible`), which C does exactly as it does."""
    table = {}
    for fmt in _C_FORMATS:
        codes = tuple(code for info, code in _C_OPS.items()
                      if _short_reducible(Op._wrap(info), fmt)
                      and (fmt not in "fd" or info.name in _SCALAR_FLOAT_OPS))
        if codes:
            table[fmt] = codes
    return table


_short_plans: dict[tuple[str, Any], Any] = {}  # (format, a predefined op's info) -> plan


def _short_plan(op: Op, fmt: str) -> tuple[Any, Any, Any, int, int] | None:
    """How a short Allreduce reduces elements of format ``fmt`` with the predefined
    ``op``: (datatype, numpy ufunc, the op's Python function where a few elements reduce
    faster in plain Python (else None), the bits an integer wraps at (else 0), the
    element's extent); None: the general path decides. Worked out once per format and op."""
    info = op._info
    key = (fmt, info)
    plan = _short_plans.get(key)
    if plan is not None or key in _short_plans:
        return plan
    if info.user is not None or fmt not in _typedict:
        return None  # (not kept: user ops come and go, and so may odd formats)
    ufunc = _short_ufunc(op, fmt)
    if ufunc is not None:
        datatype = _typedict[fmt]
        name = info.name
        integer = fmt in _INT_FORMATS
        scalar = ((fmt in ("d", "f") and name in _SCALAR_FLOAT_OPS)
                  or (integer and name in _SCALAR_INT_OPS))
        plan = (datatype, ufunc, info.pyfunc if scalar else None,
                8 * datatype.extent if integer else 0, datatype.extent)
    _short_plans[key] = plan
    return plan


def _in_place(buf: Any) -> bool:
    """``MPI.IN_PLACE``, or ``None``, which mpi4py's collectives read the same way."""
    return buf is C.IN_PLACE or buf is None


def _blocks(counts: list[int], displs: list[int] | None, itemsize: int) -> list[tuple[int, int]]:
    """(start, stop) byte offsets of each rank's block."""
    if displs is None:
        displs, total = [], 0
        for count in counts:
            displs.append(total)
            total += count
    return [(d * itemsize, (d + c) * itemsize) for c, d in zip(counts, displs, strict=True)]


def _even(spec: BufferSpec, n: int) -> list[tuple[int, int]]:
    """(start, stop) byte offsets of the ``n`` equal blocks of a split buffer."""
    block = spec.count * spec.unit
    return [(i * block, (i + 1) * block) for i in range(n)]


def _check_match(send: BufferSpec, recv: BufferSpec, what: str) -> None:
    """A reduction's send and receive buffers must agree, as mpi4py checks."""
    if send.datatype._info is not recv.datatype._info:
        raise C.ValueErrorException(C.ERR_TYPE, f"{what}: mismatch in send and receive "
                                    "MPI datatypes")
    if send.count != recv.count:
        raise C.ValueErrorException(C.ERR_COUNT, f"{what}: mismatch in send count "
                                    f"{send.count} and receive count {recv.count}")


class BufferCollectives(ObjectCollectives):
    """The buffer collectives."""

    # -- plumbing ----------------------------------------------------------------

    def _xchg(self, send_view: memoryview, dest: int, recv_view: memoryview, source: int,
              tag: int, what: str) -> None:
        """Send one view and receive into another, both directions at once."""
        out = self._csend([send_view], dest, tag)
        self._crecv_message(source, tag, what, recv_view)
        self._cwait(out, what)

    def _vector(self, buf: Any, readonly: bool) -> tuple[Any, list[tuple[int, int]]]:
        spec = parse_buffer(buf, readonly=readonly, vector=True, blocks=self._size)
        assert spec.counts is not None
        return spec, _blocks(list(spec.counts), list(spec.displs) if spec.displs is not None
                             else None, spec.unit)

    # -- reductions -------------------------------------------------------------

    def Reduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM, root: int = 0) -> None:
        self._check_root(root)
        r = self._rank
        out = None
        if r == root:
            out = parse_buffer(recvbuf, readonly=False)
            if _in_place(sendbuf):
                spec = out
            else:
                spec = parse_buffer(sendbuf, readonly=True)
                _check_match(spec, out, "Reduce")
        elif _in_place(sendbuf):
            raise C.Exception(C.ERR_BUFFER, "Reduce: IN_PLACE is only valid at the root")
        else:
            spec = parse_buffer(sendbuf, readonly=True)
        check_op(op, spec.datatype)
        tag = self._tag()
        acc = bytearray(spec.view)
        if root != 0 and not _commutes(op):
            result = self._reduce_buffers(acc, spec.datatype, op, 0, tag)
            if r == 0:
                self._cwait(self._csend([result], root, tag), "Reduce")
            if r == root:
                assert out is not None
                self._crecv_message(0, tag, "Reduce", out.view)
                out.commit()
            return
        result = self._reduce_buffers(acc, spec.datatype, op, root, tag)
        if r == root:
            assert out is not None
            out.view[:len(result)] = result
            out.commit()

    def _reduce_buffers(self, acc: bytearray, datatype: Any, op: Any, root: int,
                        tag: int) -> bytearray:
        """Binomial-tree reduction of ``acc`` towards ``root``; the result there."""
        n, r = self._size, self._rank
        relative = (r - root) % n
        scratch = bytearray(len(acc))
        mask = 1
        while mask < n:
            if relative & mask:
                self._cwait(self._csend([acc], (relative - mask + root) % n, tag), "Reduce")
                return acc
            if relative + mask < n:
                self._crecv_message((relative + mask + root) % n, tag, "Reduce",
                                    memoryview(scratch))
                # scratch = acc op scratch: the lower ranks stay on the left.
                apply_buffers(op, memoryview(acc), memoryview(scratch), datatype)
                acc, scratch = scratch, acc
            mask <<= 1
        return acc

    def Allreduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._engine_free_check()
        # Every path takes the collective's one tag (self._tag()) once, so that partners
        # on different paths (a plain buffer here, a [buf, count, type] list there) meet.
        tag = -1
        partners = self._partners
        if partners and type(op) is Op:
            engine = world._engine or world.engine()
            fast = engine.allreduce_fast
            if fast is None and engine.can_reduce:
                engine.bind_reductions(_c_reductions())
                fast = engine.allreduce_fast
            code = _C_OPS.get(op._info)
            if fast is not None and code is not None:
                tag = self._tag()
                done = fast(partners, self._cctx, tag, None if _in_place(sendbuf) else sendbuf,
                            recvbuf, code, engine.fast_spin_ns)
                if done >= 0:
                    if done < 2 * len(partners):  # (sendbuf is in recvbuf now)
                        found = _plain_format(recvbuf, True)
                        assert found is not None  # (the rings took it)
                        self._short_steps(found[0], found[1], op, tag, 1 << done // 2,
                                          done & 1 == 1)
                    return
        if self._short_allreduce(sendbuf, recvbuf, op, tag):
            return
        spec = parse_buffer(recvbuf, readonly=False)
        view = spec.view
        if not _in_place(sendbuf):
            source = parse_buffer(sendbuf, readonly=True)
            _check_match(source, spec, "Allreduce")
            view[:] = source.view
        check_op(op, spec.datatype)
        n = self._size
        if n > 1:
            if tag == -1:
                tag = self._tag()
            if _commutes(op) and view.nbytes >= _RING_BYTES and spec.count >= n:
                self._ring_allreduce(view, spec.count, spec.unit, spec.datatype, op, tag)
            elif n & (n - 1) == 0:
                self._doubling_allreduce(view, spec.datatype, op, tag)
            else:
                result = self._reduce_buffers(bytearray(view), spec.datatype, op, 0, tag)
                if self._rank == 0:
                    view[:] = result
                self._bcast_bytes(view, 0)
        spec.commit()

    def _short_allreduce(self, sendbuf: Any, recvbuf: Any, op: Any, tag: int) -> bool:
        """Recursive doubling on a small plain buffer with a predefined op, with the
        collective's ``tag`` (-1: not taken yet); False: the general path does it (it
        also says what is wrong, if anything is)."""
        n = self._size
        if n & (n - 1) or type(op) is not Op:
            return False
        found = _plain_format(recvbuf, True)
        if found is None:
            return False
        out, fmt = found
        if _short_plan(op, fmt) is None:
            return False
        if not _in_place(sendbuf):
            given = _plain_format(sendbuf, False)
            if given is None or given[1] != fmt or given[0].nbytes != out.nbytes:
                return False
            out[:] = given[0]
        if n > 1:
            self._short_steps(out, fmt, op, self._tag() if tag == -1 else tag, 1, False)
        return True

    def _short_steps(self, out: memoryview, fmt: str, op: Op, tag: int, mask: int,
                     sent: bool) -> None:
        """The steps of a short Allreduce from the one with partner ``rank ^ mask`` on
        (its send already gone if ``sent``: the compiled rings' Allreduce stopped there),
        ``out`` (flat bytes of format ``fmt``) reduced in place."""
        n = self._size
        plan = _short_plan(op, fmt)
        incoming = bytearray(out.nbytes)
        mine: Any
        theirs: Any
        func: Any
        if plan is None:  # (no numpy: the rings' Allreduce went on without it)
            datatype, ufunc, func, bits, extent = _typedict[fmt], None, None, 0, 1
            scalar = False
        else:
            datatype, ufunc, func, bits, extent = plan
            scalar = func is not None and out.nbytes // extent <= _SCALAR_COUNT
        if scalar:
            cast: Any = memoryview.cast  # fmt is only known at run time
            mine, theirs = cast(out, fmt), cast(memoryview(incoming), fmt)
        elif ufunc is not None:
            mine = as_numpy(out, datatype)
            theirs = as_numpy(memoryview(incoming), datatype)
        engine = world._engine or world.engine()
        ctx, ranks, r = self._cctx, self._ranks, self._rank
        while mask < n:
            partner = r ^ mask
            target = ranks[partner]
            sending = None
            if not sent and not engine.send_fast(target, ctx, tag, out, 0):
                sending = self._csend([out], partner, tag)
            sent = False
            if engine.receive_fast(target, ctx, tag, incoming, engine.fast_spin_ns) is None:
                self._crecv_message(partner, tag, "Allreduce", memoryview(incoming))
            if sending is not None:
                self._cwait(sending, "Allreduce")
            # The predefined ops commute exactly (IEEE a + b == b + a), so both partners
            # hold the same bits after this, whichever side each operand is on.
            if ufunc is None:
                apply_buffers(op, memoryview(incoming), out, datatype)
            elif not scalar:
                ufunc(theirs, mine, out=mine)
            elif bits:
                for k in range(len(mine)):
                    mine[k] = _wrap_integer(int(func(theirs[k], mine[k])), fmt, bits)
            else:
                for k in range(len(mine)):
                    mine[k] = func(theirs[k], mine[k])
            mask <<= 1

    def _doubling_allreduce(self, view: memoryview, datatype: Any, op: Any, tag: int) -> None:
        r = self._rank
        incoming = bytearray(view.nbytes)
        mask = 1
        while mask < self._size:
            partner = r ^ mask
            self._xchg(view, partner, memoryview(incoming), partner, tag, "Allreduce")
            if partner < r:
                apply_buffers(op, memoryview(incoming), view, datatype)  # view = in op view
            else:
                apply_buffers(op, view, memoryview(incoming), datatype)  # incoming = view op in
                view[:] = incoming
            mask <<= 1

    def _ring_allreduce(self, view: memoryview, count: int, itemsize: int, datatype: Any,
                        op: Any, tag: int) -> None:
        n, r = self._size, self._rank
        bounds = [(i * count // n) * itemsize for i in range(n + 1)]
        chunk = [view[bounds[i]:bounds[i + 1]] for i in range(n)]
        right, left = (r + 1) % n, (r - 1) % n
        scratch = bytearray(max(bounds[i + 1] - bounds[i] for i in range(n)))
        for step in range(n - 1):  # reduce-scatter: rank r ends owning chunk (r + 1) % n
            send_index, recv_index = (r - step) % n, (r - step - 1) % n
            incoming = memoryview(scratch)[:len(chunk[recv_index])]
            self._xchg(chunk[send_index], right, incoming, left, tag, "Allreduce")
            apply_buffers(op, incoming, chunk[recv_index], datatype)
        for step in range(n - 1):  # allgather the reduced chunks
            send_index, recv_index = (r - step + 1) % n, (r - step) % n
            self._xchg(chunk[send_index], right, chunk[recv_index], left, tag, "Allreduce")

    def Reduce_scatter_block(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._engine_free_check()
        n = self._size
        if _in_place(sendbuf):
            whole = parse_buffer(recvbuf, readonly=False, blocks=n)
            data, out_spec = bytearray(whole.view), whole
        else:
            out_spec = parse_buffer(recvbuf, readonly=False)
            whole = parse_buffer(sendbuf, readonly=True, blocks=n)
            _check_match(whole, out_spec, "Reduce_scatter_block")
            data = bytearray(whole.view)
        check_op(op, whole.datatype)
        blocks = _even(whole, n)
        block = blocks[0][1]
        tag = self._tag()
        result = self._reduce_buffers(data, whole.datatype, op, 0, tag)
        self._scatter_blocks(memoryview(result) if self._rank == 0 else None, blocks,
                             out_spec.view[:block], 0)
        out_spec.commit()

    def Reduce_scatter(self, sendbuf: Any, recvbuf: Any, recvcounts: Any = None,
                       op: Any = SUM) -> None:
        self._engine_free_check()
        n, r = self._size, self._rank
        out_spec = parse_buffer(recvbuf, readonly=False)
        in_place = _in_place(sendbuf)
        spec = out_spec if in_place else parse_buffer(sendbuf, readonly=True)
        if recvcounts is None:
            if in_place:
                raise C.ValueErrorException(C.ERR_COUNT, "Reduce_scatter with IN_PLACE needs "
                                            "recvcounts")
            recvcounts = self.allgather(out_spec.count)
        counts = [int(c) for c in recvcounts]
        if len(counts) != n:
            raise C.ValueErrorException(C.ERR_COUNT, f"Reduce_scatter: expecting {n} "
                                        f"recvcounts, got {len(counts)}")
        if not in_place:
            if spec.datatype._info is not out_spec.datatype._info:
                raise C.ValueErrorException(C.ERR_TYPE, "Reduce_scatter: mismatch in send "
                                            "and receive MPI datatypes")
            if spec.count != sum(counts):
                raise C.ValueErrorException(C.ERR_COUNT, f"Reduce_scatter: mismatch in send "
                                            f"count {spec.count} and sum(counts) "
                                            f"{sum(counts)}")
            if out_spec.count != counts[r]:
                raise C.ValueErrorException(C.ERR_COUNT, f"Reduce_scatter: mismatch in "
                                            f"receive count {out_spec.count} and counts[{r}] "
                                            f"{counts[r]}")
        elif out_spec.count != sum(counts):
            raise C.ValueErrorException(C.ERR_COUNT, f"Reduce_scatter: mismatch in receive "
                                        f"count {out_spec.count} and sum(counts) "
                                        f"{sum(counts)}")
        check_op(op, spec.datatype)
        blocks = _blocks(counts, None, spec.unit)
        data = bytearray(spec.view)
        tag = self._tag()
        result = self._reduce_buffers(data, spec.datatype, op, 0, tag)
        start, stop = blocks[r]
        self._scatter_blocks(memoryview(result) if r == 0 else None, blocks,
                             out_spec.view[:stop - start], 0)
        out_spec.commit()

    def _scan_buffers(self, sendbuf: Any, recvbuf: Any, op: Any, exclusive: bool) -> None:
        self._engine_free_check()
        spec = parse_buffer(recvbuf, readonly=False)
        out = spec.view
        if _in_place(sendbuf):
            mine = bytes(out)
        else:
            source = parse_buffer(sendbuf, readonly=True)
            _check_match(source, spec, "Scan" if not exclusive else "Exscan")
            mine = bytes(source.view)
        datatype = spec.datatype
        check_op(op, datatype)
        r, n = self._rank, self._size
        tag = self._tag()
        partial = bytearray(mine)
        result = None if exclusive else bytearray(mine)
        incoming = bytearray(len(mine))
        mask = 1
        while mask < n:
            partner = r ^ mask
            if partner < n:
                self._xchg(memoryview(bytes(partial)), partner, memoryview(incoming), partner,
                           tag, "Scan")
                if partner < r:
                    if result is None:
                        result = bytearray(incoming)
                    else:
                        apply_buffers(op, memoryview(incoming), memoryview(result), datatype)
                    apply_buffers(op, memoryview(incoming), memoryview(partial), datatype)
                else:
                    # partial = partial op incoming
                    apply_buffers(op, memoryview(partial), memoryview(incoming), datatype)
                    partial[:] = incoming
            mask <<= 1
        if result is not None:
            out[:len(result)] = result
            spec.commit()

    def Scan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._scan_buffers(sendbuf, recvbuf, op, exclusive=False)

    def Exscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._scan_buffers(sendbuf, recvbuf, op, exclusive=True)

    # -- data movement -------------------------------------------------------------

    def _scatter_blocks(self, whole: memoryview | None, blocks: list[tuple[int, int]],
                        out: memoryview | None, root: int) -> None:
        """Root sends each rank its block of ``whole``; everyone lands theirs in ``out``."""
        tag = self._tag()
        if self._rank == root:
            assert whole is not None
            sends = [self._csend([whole[a:b]], i, tag)
                     for i, (a, b) in enumerate(blocks) if i != root]
            if out is not None:
                a, b = blocks[root]
                out[:b - a] = whole[a:b]
            for send in sends:
                self._cwait(send, "Scatter")
        else:
            assert out is not None
            self._crecv_message(root, tag, "Scatter", out)

    def _gather_blocks(self, mine: memoryview | None, whole: memoryview | None,
                       blocks: list[tuple[int, int]], root: int) -> None:
        tag = self._tag()
        if self._rank == root:
            assert whole is not None
            receives = [self._post(i, tag, self._cctx, whole[a:b])
                        for i, (a, b) in enumerate(blocks) if i != root]
            if mine is not None:
                a, b = blocks[root]
                whole[a:b] = mine[:b - a]
            for receive in receives:
                self._wait_coll(receive, "Gather")
        else:
            assert mine is not None
            self._cwait(self._csend([mine], root, tag), "Gather")

    def _wait_coll(self, receive: Any, what: str) -> None:
        from shoal.spmd import world

        if not receive.done:
            world.engine().wait_until(lambda: receive.done, lambda: what)
        if receive.error is not None:
            raise receive.error

    def Bcast(self, buf: Any, root: int = 0) -> None:
        self._check_root(root)
        if self._size == 1:
            return
        view = _plain(buf, self._rank != root)
        if view is not None:
            self._bcast_bytes(view, root, short=True)
            return
        spec = parse_buffer(buf, readonly=self._rank == root)
        self._bcast_bytes(spec.view, root)
        if self._rank != root:
            spec.commit()

    def Scatter(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        n = self._size
        if self._rank == root:
            spec = parse_buffer(sendbuf, readonly=True, blocks=n)
            out = None if _in_place(recvbuf) else parse_buffer(recvbuf, readonly=False)
            self._scatter_blocks(spec.view, _even(spec, n), out.view if out else None, root)
        else:
            out = parse_buffer(recvbuf, readonly=False)
            self._scatter_blocks(None, [], out.view, root)
        if out is not None:
            out.commit()

    def Scatterv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        if self._rank == root:
            spec, blocks = self._vector(sendbuf, readonly=True)
            out = None if _in_place(recvbuf) else parse_buffer(recvbuf, readonly=False)
            self._scatter_blocks(spec.view, blocks, out.view if out else None, root)
        else:
            out = parse_buffer(recvbuf, readonly=False)
            self._scatter_blocks(None, [], out.view, root)
        if out is not None:
            out.commit()

    def Gather(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        n = self._size
        if self._rank == root:
            spec = parse_buffer(recvbuf, readonly=False, blocks=n)
            mine = None if _in_place(sendbuf) else parse_buffer(sendbuf, readonly=True).view
            self._gather_blocks(mine, spec.view, _even(spec, n), root)
            spec.commit()
        else:
            self._gather_blocks(parse_buffer(sendbuf, readonly=True).view, None, [], root)

    def Gatherv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        if self._rank == root:
            spec, blocks = self._vector(recvbuf, readonly=False)
            mine = None if _in_place(sendbuf) else parse_buffer(sendbuf, readonly=True).view
            self._gather_blocks(mine, spec.view, blocks, root)
            spec.commit()
        else:
            self._gather_blocks(parse_buffer(sendbuf, readonly=True).view, None, [], root)

    def _ring_allgather(self, whole: memoryview, blocks: list[tuple[int, int]]) -> None:
        n, r = self._size, self._rank
        tag = self._tag()
        right, left = (r + 1) % n, (r - 1) % n
        for step in range(n - 1):
            a, b = blocks[(r - step) % n]
            c, d = blocks[(r - step - 1) % n]
            self._xchg(whole[a:b], right, whole[c:d], left, tag, "Allgather")

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        spec = parse_buffer(recvbuf, readonly=False, blocks=self._size)
        blocks = _even(spec, self._size)
        if not _in_place(sendbuf):
            a, b = blocks[self._rank]
            mine = parse_buffer(sendbuf, readonly=True).view
            spec.view[a:b] = mine[:b - a]
        self._ring_allgather(spec.view, blocks)
        spec.commit()

    def Allgatherv(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        spec, blocks = self._vector(recvbuf, readonly=False)
        if not _in_place(sendbuf):
            a, b = blocks[self._rank]
            spec.view[a:b] = parse_buffer(sendbuf, readonly=True).view[:b - a]
        self._ring_allgather(spec.view, blocks)
        spec.commit()

    def _pairwise(self, send: memoryview, send_blocks: list[tuple[int, int]],
                  recv: memoryview, recv_blocks: list[tuple[int, int]]) -> None:
        n, r = self._size, self._rank
        tag = self._tag()
        a, b = send_blocks[r]
        c, d = recv_blocks[r]
        recv[c:d] = send[a:b]
        for step in range(1, n):
            dest, source = (r + step) % n, (r - step) % n
            a, b = send_blocks[dest]
            c, d = recv_blocks[source]
            self._xchg(send[a:b], dest, recv[c:d], source, tag, "Alltoall")

    def Alltoall(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        n = self._size
        spec = parse_buffer(recvbuf, readonly=False, blocks=n)
        blocks = _even(spec, n)
        if _in_place(sendbuf):
            send, send_blocks = memoryview(bytes(spec.view)), blocks
        else:
            sspec = parse_buffer(sendbuf, readonly=True, blocks=n)
            send, send_blocks = sspec.view, _even(sspec, n)
        self._pairwise(send, send_blocks, spec.view, blocks)
        spec.commit()

    def Alltoallv(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        recv, recv_blocks = self._vector(recvbuf, readonly=False)
        if _in_place(sendbuf):
            send_view, send_blocks = memoryview(bytes(recv.view)), recv_blocks
        else:
            send, send_blocks = self._vector(sendbuf, readonly=True)
            send_view = send.view
        self._pairwise(send_view, send_blocks, recv.view, recv_blocks)
        recv.commit()

    def Alltoallw(self, sendbuf: Any, recvbuf: Any) -> None:
        """Every process sends block ``i`` (its own count, byte displacement and datatype)
        to process ``i``."""
        self._engine_free_check()
        n, r = self._size, self._rank
        recvs = parse_wspec(recvbuf, readonly=False, blocks=n)
        if _in_place(sendbuf):
            sends = [memoryview(bytes(spec.view)) for spec in recvs]
        else:
            sends = [spec.view for spec in parse_wspec(sendbuf, readonly=True, blocks=n)]
        tag = self._tag()
        recvs[r].view[:sends[r].nbytes] = sends[r]
        for step in range(1, n):
            dest, source = (r + step) % n, (r - step) % n
            self._xchg(sends[dest], dest, recvs[source].view, source, tag, "Alltoallw")
        for spec in recvs:
            spec.commit()

    def _bcast_bytes(self, view: memoryview, root: int, short: bool = False) -> None:
        """Binomial-tree broadcast of the bytes of ``view`` from ``root``; ``short`` (a
        small plain buffer) tries each message through the transport's one-call fast path
        first (the same frames and tag, so ranks on either path meet)."""
        engine = world._engine or world.engine()
        n, r = self._size, self._rank
        ctx, ranks = self._cctx, self._ranks
        tag = self._tag()
        relative = (r - root) % n
        if relative:
            mask = relative & -relative
            parent = (relative - mask + root) % n
            if not short or engine.receive_fast(ranks[parent], ctx, tag, view,
                                                engine.fast_spin_ns) is None:
                self._crecv_message(parent, tag, "Bcast", view)
        else:
            mask = 1
            while mask < n:
                mask <<= 1
        mask >>= 1
        sends = []
        while mask > 0:
            if relative + mask < n:
                child = (relative + mask + root) % n
                if not short or not engine.send_fast(ranks[child], ctx, tag, view, 0):
                    sends.append(self._csend([view], child, tag))
            mask >>= 1
        for out in sends:
            self._cwait(out, "Bcast")


__all__ = ["BufferCollectives"]
