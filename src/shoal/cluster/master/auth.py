"""Bearer tokens with nested scopes: read < submit < admin.

``Depends(require("submit"))`` on a route (or a router) checks the
``Authorization: Bearer`` header against the stored SHA-256 of the tokens (see
:mod:`shoal.cluster.db.tokens`: digests compared in constant time): 401 when
missing or unknown, 403 when the scope is too small.  The token's record is the
result.  ``?token=`` is taken only on the event streams (:func:`is_event_stream`),
where a browser's EventSource cannot send a header; anywhere else it is refused
with a message saying to send the header, so tokens do not end up in logs and
histories through URLs.

Every token check goes through shoal's :class:`~shoal.security.LoginRateLimiter`,
as workers' and beacons' logins do (``begin`` before the check, then ``success``
or ``failure``): a few unknown tokens per client address are free, then the
address is refused for a growing while (429 ``too_many_attempts`` with
``Retry-After``) whatever token it sends, and failures of all addresses
together draw on an overall budget; an address that presented a known token
keeps its per-address limit only, so an attack from elsewhere does not lock
out known users.  (A token is 32 random bytes: the limits are defence in
depth, not what keeps tokens from being guessed.)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shoal.cluster.db.tokens import TokenInfo, TokenStore, digest, scope_allows
from shoal.cluster.errors import AuthenticationRequired, ScopeError, TooManyAttempts
from shoal.security import LoginRateLimiter

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

    def __init__(self, tokens: TokenStore, limiter: LoginRateLimiter | None = None) -> None:
        self.tokens = tokens
        self.limiter = limiter if limiter is not None else LoginRateLimiter()
        self._known: dict[str, tuple[TokenInfo, float]] = {}  # SHA-256 -> (token, until)
        self._touched: dict[str, float] = {}

    def check(self, secret: str, peer: str) -> TokenInfo:
        """The token with this secret, sent from ``peer``: 429 while the peer is refused
        (before the token is looked at), 401 (a failure for the peer) when unknown."""
        wait = self.limiter.begin(peer)
        if wait > 0:
            raise TooManyAttempts(f"too many unknown tokens from {peer} (or from all "
                                  f"addresses together): retry in {wait:.0f} s with a token "
                                  "from `shoal master token create`", retry_after=wait)
        token = self.lookup(secret)
        if token is None:
            self.limiter.failure(peer)
            raise AuthenticationRequired("the token is not known (revoked, or from another "
                                         "master); create one with `shoal master token "
                                         "create`", code="invalid_token")
        self.limiter.success(peer)
        return token

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


def is_event_stream(path: str) -> bool:
    """The Server-Sent Events endpoints: the only ones that take ``?token=``."""
    return path == "/api/v1/events" or (path.startswith("/api/v1/jobs/")
                                       and path.endswith("/stream"))


def require(scope: str) -> Callable[..., Awaitable[TokenInfo]]:
    async def check(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Security(_bearer)]) -> TokenInfo:
        secret = credentials.credentials if credentials is not None else None
        if secret is None and "token" in request.query_params:
            if not is_event_stream(request.url.path):
                raise AuthenticationRequired(
                    "?token= is taken only by the event streams (a browser's EventSource "
                    "cannot send headers); send 'Authorization: Bearer <token>'",
                    code="token_in_url")
            secret = request.query_params["token"]
        if not secret:
            raise AuthenticationRequired("this endpoint needs a token: send "
                                         "'Authorization: Bearer <token>'",
                                         code="missing_token")
        peer = request.client.host if request.client is not None else "?"
        token = request.app.state.master.gate.check(secret, peer)
        if not scope_allows(token.scope, scope):
            raise ScopeError(f"this needs a token of scope {scope!r} (or larger); this one "
                             f"has {token.scope!r}", code="insufficient_scope")
        return token

    check.__name__ = f"require_{scope}"
    return check
