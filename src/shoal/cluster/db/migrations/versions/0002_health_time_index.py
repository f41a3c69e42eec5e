"""Health samples indexed by (resolution, sampled_at): rollups and pruning read a time range.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_health_res_time", "health_samples", ["resolution", "sampled_at"])


def downgrade() -> None:
    op.drop_index("ix_health_res_time", "health_samples")
