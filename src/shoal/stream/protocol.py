"""The volunteer protocol's messages (docs/contracts/stream-volunteer.md) and their checks.

Every message is a JSON object with a ``"type"``.  Over WebSocket one message is one text
frame; over the pipe to a local process (:mod:`shoal.stream.local`) it is a 4-byte
big-endian length and the pickled message (both ends are our own processes).  The root
role (``shoal stream --server``) has its own messages at ``/root``, listed at the end.
"""

from __future__ import annotations

import json
import pickle
import platform
import struct
from typing import Any

from shoal.stream.errors import ProtocolError

KINDS = ("process", "machine", "browser", "relay")
LENGTH = struct.Struct(">I")
# The limits, the same on every transport (WebSocket, pipe, the root's link) and in --local:
# an item's value and a result, as this protocol's JSON, are at most MAX_VALUE bytes (an
# input line at most as many: shoal.stream.sources.MAX_LINE); one message at most
# MAX_MESSAGE.  Senders split a message with several values into messages that fit, so any
# value within MAX_VALUE travels; a result over it fails its item, once, saying so.
MAX_VALUE = 16 << 20
MAX_MESSAGE = 64 << 20
# A figure a volunteer reports (seconds, items, units) is finite and at most this: sums of
# them stay finite, so the monitor's JSON never meets an infinity or a NaN.
MAX_FIGURE = 1e12


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# NaN and Infinity are what Python's json reads by default, and no browser's JSON: refused,
# so that no such number reaches the monitor or the output.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def encode(message: dict[str, Any]) -> str:
    # allow_nan=False: a NaN would be valid Python JSON but not JSON for a browser.
    # ensure_ascii (the default): the text is ASCII, so its length is its size in bytes.
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def value_size(value: Any) -> int:
    """Bytes of ``value`` as this protocol's JSON (ValueError/TypeError if it is none)."""
    return len(json.dumps(value, separators=(",", ":"), allow_nan=False))


def too_large(what: str, size: int) -> str:
    """The error of an item whose value or result is over MAX_VALUE."""
    return (f"{what} is {size:,} bytes as JSON, over the limit of {MAX_VALUE >> 20} MiB "
            "for one item's value or result (shoal.stream.protocol.MAX_VALUE)")


def split(message: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Two messages saying what ``message`` says, each with half of its values; None when
    it has fewer than two (senders use this to keep every message within MAX_MESSAGE)."""
    kind = message["type"]
    if kind in ("items", "results", "values") and "values" in message:
        key = "values"
    elif kind == "items":
        key = "items"
    elif kind == "outcomes":
        key = "outcomes"
    else:
        return None
    values = message[key]
    if len(values) < 2:
        return None
    half = len(values) // 2
    first, second = {**message, key: values[:half]}, {**message, key: values[half:]}
    if "start" in message:
        second["start"] = message["start"] + half
    if kind == "results":
        first["cpu_time"] = 0.0    # told once, with the last part
    if kind == "values":
        first["end"] = False
    return [first, second]


def encode_fitting(message: dict[str, Any]) -> list[str]:
    """``message`` as JSON texts of at most MAX_MESSAGE bytes each (one, but for a message
    with several large values).  ProtocolError for a single value over the limit."""
    text = encode(message)
    if len(text) <= MAX_MESSAGE:
        return [text]
    parts = split(message)
    if parts is None:
        raise ProtocolError(f"a {message['type']!r} message of {len(text):,} bytes is over "
                            f"the limit of {MAX_MESSAGE >> 20} MiB")
    return [*encode_fitting(parts[0]), *encode_fitting(parts[1])]


def decode(text: str | bytes) -> dict[str, Any]:
    try:
        message = _DECODER.decode(text if isinstance(text, str) else text.decode())
    except ValueError as exc:
        raise ProtocolError(f"a message is not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a string \"type\"")
    return message


def pickle_frame(message: dict[str, Any]) -> bytes:
    """A message on the pipe to a local process: length, then the pickled dict."""
    body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_MESSAGE:
        return pickle_frames([message])   # split into frames that fit
    return LENGTH.pack(len(body)) + body


def pickle_frames(messages: list[dict[str, Any]]) -> bytes:
    """Several messages in one frame (a pickled list): one unpickling for a burst of
    results, which is most of what a fast stream's coordinator does per item.  Frames
    stay within MAX_MESSAGE: large values go in several."""
    body = pickle.dumps(messages if len(messages) > 1 else messages[0],
                        pickle.HIGHEST_PROTOCOL)
    if len(body) <= MAX_MESSAGE:
        return LENGTH.pack(len(body)) + body
    if len(messages) > 1:
        half = len(messages) // 2
        return pickle_frames(messages[:half]) + pickle_frames(messages[half:])
    parts = split(messages[0])
    if parts is None:
        raise ProtocolError(f"a {messages[0]['type']!r} message of {len(body):,} bytes is "
                            f"over the limit of {MAX_MESSAGE >> 20} MiB")
    return pickle_frames(parts[:1]) + pickle_frames(parts[1:])


def unpickle(body: bytes) -> list[dict[str, Any]]:
    """The message(s) of one pipe frame (only ever from our own child process, or its
    parent): a dict, or a list of them."""
    loaded = pickle.loads(body)
    messages = loaded if isinstance(loaded, list) else [loaded]
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError("a message must be a dict with a string \"type\"")
    return messages


# -- volunteer -> coordinator --------------------------------------------------------------
def hello(kind: str, name: str, capacity: int, secret: str | None = None, *,
          redirects: bool = True, relay_url: str | None = None,
          runs: bool = False) -> dict[str, Any]:
    message = {"type": "hello", "kind": kind, "name": name, "capacity": capacity,
               "runtime": {"python": platform.python_version(),
                           "platform": platform.platform()},
               "secret": secret, "redirects": redirects}
    if runs:
        message["runs"] = True   # it reads items as a start and values (items_run)
    if relay_url is not None:
        message["relay_url"] = relay_url
    return message


def capacity(count: int) -> dict[str, Any]:
    """relay -> coordinator: the items its children may hold now."""
    return {"type": "capacity", "capacity": count}


def result_ok(item_id: int, value: Any, cpu_time: float) -> dict[str, Any]:
    return {"type": "result", "id": item_id, "ok": True, "value": value, "cpu_time": cpu_time}


MAX_ERROR = 1 << 16   # characters of a failure's message kept (its traceback: 16 times more)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def result_error(item_id: int, error: str, traceback: str) -> dict[str, Any]:
    return {"type": "result", "id": item_id, "ok": False, "error": _clip(error, MAX_ERROR),
            "traceback": _clip(traceback, 16 * MAX_ERROR)}


def results(start: int, values: list[Any], cpu_time: float) -> dict[str, Any]:
    """Ok results of the items ``start, start + 1, ...``: one message for a run (what a
    fast stream sends most), where ``result`` is one per item."""
    return {"type": "results", "start": start, "values": values, "cpu_time": cpu_time}


def report(cpu_time: float, transfer_time: float, items: int, units: float,
           unit: str = "") -> dict[str, Any]:
    message = {"type": "report", "cpu_time": cpu_time, "transfer_time": transfer_time,
               "items": items, "units": units}
    if unit:
        message["unit"] = unit   # what the units count: "Gizmos"
    return message


PONG = {"type": "pong"}
BYE = {"type": "bye"}

# -- coordinator -> volunteer --------------------------------------------------------------
PING = {"type": "ping"}
STOP = {"type": "stop"}
WAITING = {"type": "waiting"}   # a stream-server has no stream yet: the welcome comes later


def welcome(volunteer_id: str, module_name: str, source: str, function: str, batch: int,
            heartbeat: float) -> dict[str, Any]:
    return {"type": "welcome", "volunteer_id": volunteer_id,
            "module": {"name": module_name, "source": source}, "function": function,
            "batch": batch, "heartbeat": heartbeat}


def items(lent: list[tuple[int, Any]]) -> dict[str, Any]:
    return {"type": "items", "items": [{"id": i, "value": v} for i, v in lent]}


def items_run(start: int, values: list[Any]) -> dict[str, Any]:
    """Items ``start, start + 1, ...``: sent to volunteers whose hello said ``runs``."""
    return {"type": "items", "start": start, "values": values}


def error(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}


def redirect(url: str) -> dict[str, Any]:
    """Instead of a welcome: the root has its --degree of direct volunteers; join this relay."""
    return {"type": "redirect", "url": url}


# -- checks of what volunteers send --------------------------------------------------------
def _number(message: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = message.get(key, default)
    # `not 0 <= value <= MAX_FIGURE` is true of NaN and the infinities too.
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value <= MAX_FIGURE:
        raise ProtocolError(f"{message['type']}: {key} must be a number from 0 to "
                            f"{MAX_FIGURE:g}")
    return float(value)


def check_hello(message: dict[str, Any]) -> tuple[str, str, int]:
    """(kind, name, capacity) of a hello, or ProtocolError."""
    if message.get("type") != "hello":
        raise ProtocolError("the first message must be a hello")
    kind, name, capacity = message.get("kind"), message.get("name"), message.get("capacity")
    if kind not in KINDS:
        raise ProtocolError(f"hello: kind must be one of {', '.join(KINDS)}")
    if not isinstance(name, str) or len(name) > 200:
        raise ProtocolError("hello: name must be a string of at most 200 characters")
    least = 0 if kind == "relay" else 1   # a relay's capacity is its children's
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < least:
        raise ProtocolError(f"hello: capacity must be a whole number >= {least}")
    if kind == "relay" and not isinstance(message.get("relay_url"), str):
        raise ProtocolError("hello: a relay gives the relay_url its children join at")
    return kind, name, capacity


def check_capacity(message: dict[str, Any]) -> int:
    count = message.get("capacity")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ProtocolError("capacity: must be a whole number >= 0")
    return count


def check_result(message: dict[str, Any]) -> tuple[int, bool]:
    item_id, ok = message.get("id"), message.get("ok")
    if isinstance(item_id, bool) or not isinstance(item_id, int) or not isinstance(ok, bool):
        raise ProtocolError("result: needs an integer id and a boolean ok")
    if ok and "value" not in message:
        raise ProtocolError("result: ok results carry a value")
    if not ok and not isinstance(message.get("error"), str):
        raise ProtocolError("result: failed results carry an error string")
    cpu_time = message.get("cpu_time", 0.0)
    if type(cpu_time) is not float or not 0 <= cpu_time <= MAX_FIGURE:   # NaN fails too
        _number(message, "cpu_time")
    return item_id, ok


def check_results(message: dict[str, Any]) -> tuple[int, list[Any], float]:
    start, values = message.get("start"), message.get("values")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0 \
            or not isinstance(values, list):
        raise ProtocolError("results: needs an integer start >= 0 and a list of values")
    cpu_time = message.get("cpu_time", 0.0)
    if type(cpu_time) is not float or not 0 <= cpu_time <= MAX_FIGURE:   # NaN fails too
        cpu_time = _number(message, "cpu_time")
    return start, values, cpu_time


MAX_UNIT = 64   # characters of a unit's name (as shoal.stream.reporting.MAX_UNIT)


def check_report(message: dict[str, Any]) -> tuple[float, float, float, float, str]:
    """(cpu_time, transfer_time, items, units, unit name or "") of a report."""
    unit = message.get("unit", "")
    if not isinstance(unit, str) or len(unit) > MAX_UNIT or not unit.isprintable():
        raise ProtocolError(f"report: unit must be a printable name of at most {MAX_UNIT} "
                            "characters")
    return (_number(message, "cpu_time"), _number(message, "transfer_time"),
            _number(message, "items"), _number(message, "units"), unit)


# -- the root role: shoal stream --server <-> shoal stream-server (at /root) -----------------
#   root -> server  {"type": "stream", "secret": str|null, "module": {"name", "source"},
#                    "function": str, "batch": int, "ordered": bool, "on_error": str}
#   server -> root  {"type": "accepted", "url": str}   or {"type": "error", "message": str}
#   server -> root  {"type": "want", "count": int}     the root answers with
#   root -> server  {"type": "values", "values": [...], "end": bool}
#   server -> root  {"type": "outcomes", "outcomes": [{"id", "ok", "value" | "error",
#                    "traceback", "item"} | {"start", "values"}]}   in the order to print
#                    ({"start", "values"}: ok results of the items start, start + 1, ...)
#   server -> root  {"type": "done", "status": int}
def outcome_to_json(outcome: Any) -> dict[str, Any]:
    if outcome.ok:
        return {"id": outcome.id, "ok": True, "value": outcome.value}
    return {"id": outcome.id, "ok": False, "error": outcome.error,
            "traceback": outcome.traceback, "item": outcome.item}
