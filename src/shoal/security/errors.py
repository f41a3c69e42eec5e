"""The errors of the secure channel, all under :class:`shoal.errors.ShoalError`.

::

    SecurityError
    +-- AuthenticationError    the peer could not prove who it is (or we could not)
    |   +-- HostKeyError       the server's key is not the one pinned for that host
    |   +-- RateLimitedError   the server refuses logins from us for a while
    +-- ProtocolError          bytes that do not follow the format (or a wrong version)
    +-- ChannelError           the session cannot be used any more
        +-- ChannelClosed      the peer closed the session cleanly (an authenticated CLOSE)
        +-- IntegrityError     a frame was altered, forged, replayed, reordered or oversized
            +-- TruncationError  the stream ended without an authenticated CLOSE

Messages never say which part of a secret was wrong: a wrong password, an
unknown key and a forged confirmation all read "authentication failed".
"""

from __future__ import annotations

from shoal.errors import PeerLostError, ShoalError

AUTH_FAILED = "authentication failed"


class SecurityError(ShoalError):
    """Base class of the errors of :mod:`shoal.security`.

    ``messages``: when raised by ``SecureChannel.receive_data``, the messages
    that authenticated, in order, before the bad frame in the same bytes.
    """

    messages: tuple[bytes, ...] = ()


class AuthenticationError(SecurityError):
    """The handshake did not authenticate both sides; the session never started."""


class HostKeyError(AuthenticationError):
    """The server presented a key that is not pinned for the host we asked for."""


class RateLimitedError(AuthenticationError):
    """The server refuses logins from this address for ``retry_after`` seconds."""

    def __init__(self, message: str = "", *, retry_after: float = 0.0,
                 where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.retry_after = retry_after


class ProtocolError(SecurityError):
    """The peer sent bytes that do not follow the handshake or frame format."""


class ChannelError(SecurityError):
    """The secure session is over: it failed earlier, or it was closed."""


class ChannelClosed(ChannelError):
    """The peer ended the session with an authenticated CLOSE frame (a clean end)."""


class IntegrityError(ChannelError):
    """A frame failed authentication or arrived out of order: the session is over."""


class TruncationError(IntegrityError, PeerLostError):
    """The byte stream ended without an authenticated CLOSE frame.

    Either the peer died or someone cut the connection; the two cannot be told
    apart, so this is both an :class:`IntegrityError` and a
    :class:`shoal.errors.PeerLostError`.
    """
