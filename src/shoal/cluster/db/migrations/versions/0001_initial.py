"""The first schema: workers, pools, jobs, output chunks, health samples, tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, index=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cores", sa.Integer, nullable=False),
        sa.Column("memory_total", sa.BigInteger, nullable=False),
        sa.Column("platform", sa.String(255), nullable=False),
        sa.Column("shoal_version", sa.String(64), nullable=False),
        sa.Column("python_version", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime, nullable=False),
        sa.Column("last_heartbeat", sa.DateTime, nullable=True),
    )
    op.create_table(
        "pools",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("command", sa.JSON, nullable=False),
        sa.Column("env", sa.JSON, nullable=True),
        sa.Column("cwd", sa.Text, nullable=True),
        sa.Column("timeout", sa.Float, nullable=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("submitted_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("pool_id", sa.String(36), sa.ForeignKey("pools.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("worker_id", sa.String(36), sa.ForeignKey("workers.id"), nullable=False,
                  index=True),
        sa.Column("worker_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("signal", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("kill_signal", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "output_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("stream", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_output_job_stream_offset", "output_chunks",
                    ["job_id", "stream", "offset"])
    op.create_table(
        "health_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("worker_id", sa.String(36), sa.ForeignKey("workers.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("resolution", sa.String(4), nullable=False),
        sa.Column("sampled_at", sa.DateTime, nullable=False),
        *(sa.Column(name, sa.Float, nullable=False) for name in (
            "cpu_percent", "memory_percent", "load1", "load5", "load15", "disk_percent",
            "net_sent_bps", "net_recv_bps")),
        sa.Column("temperature_c", sa.Float, nullable=True),
    )
    op.create_index("ix_health_worker_res_time", "health_samples",
                    ["worker_id", "resolution", "sampled_at"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    for table in ("tokens", "health_samples", "output_chunks", "jobs", "pools", "workers"):
        op.drop_table(table)
