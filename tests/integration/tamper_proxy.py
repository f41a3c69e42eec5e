"""A machine in the middle of one TCP connection: it alters, replays or cuts its frames.

    python tamper_proxy.py alter|replay|truncate|forward FIRST_PORT LAST_PORT

Listens with ``IP_TRANSPARENT`` on every port in the range (see
``Network.detour``), takes the first connection, connects on to the address it
was meant for (its ``getsockname()``), and forwards both ways.  From client to
server it reads the stream as the secure channel's units (4-byte length, then
a type byte: handshake records below 0x10, DATA frames 0x10) and, once the
handshake is over, tampers with the DATA frames:

* ``alter``: flips one bit in the middle of the first DATA frame's ciphertext;
* ``replay``: sends the first DATA frame twice;
* ``truncate``: forwards two DATA frames, then ends both connections cleanly
  (FIN), as a cut would that leaves TCP itself intact;
* ``forward``: changes nothing (the control case).

Prints ``ready`` once listening and one line saying what it did.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import sys
import threading

IP_TRANSPARENT = 19  # linux/in.h
DATA = 0x10


def read_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def copy(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(1 << 16):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def tamper(mode: str, source: socket.socket, sink: socket.socket) -> None:
    frames = 0
    while True:
        head = read_exactly(source, 5)
        if head is None:
            break
        length = struct.unpack(">I", head[:4])[0]
        body = read_exactly(source, length - 1)
        if body is None:
            break
        unit = bytearray(head + body)
        if unit[4] == DATA:
            if mode == "forward" and frames == 0:
                print("forwarded DATA frames unchanged", flush=True)
            if mode == "alter" and frames == 0:
                where = len(unit) // 2
                unit[where] ^= 0x01
                print(f"altered byte {where} of DATA frame 0", flush=True)
            elif mode == "truncate" and frames == 2:
                print("ended the stream after 2 DATA frames", flush=True)
                return
            sink.sendall(unit)
            if mode == "replay" and frames == 0:
                sink.sendall(unit)
                print("replayed DATA frame 0", flush=True)
            frames += 1
        else:
            sink.sendall(unit)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def main() -> None:
    mode, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    selector = selectors.DefaultSelector()
    listeners = []
    for port in range(first, last + 1):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen()
        selector.register(listener, selectors.EVENT_READ)
        listeners.append(listener)
    print("ready", flush=True)
    key, _ = selector.select()[0]
    client, _ = key.fileobj.accept()  # type: ignore[union-attr]
    for listener in listeners:
        listener.close()
    server = socket.create_connection(client.getsockname()[:2])
    back = threading.Thread(target=copy, args=(server, client), daemon=True)
    back.start()
    try:
        tamper(mode, client, server)
    finally:
        if mode == "truncate":
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        back.join(timeout=30)
        client.close()
        server.close()


if __name__ == "__main__":
    main()
