"""Checking the secrets of the stream face: the root's (``shoal stream-server --secret``) and
the volunteers' (``--volunteer-secret``).

Both choose what code runs where (a root sends the module every volunteer runs; a volunteer
returns results that get printed), so guessing either must be slow: every check is rate
limited per peer address and overall, as beacons' and the task service's logins are
(:class:`shoal.security.LoginRateLimiter`, exponential back-off after a few failures), and
compares in constant time.  A peer that is blocked is refused before its secret is looked
at, so a guess made while blocked costs a try and tells nothing.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.security.ratelimit import LoginRateLimiter

OVERALL = "*"   # the overall budget's key: every address together


class Limits:
    """The back-off state one server shares between its secrets.  Made when first needed:
    shoal.security is imported only by a server that has a secret to guard."""

    def __init__(self, per_address: LoginRateLimiter | None = None,
                 overall: LoginRateLimiter | None = None) -> None:
        self._per_address = per_address
        self._overall = overall

    @property
    def per_address(self) -> LoginRateLimiter:
        if self._per_address is None:
            from shoal.security.ratelimit import LoginRateLimiter

            self._per_address = LoginRateLimiter()
        return self._per_address

    @property
    def overall(self) -> LoginRateLimiter:
        if self._overall is None:
            from shoal.security.ratelimit import LoginRateLimiter

            # Many addresses (a /8 of loopback, a botnet) share one budget, larger than one
            # address's: a few dozen wrong secrets before everyone waits, briefly at first.
            self._overall = LoginRateLimiter(free_failures=20, base_delay=0.5,
                                             max_delay=60.0, forget_after=600.0)
        return self._overall


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
        limits = self.limits
        wait = limits.overall.retry_after(OVERALL) or limits.per_address.begin(peer)
        if wait > 0:
            return (f"too many wrong secrets for {self.what}; try again in "
                    f"{max(1, round(wait))} s")
        if isinstance(given, str) and hmac.compare_digest(given.encode(), self._secret):
            limits.per_address.success(peer)
            return None
        limits.per_address.failure(peer)
        limits.overall.failure(OVERALL)
        return self.wrong
