"""How task functions, arguments and results become bytes.

A codec turns a value into bytes and back.  The default, ``cloudpickle``,
pickles with the standard (C) pickler first, which is several times faster,
and falls back to cloudpickle for what it cannot do: lambdas, closures,
classes and functions of ``__main__`` (which workers cannot import, so they
travel by value).  Codecs are registered in :data:`CODECS`; plugins add theirs
under the ``shoal.codecs`` entry-point group.  The executor names its codec
with each function it sends, so a worker decodes with the same one.
"""

from __future__ import annotations

import io
import pickle
import types
from abc import ABC, abstractmethod
from typing import IO, Any, ClassVar

from shoal.errors import SerializationError
from shoal.tasks import sources


class Codec(ABC):
    name: ClassVar[str] = ""

    @abstractmethod
    def dumps(self, value: Any) -> bytes: ...

    @abstractmethod
    def loads(self, data: bytes) -> Any: ...

    def dumps_function(self, fn: Any) -> tuple[bytes, bool]:
        """``fn`` encoded, and whether it went by value (its code and the globals it reads:
        a copy of them now) rather than by reference (a name the worker imports)."""
        return self.dumps(fn), True


class CloudpickleCodec(Codec):
    """pickle when it can (fast), cloudpickle when it must (by value)."""

    name = "cloudpickle"

    def __init__(self) -> None:
        # Module names whose values must travel by value: a reference to them in a plain
        # pickle would not resolve on a worker.
        self.by_value: list[bytes] = [b"__main__"]

    def register_by_value(self, module_name: str) -> None:
        """Send what ``module_name`` defines by value (see ``Executor(modules=...)``)."""
        import cloudpickle

        cloudpickle.register_pickle_by_value(__import__(module_name, fromlist=["_"]))
        self.by_value.append(module_name.encode())

    def dumps(self, value: Any) -> bytes:
        return self.dumps_function(value)[0]

    def dumps_function(self, fn: Any) -> tuple[bytes, bool]:
        try:
            data = pickle.dumps(fn, protocol=5)
        except Exception:  # lambdas, closures, local classes: pickling raises many types
            return self.dumps_by_value(fn), True
        for name in self.by_value:
            if name in data:
                return self.dumps_by_value(fn), True
        return data, False

    def dumps_by_value(self, value: Any) -> bytes:
        try:
            with io.BytesIO() as out:
                _recording_pickler(out).dump(value)
                return out.getvalue()
        except Exception as exc:
            kind = f"{type(value).__module__}.{type(value).__qualname__}"
            raise SerializationError(f"a {kind} value cannot be pickled, even by cloudpickle "
                                     f"({type(exc).__name__}: {exc})") from None

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # cloudpickle's output is plain pickle to load


_RECORDING: Any = None


def _recording_pickler(out: IO[bytes]) -> Any:
    """A cloudpickle pickler that tells :mod:`.sources` where each code object it sends is from."""
    global _RECORDING
    if _RECORDING is None:
        import collections

        import cloudpickle

        table = cloudpickle.Pickler.dispatch_table
        reduce_code = table.get(types.CodeType)

        def record(code: types.CodeType) -> Any:
            sources.remember(code)
            return reduce_code(code)

        # A class attribute: the C pickler reads its dispatch table when it is made.
        _RECORDING = type("RecordingPickler", (cloudpickle.Pickler,), {
            "dispatch_table": collections.ChainMap({types.CodeType: record}, table)
            if reduce_code is not None else table})
    return _RECORDING(out, protocol=5)


class PickleCodec(Codec):
    """The standard pickle only: functions must be importable on the workers."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=5)
        except Exception as exc:
            raise SerializationError(f"cannot pickle {type(value).__qualname__}: {exc}; "
                                     "use the cloudpickle codec for lambdas and closures") from None

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)

    def dumps_function(self, fn: Any) -> tuple[bytes, bool]:
        return self.dumps(fn), False


CODECS: dict[str, type[Codec]] = {c.name: c for c in (CloudpickleCodec, PickleCodec)}
_INSTANCES: dict[str, Codec] = {}


def codec(name: str) -> Codec:
    """The codec registered under ``name`` (built in, or from ``shoal.codecs``)."""
    found = _INSTANCES.get(name)
    if found is not None:
        return found
    if name not in CODECS:
        from shoal.tasks.plugins import load_entry_point

        cls = load_entry_point("shoal.codecs", name)
        if not (isinstance(cls, type) and issubclass(cls, Codec)):
            known = ", ".join(sorted(CODECS))
            raise LookupError(f"no codec named {name!r}; known: {known} (plugins register "
                              "Codec classes under the shoal.codecs entry point)")
        CODECS[name] = cls
    _INSTANCES[name] = found = CODECS[name]()
    return found
