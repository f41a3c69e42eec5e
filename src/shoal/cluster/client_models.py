"""The REST contract's objects as typed, read-only values (docs/contracts/cluster-rest.md).

Parsing is strict about what the client relies on (ids, states) and lenient
about the rest, so a master that adds fields keeps working and one that drops
a needed field gives a :class:`MasterProtocolError` naming it, not a KeyError.
"""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from shoal.cluster.client_errors import MasterProtocolError

FINAL_JOB_STATES = frozenset({"exited", "killed", "lost", "failed"})


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` accepted on Python 3.10 too) or None."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise MasterProtocolError(f"the master sent a bad time {value!r}") from exc


def signal_name(number: int) -> str:
    """``SIGTERM (15)``, or ``signal 99`` for one this platform does not name."""
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return f"signal {number}"


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Health:
    cpu_percent: float | None
    memory_percent: float | None
    load1: float | None
    load5: float | None
    load15: float | None
    disk_percent: float | None
    net_sent_bps: float | None
    net_recv_bps: float | None
    temperature_c: float | None
    sampled_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Health:
        return cls(**{name: _float(data.get(name)) for name in (
            "cpu_percent", "memory_percent", "load1", "load5", "load15", "disk_percent",
            "net_sent_bps", "net_recv_bps", "temperature_c")},
            sampled_at=parse_time(data.get("sampled_at")))


@dataclass(frozen=True)
class Worker:
    id: str
    name: str
    hostname: str
    state: str
    cores: int | None
    memory_total: int | None
    platform: str
    shoal_version: str
    python_version: str
    registered_at: datetime | None
    last_heartbeat: datetime | None
    health: Health | None
    running_jobs: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Worker:
        health = data.get("health")
        return cls(
            id=str(data["id"]), name=str(data["name"]), state=str(data["state"]),
            hostname=str(data.get("hostname") or ""),
            cores=_int(data.get("cores")), memory_total=_int(data.get("memory_total")),
            platform=str(data.get("platform") or ""),
            shoal_version=str(data.get("shoal_version") or ""),
            python_version=str(data.get("python_version") or ""),
            registered_at=parse_time(data.get("registered_at")),
            last_heartbeat=parse_time(data.get("last_heartbeat")),
            health=Health.from_json(health) if isinstance(health, dict) else None,
            running_jobs=int(data.get("running_jobs") or 0))


@dataclass(frozen=True)
class Job:
    id: str
    pool_id: str
    worker_id: str
    worker_name: str
    state: str
    exit_code: int | None
    signal: int | None
    reason: str | None
    pid: int | None
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_JOB_STATES

    @property
    def outcome(self) -> str:
        """How it ended, in words: ``exited 0``, ``killed by signal 15``, ``lost: why``."""
        if self.state == "exited":
            return f"exited {self.exit_code}"
        if self.state == "killed" or (self.signal is not None and self.state != "running"):
            return f"{self.state} by {signal_name(self.signal)}" if self.signal else self.state
        if self.reason:
            return f"{self.state}: {self.reason}"
        return self.state

    @property
    def exit_status(self) -> int:
        """A shell's exit status for it: the code, 128 + signal, or 1 when lost/failed."""
        if self.state == "exited" and self.exit_code is not None:
            return self.exit_code
        if self.signal:
            return 128 + self.signal
        return 0 if self.state in ("queued", "running") else 1

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(
            id=str(data["id"]), pool_id=str(data.get("pool_id") or ""),
            worker_id=str(data.get("worker_id") or ""),
            worker_name=str(data.get("worker_name") or data.get("worker_id") or "?"),
            state=str(data["state"]), exit_code=_int(data.get("exit_code")),
            signal=_int(data.get("signal")), reason=data.get("reason"), pid=_int(data.get("pid")),
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            ended_at=parse_time(data.get("ended_at")))


def pool_outcome(state: str, jobs: list[Job]) -> str:
    """As the master says it (for a master too old to say): running, ok, failed, lost, killed."""
    if state != "done":
        return "running"
    ends = {job.state for job in jobs}
    if "failed" in ends or any(j.state == "exited" and j.exit_code != 0 for j in jobs):
        return "failed"
    return next((worst for worst in ("lost", "killed") if worst in ends), "ok")


@dataclass(frozen=True)
class Pool:
    id: str
    command: list[str]
    state: str
    created_at: datetime | None
    ended_at: datetime | None
    submitted_by: str
    jobs: list[Job] = field(default_factory=list)
    outcome: str = "running"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pool:
        jobs = [Job.from_json(job) for job in data.get("jobs") or []]
        return cls(
            id=str(data["id"]), command=[str(part) for part in data["command"]],
            state=str(data["state"]), created_at=parse_time(data.get("created_at")),
            ended_at=parse_time(data.get("ended_at")),
            submitted_by=str(data.get("submitted_by") or ""), jobs=jobs,
            outcome=str(data.get("outcome") or pool_outcome(str(data["state"]), jobs)))


@dataclass(frozen=True)
class PoolSummary:
    """A pool as lists show it: the command's start, jobs counted by state."""

    id: str
    command: list[str]
    command_truncated: bool
    state: str
    outcome: str
    created_at: datetime | None
    ended_at: datetime | None
    submitted_by: str
    jobs: int
    job_counts: dict[str, int]
    nonzero_exits: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolSummary:
        counts = data.get("job_counts") or {}
        return cls(
            id=str(data["id"]), command=[str(part) for part in data["command"]],
            command_truncated=bool(data.get("command_truncated")), state=str(data["state"]),
            outcome=str(data.get("outcome") or data["state"]),
            created_at=parse_time(data.get("created_at")),
            ended_at=parse_time(data.get("ended_at")),
            submitted_by=str(data.get("submitted_by") or ""),
            jobs=int(data.get("jobs") or sum(int(n) for n in counts.values())),
            job_counts={str(k): int(v) for k, v in counts.items()},
            nonzero_exits=int(data.get("nonzero_exits") or 0))


@dataclass(frozen=True)
class PoolPage:
    items: list[PoolSummary]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolPage:
        return cls([PoolSummary.from_json(item) for item in data["items"]],
                   int(data["total"]), int(data.get("limit") or 0),
                   int(data.get("offset") or 0))


@dataclass(frozen=True)
class OutputChunk:
    """Some of a job's output, as the master decoded it (UTF-8 with replacement)."""

    job_id: str
    stream: str
    data: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputChunk:
        return cls(str(data["job_id"]), str(data["stream"]), str(data["data"]))


@dataclass(frozen=True)
class JobEnded:
    """The last event of a job's stream: the job in its final state."""

    job: Job


def to_json(value: Any) -> dict[str, Any]:
    """A parsed object back as JSON-ready data (times as ISO 8601), for ``--json``."""

    def plain(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.isoformat()
        if isinstance(item, dict):
            return {key: plain(val) for key, val in item.items()}
        if isinstance(item, list):
            return [plain(val) for val in item]
        return item

    result: dict[str, Any] = plain(asdict(value))
    return result


Parsed = TypeVar("Parsed", Health, Worker, Job, Pool, PoolSummary, PoolPage, OutputChunk)


def parse(kind: type[Parsed], data: Any) -> Parsed:
    """``kind.from_json(data)``, a missing or mistyped field becoming MasterProtocolError."""
    if not isinstance(data, dict):
        raise MasterProtocolError(f"the master sent {type(data).__name__}, "
                                  f"expected a {kind.__name__} object")
    try:
        return kind.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise MasterProtocolError(
            f"the master's {kind.__name__} object is malformed ({type(exc).__name__}: {exc})"
        ) from exc
