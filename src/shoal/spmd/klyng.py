"""klyng's API in Python: ``shoal.init(main)``, ``rank()``, ``size()``, ``send``, ``recv``, ``end``.

Two spellings of each call, freely mixed (docs/coming-from-klyng.md)::

    shoal.send(data, to=1, tag="s")               shoal.send({"to": 1, "data": data,
                                                              "subject": "s"})
    shoal.recv(source=0, tag="s")                 shoal.recv({"from": 0, "subject": "s"})

klyng names a message's tag a *subject*: here any hashable value that pickles
(an int, a string, a float, a tuple, ...; ``subject=`` is a synonym of
``tag=``).  Equal subjects match, as ``===`` does in klyng (``1`` and ``1.0``
are one subject; ``True`` and ``1`` are two, as in JavaScript).  An int
subject is the MPI tag itself; any other is hashed into tags above MPI's range
on a communicator of its own, so it never collides with integer tags or with
MPI traffic of the same program.

In ``recv``, ``-1`` is any source, as in klyng (MPI's ``PROC_NULL`` has no
meaning in this API; the MPI API keeps MPI's rules), and so is
:data:`ANY_SOURCE`; an omitted ``from`` or ``subject``, :data:`ANY_TAG` and
klyng's ``"-1"`` subject in a criteria dict mean any.

Under a real ``mpiexec`` the same calls run on mpi4py.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Mapping
from typing import Any

ANY_SOURCE = -2
ANY_TAG = -1
KLYNG_ANY_SOURCE = -1     # klyng's "from": -1
KLYNG_ANY_SUBJECT = "-1"  # klyng's "subject": "-1" in a criteria object
_STRING_TAGS = 1 << 40
_UNSET: Any = object()

_comm: Any = None


def _world() -> Any:
    """The communicator the klyng API talks on (a private copy of COMM_WORLD)."""
    global _comm
    if _comm is None:
        from shoal.spmd.backend import use_real_mpi

        if use_real_mpi():
            from mpi4py import MPI

            _comm = MPI.COMM_WORLD.Dup()
        else:
            from shoal.spmd import world
            from shoal.spmd.comm import Intracomm

            class KlyngComm(Intracomm):
                _tag_bound = 2**63 - 1  # string subjects hash above MPI's tags

            # Every rank derives the same private context with no message.
            _comm = KlyngComm._make(tuple(range(world.world_size())),
                                    world.derive_context(0, 0, salt=0x6B6C), "klyng")
    return _comm


def _canonical(subject: Any) -> bytes:
    """Bytes that are equal exactly when subjects are equal (across processes)."""
    if subject is None or isinstance(subject, bool):
        return f"k:{subject!r}".encode()
    if isinstance(subject, int):
        return f"i:{subject}".encode()
    if isinstance(subject, float):
        if subject.is_integer():
            return f"i:{int(subject)}".encode()  # 1.0 == 1, as one JavaScript number
        return f"f:{subject!r}".encode()
    if isinstance(subject, str):
        return b"s:" + subject.encode("utf-8", "surrogatepass")
    if isinstance(subject, bytes):
        return b"b:" + subject
    if isinstance(subject, tuple):
        parts = [_canonical(item) for item in subject]
        return b"t:" + b"".join(len(p).to_bytes(8, "little") + p for p in parts)
    if isinstance(subject, frozenset):
        parts = sorted(_canonical(item) for item in subject)  # independent of hash order
        return b"z:" + b"".join(len(p).to_bytes(8, "little") + p for p in parts)
    try:
        hash(subject)
    except TypeError:
        raise TypeError(f"a subject must be hashable, so that equal subjects match; a "
                        f"{type(subject).__name__} is not (use a tuple for a list)") from None
    try:
        return b"p:" + pickle.dumps(subject, protocol=4)
    except Exception as exc:
        raise TypeError(f"a subject must pickle; {type(subject).__name__} does not: {exc}"
                        ) from None


def _tag(tag: Any) -> int:
    """The MPI tag of a subject: an int as itself, anything else hashed above MPI's tags."""
    if isinstance(tag, int) and not isinstance(tag, bool):
        return tag
    if isinstance(tag, float) and tag.is_integer():
        return int(tag)
    data = _canonical(tag)
    if _real():
        # mpi4py checks tags against MPI's bound: fold into the upper half.
        digest = hashlib.blake2b(data, digest_size=4).digest()
        return (1 << 28) | (int.from_bytes(digest, "little") & ((1 << 28) - 1))
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return _STRING_TAGS | (int.from_bytes(digest, "little") & ((1 << 62) - 1))


def _real() -> bool:
    from shoal.spmd.backend import use_real_mpi

    return use_real_mpi()


def rank() -> int:
    """This process's rank, 0..size()-1."""
    return int(_world().Get_rank())


def size() -> int:
    """How many ranks the job has."""
    return int(_world().Get_size())


_pending: list[Any] = []


def _subject(tag: Any, subject: Any, default: Any) -> Any:
    if tag is not _UNSET and subject is not _UNSET:
        raise TypeError("give tag= or subject= (the same thing), not both")
    if subject is not _UNSET:
        return subject
    return default if tag is _UNSET else tag


def send(data: Any, to: int | None = None, tag: Any = _UNSET, *, subject: Any = _UNSET
         ) -> None:
    """Send ``data`` (any picklable value) to rank ``to`` under ``tag``; returns at once.

    Or klyng's form: ``send({"to": 1, "data": value, "subject": s})`` (``subject``
    optional).  As in klyng, sending never waits for the receiver (so a rank may
    send to itself, or two ranks may send each other large values before
    receiving); :func:`end` waits until everything sent was delivered.
    """
    if to is None and tag is _UNSET and subject is _UNSET and isinstance(data, Mapping):
        message = data
        if "to" not in message or "data" not in message:
            raise TypeError("a klyng message needs 'to' and 'data' (and may have 'subject'), "
                            f"not {sorted(map(str, message))}")
        unknown = set(message) - {"to", "data", "subject"}
        if unknown:
            raise TypeError(f"a klyng message has 'to', 'data' and 'subject', not "
                            f"{sorted(map(str, unknown))}")
        data, to, chosen = message["data"], message["to"], message.get("subject", 0)
    else:
        chosen = _subject(tag, subject, 0)
    if to is None:
        raise TypeError("send() needs the destination: send(data, to=RANK) or "
                        "send({'to': RANK, 'data': ...})")
    if isinstance(to, bool) or not isinstance(to, int):
        raise TypeError(f"'to' is a rank (an int), not {type(to).__name__}")
    _pending.append(_world().isend(data, to, _tag(chosen)))
    if len(_pending) > 64:
        _pending[:] = [request for request in _pending if not request.Test()]


def recv(source: Any = ANY_SOURCE, tag: Any = _UNSET, *, subject: Any = _UNSET) -> Any:
    """Receive the next message from ``source`` (any) with ``tag`` (any); return its data.

    Or klyng's form: ``recv({"from": 0, "subject": s})``, either key optional.
    ``-1`` is any source.
    """
    if isinstance(source, Mapping):
        if tag is not _UNSET or subject is not _UNSET:
            raise TypeError("give the subject inside the criteria dict, not beside it")
        criteria = source
        unknown = set(criteria) - {"from", "subject"}
        if unknown:
            raise TypeError(f"klyng's recv criteria are 'from' and 'subject', not "
                            f"{sorted(map(str, unknown))}")
        source = criteria.get("from", ANY_SOURCE)
        chosen = criteria.get("subject", ANY_TAG)
        if isinstance(chosen, str) and chosen == KLYNG_ANY_SUBJECT:
            chosen = ANY_TAG
    else:
        chosen = _subject(tag, subject, ANY_TAG)
    if isinstance(source, bool) or not isinstance(source, int):
        raise TypeError(f"'from' (source) is a rank (an int), not {type(source).__name__}")
    if source == KLYNG_ANY_SOURCE:
        source = ANY_SOURCE
    is_any = isinstance(chosen, int) and not isinstance(chosen, bool) and chosen == ANY_TAG
    return _world().recv(None, source, ANY_TAG if is_any else _tag(chosen))


def end() -> None:
    """Finish this rank's part: wait until queued sends are delivered."""
    from shoal.spmd.backend import use_real_mpi

    if _pending:
        type(_pending[0]).Waitall(_pending)
        _pending.clear()
    if not use_real_mpi():
        from shoal.spmd import world

        world.finalize()


def init(main: Callable[[], Any]) -> Any:
    """Run ``main`` as this rank's program, then :func:`end` (klyng's ``init``).

    If ``main`` raises, the exception goes straight up (to the launcher, which
    stops the job at once) without waiting for this rank's sends to be delivered:
    their receivers may never come for them.
    """
    result = main()
    end()
    return result
