"""API tokens: made once, shown once, kept as SHA-256.

A token is ``shoal_`` + 32 random bytes in URL-safe base64; only its SHA-256 is
stored, so a stolen database gives no usable token.  A lookup finds the row by
the secret's SHA-256 and compares the two digests in constant time
(``hmac.compare_digest``), so the secret itself is never compared byte by byte;
the secret is high-entropy, so no slow hash is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from shoal.cluster.db.models import SCOPES, Token, utcnow
from shoal.cluster.errors import NotFoundError
from shoal.errors import ConfigurationError

PREFIX = "shoal_"


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    scope: str
    created_at: str
    last_used_at: str | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def scope_allows(held: str, needed: str) -> bool:
    return SCOPES.index(held) >= SCOPES.index(needed)


def _info(row: Token) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.scope, row.created_at.isoformat(),
                     row.last_used_at.isoformat() if row.last_used_at else None)


class TokenStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, scope: str, name: str = "") -> tuple[TokenInfo, str]:
        """A new token: its record and its secret (shown to the user once)."""
        if scope not in SCOPES:
            raise ConfigurationError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        secret = PREFIX + secrets.token_urlsafe(32)
        row = Token(id=str(uuid.uuid4()), name=name or f"{scope}-token", scope=scope,
                    sha256=digest(secret), created_at=utcnow())
        with self.sessions.begin() as session:
            session.add(row)
        return _info(row), secret

    def lookup(self, secret: str) -> TokenInfo | None:
        """The token with this secret, None if unknown (or revoked)."""
        wanted = digest(secret)
        with self.sessions() as session:
            row = session.scalars(select(Token).where(Token.sha256 == wanted)).first()
            if row is None or not hmac.compare_digest(row.sha256, wanted):
                return None
            return _info(row)

    def touch(self, token_id: str) -> None:
        """Record that the token was used now (callers throttle this)."""
        with self.sessions.begin() as session:
            session.execute(update(Token).where(Token.id == token_id)
                            .values(last_used_at=utcnow()))

    def list(self) -> list[TokenInfo]:
        with self.sessions() as session:
            return [_info(r) for r in session.scalars(select(Token).order_by(Token.created_at))]

    def revoke(self, token_id: str) -> None:
        with self.sessions.begin() as session:
            result = session.execute(delete(Token).where(Token.id == token_id))
            if getattr(result, "rowcount", 0) == 0:
                raise NotFoundError(f"no token has the id {token_id!r}; "
                                    "see `shoal master token list`", code="token_not_found")
