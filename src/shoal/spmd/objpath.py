"""A communicator's one-step object send and receive of a plain value.

``comm.send(obj, dest, tag)`` of a small plain value (bytes, str, int, float,
bool, None) is most of what many mpi4py programs do, and its cost is mostly the
Python around two calls: pickle the value, hand the bytes to the engine's
one-step send (``engine.send_fast``).  An :class:`ObjectPath` is that work for
one communicator, asked first by ``send`` and ``recv``
(:mod:`shoal.spmd.p2p`); whatever it declines (another kind of value, a rank
or tag out of range, a custom pickle, a message that must wait) it leaves
untouched, and the general path does it and says what is wrong, if anything.

It adds no semantics: the value is pickled as ``PICKLE`` says (only when it is
the standard pickle) and goes through the engine's own one-step paths
(``send_fast`` / ``receive_fast``, which keep MPI's order against what the
engine holds), looked up through the world module on each call, so that a
finalized engine is never used.

It is compiled only (``shoal.spmd._p2pcore``): where it is not built, or with
``SHOAL_PURE_PYTHON=1``, a communicator has none, and the general path's own
first steps, written out flat in Python, do the same (a Python twin asked first
would only add a call to every send).  The MPI programs' tests run both.

``recv(source, tag)`` answers the value; :data:`NOT_TAKEN` when nothing was
taken; or ``Taken`` (its ``message``) when a message was taken that Python
decodes: one with out-of-band parts, or a pickle that fails (the general
decoder says why).
"""

from __future__ import annotations

import os
from typing import Any


def _compiled() -> tuple[Any, Any, Any] | None:
    if os.environ.get("SHOAL_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from shoal.spmd._p2pcore import NOT_TAKEN, ObjectPath, Taken
    except ImportError:
        return None
    return ObjectPath, Taken, NOT_TAKEN


class _NoTaken:  # what Taken is where nothing is compiled: nothing is ever one
    __slots__ = ()


#: The compiled path (None where it is not built or SHOAL_PURE_PYTHON=1: then
#: ``comm.send``/``comm.recv`` do the same steps in Python), its Taken and NOT_TAKEN.
_chosen = _compiled() or (None, _NoTaken, object())
ObjectPath: Any = _chosen[0]
Taken: Any = _chosen[1]
NOT_TAKEN: Any = _chosen[2]
