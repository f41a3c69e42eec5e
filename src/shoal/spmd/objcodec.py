"""``MPI.pickle``: how the lower-case methods (``send``, ``bcast`` ...) encode objects.

mpi4py's :class:`Pickle` is swappable: ``MPI.pickle.__init__(dumps, loads,
protocol, threshold)`` puts in ``dill``, ``cloudpickle``, ``marshal`` or even
``json`` (a ``dumps`` that takes no protocol: with ``protocol=None`` it is
called with the object alone).  ``dumps``/``loads`` are mpi4py's (bytes in,
bytes out); ``dumps_oob``/``loads_oob`` split out the buffers of at least
``THRESHOLD`` bytes (what :mod:`mpi4py.util.pkl5` sends separately).

shoal's own message encoding (:meth:`Pickle.encode`/:meth:`Pickle.decode`) is
zero-copy with the standard pickle: protocol 5 with every buffer out of band,
travelling as separate parts of one message (views on the caller's memory).
With any other ``dumps`` a message is the one ``bytes`` it returns.
"""

from __future__ import annotations

import os
import pickle as _stdlib
from collections.abc import Callable, Iterable
from typing import Any

from shoal.errors import SerializationError

_PROTOCOL = int(os.environ.get("MPI4PY_PICKLE_PROTOCOL", _stdlib.HIGHEST_PROTOCOL))
_THRESHOLD = int(os.environ.get("MPI4PY_PICKLE_THRESHOLD", 1024**2 // 4))


class Pickle:
    """Pickle/unpickle Python objects (mpi4py's ``MPI.Pickle``)."""

    __module__ = "shoal.MPI"

    def __init__(self, dumps: Callable[..., bytes] | None = None,
                 loads: Callable[..., Any] | None = None,
                 protocol: int | None = None, threshold: int | None = None) -> None:
        if dumps is None:
            dumps = _stdlib.dumps
        if loads is None:
            loads = _stdlib.loads
        self._dumps = dumps
        self._loads = loads
        self._protocol: int | None = None
        self.standard = True  # the standard pickle (set with PROTOCOL below)
        self.PROTOCOL = protocol
        self.THRESHOLD = threshold

    @property
    def PROTOCOL(self) -> int | None:
        return self._protocol

    @PROTOCOL.setter
    def PROTOCOL(self, protocol: int | None) -> None:
        if protocol is None and self._dumps is _stdlib.dumps:
            protocol = _PROTOCOL
        self._protocol = protocol
        # The zero-copy path needs the standard pickle at protocol 5 (or the highest).
        p = _stdlib.HIGHEST_PROTOCOL if protocol is not None and protocol < 0 else protocol
        self.standard = self._dumps is _stdlib.dumps and self._loads is _stdlib.loads
        self._oob = self.standard and p is not None and p >= 5

    @property
    def THRESHOLD(self) -> int:
        return self._threshold

    @THRESHOLD.setter
    def THRESHOLD(self, threshold: int | None) -> None:
        self._threshold = _THRESHOLD if threshold is None else int(threshold)

    # -- mpi4py's API -------------------------------------------------------------

    def dumps(self, obj: Any) -> bytes:
        """Serialize an object to one pickle stream."""
        if self._protocol is not None:
            return self._dumps(obj, self._protocol)
        return self._dumps(obj)

    def loads(self, data: Any) -> Any:
        """Deserialize an object from one pickle stream."""
        return self._loads(data)

    def dumps_oob(self, obj: Any) -> tuple[bytes, list[Any]]:
        """The pickle stream and the out-of-band buffers of at least ``THRESHOLD`` bytes."""
        from shoal.spmd.memory import _buffer_class

        buffer = _buffer_class()

        protocol = max(self._protocol if self._protocol is not None else _PROTOCOL, 5)
        buffers: list[Any] = []
        threshold = self._threshold

        def callback(ob: _stdlib.PickleBuffer) -> bool:
            view = ob.raw()
            if view.nbytes >= threshold:
                buffers.append(buffer(view))
                return False
            return True

        data = self._dumps(obj, protocol, buffer_callback=callback)
        return data, buffers

    def loads_oob(self, data: Any, buffers: Iterable[Any]) -> Any:
        """Deserialize from a pickle stream and its out-of-band buffers."""
        return self._loads(data, buffers=buffers)

    # -- shoal's message encoding ---------------------------------------------------

    def encode(self, obj: Any) -> list[Any]:
        """``[stream, *buffers]``: the parts of one message, buffers still the caller's."""
        try:
            if not self._oob:
                return [self.dumps(obj)]
            buffers: list[_stdlib.PickleBuffer] = []
            head = _stdlib.dumps(obj, self._protocol, buffer_callback=buffers.append)
        except Exception as exc:  # pickling raises many types
            raise self.unpicklable(obj, exc) from None
        if not buffers:
            return [head]
        return self.with_buffers(obj, head, buffers)

    @staticmethod
    def unpicklable(obj: Any, exc: BaseException) -> SerializationError:
        """The error for a value that ``dumps`` refused (``exc``)."""
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        return SerializationError(
            f"a {kind} value cannot be pickled ({exc}); send only picklable values, "
            "or set MPI.pickle to cloudpickle for lambdas and closures")

    def with_buffers(self, obj: Any, head: bytes, buffers: list[_stdlib.PickleBuffer]
                     ) -> list[Any]:
        """The parts of a message whose pickle ``head`` put ``buffers`` out of band."""
        parts: list[Any] = [head]
        for item in buffers:
            try:
                parts.append(item.raw())
            except (BufferError, TypeError):
                # Not contiguous, or an exporter whose buffer a PickleBuffer cannot hand out
                # raw (a Python-level __buffer__, 3.12+): pickle it in band after all.
                return [_stdlib.dumps(obj, self._protocol)]
        return parts

    def decode(self, parts: Any) -> Any:
        try:
            if len(parts) == 1:
                return self._loads(parts[0])
            return self._loads(parts[0], buffers=parts[1:])
        except Exception as exc:
            raise SerializationError(
                f"a received message cannot be unpickled ({type(exc).__name__}: {exc}); "
                "is the class it holds importable on this rank?") from None


#: ``MPI.pickle``: the codec of every object message.
PICKLE = Pickle()


def read_environment() -> None:
    """Read ``MPI4PY_PICKLE_PROTOCOL`` and ``MPI4PY_PICKLE_THRESHOLD`` again and reset
    :data:`PICKLE` to them, as mpi4py does when ``mpi4py.MPI`` is imported (a rank forked
    from shoal's fork server imported this module before its program set them)."""
    global _PROTOCOL, _THRESHOLD
    _PROTOCOL = int(os.environ.get("MPI4PY_PICKLE_PROTOCOL", _stdlib.HIGHEST_PROTOCOL))
    _THRESHOLD = int(os.environ.get("MPI4PY_PICKLE_THRESHOLD", 1024**2 // 4))
    PICKLE.__init__()  # type: ignore[misc]
