"""The tables.  Every time is stored as naive UTC and read back as aware UTC.

The schema is created by the alembic migrations in ``migrations/versions``
(never by ``create_all``), so a change here needs a new revision there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

FINAL_JOB_STATES = frozenset({"exited", "killed", "lost", "failed"})
SCOPES = ("read", "submit", "admin")  # each includes the ones before it


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a UTC time")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None,
                             dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    hostname: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="online")
    cores: Mapped[int] = mapped_column(Integer, default=0)
    memory_total: Mapped[int] = mapped_column(BigInteger, default=0)
    platform: Mapped[str] = mapped_column(String(255), default="")
    shoal_version: Mapped[str] = mapped_column(String(64), default="")
    python_version: Mapped[str] = mapped_column(String(64), default="")
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_heartbeat: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Pool(Base):
    __tablename__ = "pools"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    command: Mapped[list[str]] = mapped_column(JSON)
    env: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    cwd: Mapped[str | None] = mapped_column(Text, nullable=True)
    timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="running", index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(255), default="")
    # {"command": [the first arguments, cut], "truncated": bool}: what lists show
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    jobs: Mapped[list[Job]] = relationship(
        back_populates="pool", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Job.worker_name", lazy="selectin")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"), index=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("workers.id"), index=True)
    worker_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signal: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kill_signal: Mapped[int | None] = mapped_column(Integer, nullable=True)  # asked for
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    pool: Mapped[Pool] = relationship(back_populates="jobs")


class OutputChunk(Base):
    """A piece of a job's stdout (stream 1) or stderr (stream 2) at a byte offset."""

    __tablename__ = "output_chunks"
    __table_args__ = (Index("ix_output_job_stream_offset", "job_id", "stream", "offset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    stream: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class HealthSample(Base):
    """One sample (``raw``) or the mean of a minute (``1m``) or an hour (``1h``)."""

    __tablename__ = "health_samples"
    __table_args__ = (Index("ix_health_worker_res_time", "worker_id", "resolution",
                            "sampled_at"),
                      Index("ix_health_res_time", "resolution", "sampled_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"))
    resolution: Mapped[str] = mapped_column(String(4))
    sampled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    cpu_percent: Mapped[float] = mapped_column(Float)
    memory_percent: Mapped[float] = mapped_column(Float)
    load1: Mapped[float] = mapped_column(Float)
    load5: Mapped[float] = mapped_column(Float)
    load15: Mapped[float] = mapped_column(Float)
    disk_percent: Mapped[float] = mapped_column(Float)
    net_sent_bps: Mapped[float] = mapped_column(Float)
    net_recv_bps: Mapped[float] = mapped_column(Float)
    temperature_c: Mapped[float | None] = mapped_column(Float, nullable=True)


HEALTH_FIELDS = ("cpu_percent", "memory_percent", "load1", "load5", "load15", "disk_percent",
                 "net_sent_bps", "net_recv_bps", "temperature_c")


class Token(Base):
    """An API token: only the SHA-256 of its secret is kept."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
