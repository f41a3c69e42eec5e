"""One authenticated TCP connection to one peer, as the TCP endpoint keeps it.

A :class:`Link` holds what :class:`~shoal.transport.tcp.TcpEndpoint` knows of one peer:
its socket, its :class:`~shoal.security.SecureChannel`, the ciphertext the socket has
not taken yet, the plaintext the engine has not taken (an
:class:`~shoal.transport.tcp_buffers.Inbox`), the start of a frame that a read cut, how
the link ended, and the compiled record core's one-call paths where the channel has
them.  The endpoint does all the I/O; this module only says what a link is.
"""

from __future__ import annotations

import socket
from collections import deque
from typing import Any

from shoal.errors import TransportError
from shoal.security import SecureChannel
from shoal.security.channel import OPEN_INTO_MIN, OVERHEAD, SEAL_SEND_LIMIT
from shoal.transport.tcp_buffers import Inbox, Pool
from shoal.wire.header import DATA, HEADER, HEADER_SIZE


def match_bytes(ctx: int, tag: int) -> tuple[bytes, bytes]:
    """recv_take's ``want`` and ``mask`` for a DATA frame on ``ctx`` with ``tag`` (-1:
    any): the header's kind, tag and ctx bytes, the rest left out."""
    want = HEADER.pack(DATA, 0, 0, 0, 0 if tag == -1 else tag, ctx, 0, 0, 0)
    mask = HEADER.pack(0xFF, 0, 0, 0, 0 if tag == -1 else -1, -1, 0, 0, 0)
    return want, mask


class Link:
    """One authenticated connection to one peer, and its buffers."""

    __slots__ = ("peer", "host", "sock", "fd", "channel", "out", "out_bytes", "out_offset",
                 "want_out", "inbox", "failure", "peer_closed", "eof", "ready", "partial",
                 "partial_got", "partial_size", "cut", "rcvtimeo", "seal_send", "recv_open",
                 "recv_take", "spin_readable", "whole_limit", "open_limit", "one_frame", "sink",
                 "sink_pos", "sink_end", "seal_send_many", "open_into")

    def __init__(self, peer: int, host: str, sock: socket.socket,
                 channel: SecureChannel, pool: Pool) -> None:
        self.peer = peer
        self.host = host
        self.sock = sock
        self.fd = sock.fileno()
        self.channel = channel
        self.out: deque[memoryview] = deque()  # ciphertext frames not yet sent
        self.out_bytes = 0
        self.out_offset = 0  # how much of out[0] was sent
        self.want_out = False  # registered for writability (ciphertext waits)
        self.inbox = Inbox(pool)  # decrypted bytes the engine has not taken
        self.failure: TransportError | None = None  # raised once the inbox is drained
        self.peer_closed = False  # the peer sent its authenticated CLOSE
        self.eof = False
        self.ready = True  # the socket may hold bytes (until a read finds it drained)
        # The start of a frame the last read cut: its bytes so far (in ``cut``, this
        # link's buffer for one whole frame, reused), and its whole size (0 while
        # fewer than SIZE_PREFIX bytes of it came: then ``partial`` is those bytes).
        self.partial: memoryview | bytes | None = None
        self.partial_got = 0
        self.partial_size = 0
        self.cut: bytearray | None = None
        self.rcvtimeo = 0.0  # the socket's SO_RCVTIMEO in seconds (0: none, reads may block)
        # The compiled record core's one-call paths for a small message (see send_frame and
        # _pull): None where the channel seals in Python.
        self.seal_send = getattr(channel._send, "seal_send", None)
        self.recv_open = getattr(channel._recv, "recv_open", None)
        self.recv_take: Any = getattr(channel._recv, "recv_take", None)  # (checked by take_match)
        self.spin_readable = getattr(channel._recv, "spin_readable", None)
        # ... and for a large one (see _write_frames and _received): its frames sealed and
        # sent in one call, and a read's whole frames opened straight into its body's place.
        self.seal_send_many: Any = getattr(channel._send, "seal_send_many", None)
        self.open_into: Any = getattr(channel._recv, "open_into", None)
        self.whole_limit = channel._whole_limit  # a frame this long is one whole message
        # recv_open's limit (see _pull): a frame read alone is opened there only when it is
        # shorter than those open_frames() decrypts in place (OPEN_INTO_MIN of plaintext; the
        # length field counts OVERHEAD - 4 more).  A larger one is most often a piece of a
        # large body, which open_frames() decrypts straight into its place; recv_open would
        # make it a new bytes object, copied once more (256 KiB between two namespace hosts,
        # one way: 165 -> 133 us with readable()'s change of the same commit).
        self.open_limit = min(self.whole_limit, OPEN_INTO_MIN - 1 + OVERHEAD - 4)
        # The longest body that seal_send sends in one frame with its header (a message up
        # to it is read whole in one recv_take at the other end: no frame of its own for
        # the header, no general path on either side).
        self.one_frame = (min(SEAL_SEND_LIMIT, channel.send_max_frame) - HEADER_SIZE
                          if self.seal_send is not None else 0)
        # The body being received (see receive_into): sink[sink_pos:sink_end] are the bytes
        # that come next in the stream, where large frames are decrypted in place.
        self.sink: memoryview | None = None
        self.sink_pos = 0
        self.sink_end = 0

    def where(self) -> str:
        return f"rank {self.peer} on {self.host}"


def drain(link: Link) -> None:
    """Move what the link's inbox holds, up to its sink's end, into the sink."""
    pos = link.sink_pos
    n = min(link.inbox.size, link.sink_end - pos)
    if n:
        assert link.sink is not None
        link.inbox.read_into(link.sink[pos:pos + n], n)
        link.sink_pos = pos + n
