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

from shoal.cluster.db.tokens import TokenInfo, TokenStore, digest, scope_allows
from shoal.cluster.errors import AuthenticationRequired, ScopeError

_bearer = HTTPBearer(auto_error=False, description="a token from `shoal master token create`")


class TokenGate:
    """Token lookups for one master: a short-lived cache of known tokens, and their use.

    A known token is looked up again after ``CACHE_S`` seconds, so a revocation
    (by ``shoal master token revoke``, another process) takes effect within
    that; ``last_used_at`` is written at most once a minute per token, not once
    per request.
    """

    CACHE_S = 2.0
    TOUCH_EVERY_S = 60.0
    CACHE_LIMIT = 1000

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens
        self._known: dict[str, tuple[TokenInfo, float]] = {}  # SHA-256 -> (token, until)
        self._touched: dict[str, float] = {}

    def lookup(self, secret: str) -> TokenInfo | None:
        now = time.monotonic()
        key = digest(secret)
        cached = self._known.get(key)
        if cached is not None and cached[1] > now:
            token: TokenInfo | None = cached[0]
        else:
            token = self.tokens.lookup(secret)
            if token is None:  # unknown tokens are not remembered: guesses cannot fill this
                self._known.pop(key, None)
                return None
            if len(self._known) >= self.CACHE_LIMIT:
                self._known.clear()
            self._known[key] = (token, now + self.CACHE_S)
        assert token is not None
        if now - self._touched.get(token.id, -self.TOUCH_EVERY_S) >= self.TOUCH_EVERY_S:
            self._touched[token.id] = now
            self.tokens.touch(token.id)
        return token


def require(scope: str) -> Callable[..., Awaitable[TokenInfo]]:
    async def check(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Security(_bearer)]) -> TokenInfo:
        secret = credentials.credentials if credentials is not None else \
            request.query_params.get("token")
        if not secret:
            raise AuthenticationRequired("this endpoint needs a token: send "
                                         "'Authorization: Bearer <token>'",
                                         code="missing_token")
        token = request.app.state.master.gate.lookup(secret)
        if token is None:
            raise AuthenticationRequired("the token is not known (revoked, or from another "
                                         "master); create one with `shoal master token "
                                         "create`", code="invalid_token")
        if not scope_allows(token.scope, scope):
            raise ScopeError(f"this needs a token of scope {scope!r} (or larger); this one "
                             f"has {token.scope!r}", code="insufficient_scope")
        return token

    check.__name__ = f"require_{scope}"
    return check
