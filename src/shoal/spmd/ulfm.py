"""MPI-4's fault-tolerance calls (ULFM) as they behave when no process has failed.

In a shoal job a process that dies ends the whole job (``shoal run`` stops every rank),
so a live communicator never holds a failed process: ``Get_failed`` is the empty group,
``Ack_failed`` acknowledges none, ``Agree`` is the bitwise AND of every process's flag,
and ``Shrink`` gives a communicator of the same processes.  ``Revoke`` is not supported
(``NotImplementedError``, which mpi4py's own tests accept), so ``Is_revoked`` is False.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import world
from shoal.spmd.datatypes import INT
from shoal.spmd.group import GROUP_EMPTY, Group
from shoal.spmd.nbc import NonblockingCollectives
from shoal.spmd.ops import BAND
from shoal.spmd.request import Request, _always

_AGREE_SALT = 0x4147  # "AG"


class FaultTolerance(NonblockingCollectives):
    """``Revoke``, ``Is_revoked``, ``Get_failed``, ``Ack_failed``, ``Agree``, ``Iagree``,
    ``Shrink`` and ``Ishrink``."""

    def Revoke(self) -> None:
        raise NotImplementedError("MPI.Comm.Revoke is not supported by shoal (a failed "
                                  "process ends the whole job)")

    def Is_revoked(self) -> bool:
        self._engine_free_check()
        return False

    def Get_failed(self) -> Group:
        self._engine_free_check()
        return Group._wrap(GROUP_EMPTY._info)

    def Ack_failed(self, num_to_ack: int | None = None) -> int:
        self._engine_free_check()
        return 0

    def _agreement(self) -> Any:
        """The shadow communicator agreements run on: its own context (the same on every
        member, computed without talking) and its own sequence, so an agreement never
        meets this communicator's collectives, whatever order they are called in."""
        self._engine_free_check()
        record = self._info
        shadow = record.agree
        if shadow is None:
            from shoal.spmd.comm import Intracomm

            ctx = world.derive_context(self._ctx, -1, _AGREE_SALT)
            shadow = record.agree = self._derived(self._ranks, ctx, "", cls=Intracomm)
        return shadow

    def Agree(self, flag: int) -> int:
        return int(self._agreement().allreduce(int(flag), op=BAND))

    def Iagree(self, flag: Any) -> Request:
        view = memoryview(flag)  # not a buffer: TypeError, as in mpi4py
        if view.format != "i" or view.nbytes != view.itemsize or view.readonly:
            raise ValueError("flag: expecting a writable int buffer of length one")
        return self._agreement().Iallreduce(C.IN_PLACE, [view, INT], BAND)

    def Shrink(self) -> Any:
        self._engine_free_check()
        from shoal.spmd.comm import Intracomm

        comm = self._derived(self._ranks, self._next_context(), "", cls=Intracomm)
        comm._info.errhandler = self._info.errhandler
        return comm

    def Ishrink(self) -> tuple[Any, Request]:
        return self.Shrink(), Request._make(_always, None)
