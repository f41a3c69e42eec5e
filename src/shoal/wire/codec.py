"""Encoding Python values once, without copying their buffers.

Objects are pickled with protocol 5: the buffers of numpy arrays and other
objects that support out-of-band pickling are not copied into the pickle but
travel as separate parts (views on the caller's memory), and are rebuilt on
the other side as views on the received body.  The pickler is swappable, as in
mpi4py (``MPI.pickle.__init__(dumps, loads)``), for cloudpickle or dill.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

from shoal.errors import SerializationError


class Pickle:
    """The object codec used by the ``send``/``recv`` family (mpi4py's ``MPI.pickle``)."""

    def __init__(self, dumps: Callable[..., bytes] = pickle.dumps,
                 loads: Callable[..., Any] = pickle.loads,
                 protocol: int | None = pickle.HIGHEST_PROTOCOL) -> None:
        self.dumps_function = dumps
        self.loads_function = loads
        self.PROTOCOL = protocol
        self.THRESHOLD = 0  # every buffer large or small goes out of band

    def dumps(self, obj: Any) -> list[Any]:
        """``[pickle, *buffers]``: the parts of one message, buffers still the caller's."""
        buffers: list[pickle.PickleBuffer] = []
        protocol = self.PROTOCOL if self.PROTOCOL is not None else pickle.HIGHEST_PROTOCOL
        try:
            if protocol >= 5:
                head = self.dumps_function(obj, protocol, buffer_callback=buffers.append)
            else:
                head = self.dumps_function(obj, protocol)
        except Exception as exc:  # pickling raises many types
            kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
            raise SerializationError(
                f"a {kind} value cannot be pickled ({exc}); send only picklable values, "
                "or set MPI.pickle to cloudpickle for lambdas and closures") from None
        if not buffers:
            return [head]
        parts: list[Any] = [head]
        for buffer in buffers:
            try:
                parts.append(buffer.raw())
            except BufferError:  # not contiguous: pickle it in band after all
                return [self.dumps_function(obj, protocol)]
        return parts

    def loads(self, parts: Sequence[Any]) -> Any:
        try:
            if len(parts) == 1:
                return self.loads_function(parts[0])
            return self.loads_function(parts[0], buffers=parts[1:])
        except Exception as exc:
            raise SerializationError(
                f"a received message cannot be unpickled ({type(exc).__name__}: {exc}); "
                "is the class it holds importable on this rank?") from None


PICKLE = Pickle()
