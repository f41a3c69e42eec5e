"""Bearer tokens with nested scopes: read < submit < admin.

``Depends(require("submit"))`` on a route (or a router) checks the
``Authorization: Bearer`` header (or ``?token=`` for EventSource, which cannot
set headers) against the stored SHA-256 of the tokens: 401 when missing or
unknown, 403 when the scope is too small.  The token's record is the result.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shoal.cluster.db.tokens import TokenInfo, TokenStore, scope_allows
from shoal.cluster.errors import AuthenticationRequired, ScopeError

_bearer = HTTPBearer(auto_error=False, description="a token from `shoal master token create`")


CACHE_S = 2.0  # a known token is looked up again after this long: a revocation takes as long
_CACHE_LIMIT = 1000
_known: dict[str, tuple[TokenInfo, float]] = {}


def _lookup(tokens: TokenStore, secret: str) -> TokenInfo | None:
    """The token, from a short-lived cache of known ones (one query less per request)."""
    now = time.monotonic()
    cached = _known.get(secret)
    if cached is not None and cached[1] > now:
        return cached[0]
    token = tokens.lookup(secret)
    if token is None:
        _known.pop(secret, None)
        return None
    if len(_known) >= _CACHE_LIMIT:
        _known.clear()
    _known[secret] = (token, now + CACHE_S)
    return token


TOUCH_EVERY_S = 60.0  # last_used_at is kept to the minute: not one write per request
_touched: dict[str, float] = {}


def _note_use(tokens: TokenStore, token: TokenInfo) -> None:
    now = time.monotonic()
    if now - _touched.get(token.id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
        _touched[token.id] = now
        tokens.touch(token.id)


def require(scope: str) -> Callable[..., Awaitable[TokenInfo]]:
    async def check(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Security(_bearer)]) -> TokenInfo:
        secret = credentials.credentials if credentials is not None else \
            request.query_params.get("token")
        if not secret:
            raise AuthenticationRequired("this endpoint needs a token: send "
                                         "'Authorization: Bearer <token>'",
                                         code="missing_token")
        token = _lookup(request.app.state.master.tokens, secret)
        if token is None:
            raise AuthenticationRequired("the token is not known (revoked, or from another "
                                         "master); create one with `shoal master token "
                                         "create`", code="invalid_token")
        _note_use(request.app.state.master.tokens, token)
        if not scope_allows(token.scope, scope):
            raise ScopeError(f"this needs a token of scope {scope!r} (or larger); this one "
                             f"has {token.scope!r}", code="insufficient_scope")
        return token

    check.__name__ = f"require_{scope}"
    return check
