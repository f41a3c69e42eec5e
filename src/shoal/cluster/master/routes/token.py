"""``/api/v1/token``: the token a request carries (its name and scope), for the dashboard.

The dashboard shows only the actions its token may take (a ``read`` token sees
no Run form and no Kill buttons); the master still checks every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from shoal.cluster.db.tokens import TokenInfo
from shoal.cluster.master.auth import require
from shoal.cluster.master.schemas import TokenOut, errors

router = APIRouter(prefix="/api/v1/token", tags=["tokens"])


@router.get("", response_model=TokenOut, responses=errors())
async def current(token: Annotated[TokenInfo, Depends(require("read"))]) -> TokenOut:
    """The token this request was made with: id, name and scope (never its secret)."""
    return TokenOut(id=token.id, name=token.name, scope=token.scope)  # type: ignore[arg-type]
