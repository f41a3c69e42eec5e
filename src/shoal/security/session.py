"""What the blocking and the asyncio adapters share: a session's inbox of messages.

Both feed received bytes to the session's :class:`~shoal.security.channel.SecureChannel`
and hand out whole messages.  When a bad frame arrives, the messages that
authenticated before it are still delivered, and the error is raised once the
inbox is empty; any security error ends the session for good.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from shoal.security.config import HandshakeResult
from shoal.security.errors import ChannelClosed, ChannelError, SecurityError


class SessionInbox:
    """The state and inbox of one session; subclasses move the bytes and define ``_shut``."""

    def __init__(self, session: HandshakeResult, max_message: int | None) -> None:
        self.session = session
        self._channel = session.channel(max_message=max_message)
        self._inbox: deque[bytes] = deque()
        self._closed = False
        self._deferred: SecurityError | None = None  # raised once the inbox is empty

    def _start(self) -> None:
        """Deliver what arrived together with the handshake's last record."""
        if self.session.leftover:
            self._take(self.session.leftover)

    @property
    def peer_name(self) -> str:
        return self.session.peer_name

    @property
    def peer_key(self) -> bytes | None:
        return self.session.peer_key

    @property
    def closed(self) -> bool:
        return self._closed

    def _shut(self) -> None:
        raise NotImplementedError

    def _guard(self, call: Any, *args: Any) -> Any:
        """Run a channel call; on any security error end the session for good."""
        try:
            return call(*args)
        except SecurityError:
            self._shut()
            raise

    def _take(self, data: bytes) -> None:
        """Feed received bytes; genuine messages before a bad frame are still delivered."""
        try:
            self._inbox.extend(self._channel.receive_data(data))
        except SecurityError as exc:
            self._shut()
            if not exc.messages:
                raise
            self._inbox.extend(exc.messages)
            self._deferred = exc

    def _check_empty_inbox(self) -> None:
        """With nothing in the inbox: raise why nothing more will come, if that is known."""
        if self._deferred is not None:
            exc, self._deferred = self._deferred, None
            raise exc
        if self._channel.peer_closed:
            raise ChannelClosed("the peer closed the session")
        if self._closed:
            raise ChannelError("the session is closed")
