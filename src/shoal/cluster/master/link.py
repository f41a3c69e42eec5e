"""One worker's link as the master holds it, and the checks of what workers send.

Everything a worker sends is validated here before it reaches the database:
strings are cut to what a column holds, numbers must be integers or finite
floats, and anything else is a :class:`~shoal.cluster.errors.LinkError`, which
drops that worker's connection (never the master).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from shoal.cluster import protocol
from shoal.cluster.db.health import Sample
from shoal.cluster.db.models import HEALTH_FIELDS
from shoal.cluster.errors import LinkError
from shoal.security import SecureStream, SecurityError

NAME_LIMIT = 255


@dataclass(eq=False)
class Link:
    """One logged-in worker."""

    stream: SecureStream
    worker_id: str
    name: str
    address: str = "?"       # the worker's IP address and port, as the master sees them
    port: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    last_ping: float = field(default_factory=time.monotonic)
    closed: bool = False

    async def send(self, message: protocol.Message) -> bool:
        if self.closed:
            return False
        try:
            await self.stream.send(protocol.encode(message))
            return True
        except (SecurityError, OSError):
            self.closed = True
            return False


def text_field(message: protocol.Message, key: str, default: str = "") -> str:
    value = message.get(key, default)
    if not isinstance(value, str):
        raise LinkError(f"{key} must be a string")
    return value[:NAME_LIMIT]


def int_field(message: protocol.Message, key: str) -> int | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise LinkError(f"{key} must be an integer")
    return value


def health_sample(raw: object, now: Any) -> Sample:
    if not isinstance(raw, dict):
        raise LinkError("a heartbeat needs a health object")
    sample: Sample = {"sampled_at": now}
    for name in HEALTH_FIELDS:
        value = raw.get(name)
        if value is None and name == "temperature_c":
            sample[name] = None
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value):
            raise LinkError(f"health.{name} must be a finite number")
        sample[name] = float(value)
    return sample
