"""Checking the secrets of the stream face: the root's (``shoal stream-server --secret``) and
the volunteers' (``--volunteer-secret``).

Both choose what code runs where (a root sends the module every volunteer runs; a volunteer
returns results that get printed), so guessing either must be slow: every check is rate
limited per peer address and overall, as beacons' and the task service's logins are
(:class:`shoal.security.LoginRateLimiter`: exponential back-off after a few failures of an
address, and a budget of failures of all addresses together, which spares addresses that
logged in recently), and compares in constant time.  A peer that is blocked is refused
before its secret is looked at, so a guess made while blocked costs a try and tells nothing.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.security.ratelimit import LoginRateLimiter


class Limits:
    """The back-off state one server shares between its secrets: one
    :class:`~shoal.security.LoginRateLimiter`, which limits each address and all of them
    together.  Made when first needed: shoal.security is imported only by a server that
    has a secret to guard."""

    def __init__(self, limiter: LoginRateLimiter | None = None) -> None:
        self._limiter = limiter

    @property
    def limiter(self) -> LoginRateLimiter:
        if self._limiter is None:
            from shoal.security.ratelimit import LoginRateLimiter

            self._limiter = LoginRateLimiter()
        return self._limiter


class SecretCheck:
    """One secret, checked for peers; ``None`` as the secret lets everyone in."""

    def __init__(self, secret: str | None, limits: Limits, *, what: str,
                 wrong: str) -> None:
        self._secret = secret.encode() if secret is not None else None
        self.limits = limits
        self.what = what     # e.g. "the root role", said when a peer must wait
        self.wrong = wrong   # what a wrong or missing secret is told

    @property
    def required(self) -> bool:
        return self._secret is not None

    def check(self, given: Any, peer: str) -> str | None:
        """None when ``given`` is the secret (or none is needed), else why it is refused."""
        if self._secret is None:
            return None
        limiter = self.limits.limiter
        wait = limiter.begin(peer)
        if wait > 0:
            return (f"too many wrong secrets for {self.what}; try again in "
                    f"{max(1, round(wait))} s")
        if isinstance(given, str) and hmac.compare_digest(given.encode(), self._secret):
            limiter.success(peer)
            return None
        limiter.failure(peer)
        return self.wrong
