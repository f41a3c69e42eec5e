"""Pools keep a short summary of their command, so that lists never load whole commands.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# As shoal.cluster.limits had them when this revision was written.
_ARG_CHARS, _ARGS = 200, 20


def _summary(command: list[str]) -> dict[str, object]:
    cut = [arg[:_ARG_CHARS] for arg in command[:_ARGS]]
    return {"command": cut, "truncated": cut != command}


def upgrade() -> None:
    op.add_column("pools", sa.Column("summary", sa.JSON, nullable=True))
    pools = sa.table("pools", sa.column("id", sa.String), sa.column("command", sa.JSON),
                     sa.column("summary", sa.JSON))
    connection = op.get_bind()
    rows = connection.execute(sa.select(pools.c.id, pools.c.command)).all()
    for pool_id, command in rows:
        connection.execute(pools.update().where(pools.c.id == pool_id)
                           .values(summary=_summary(list(command or []))))


def downgrade() -> None:
    op.drop_column("pools", "summary")
