"""Helpers of the transport tests: threads per rank, engines' sends and receives, and
a proxy between two TCP ranks that can flip or dribble the bytes it forwards."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable
from typing import Any

from shoal.security import JobKey
from shoal.spmd.engine import Engine
from shoal.transport.tcp import TcpEndpoint, listen


def in_threads(*jobs: Callable[[], Any], timeout: float = 20.0) -> list[Any]:
    """Run each job (one rank's side) in its own thread; their results, or the first error."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a rank hung"
    if errors:
        raise errors[0]
    return results


def close_all(endpoints: Any) -> None:
    """Close endpoints at once, not one by one: each waits briefly for its peers' CLOSE."""
    in_threads(*(endpoint.close for endpoint in endpoints if endpoint is not None))


def counting(link: Any, name: str) -> list[Any]:
    """Wrap the link's compiled read ``name`` (recv_open, recv_take): the kinds of what
    each call returned (True: taken into the buffer)."""
    calls: list[Any] = []
    read = getattr(link, name)

    def wrapped(*args: Any) -> Any:
        got = read(*args)
        calls.append(True if got is True else type(got))
        return got

    setattr(link, name, wrapped)
    return calls


def send(engine: Engine, dst: int, payload: bytes, tag: int = 0) -> None:
    outgoing = engine.send(dst, 0, tag, [payload])
    engine.wait_until(lambda: outgoing.done, lambda: "send")


def recv(engine: Engine, src: int, tag: int = 0) -> bytes:
    message = engine.receive(0, src, tag, None, lambda: "recv")
    return bytes(message.body)


class TamperingProxy:
    """Forwards one TCP connection both ways; ``flip`` alters one byte going forward
    once ``after`` bytes have passed; ``captured`` keeps every forwarded byte;
    ``dribble`` forwards in random pieces of 1 to ``dribble`` bytes, each sent alone."""

    def __init__(self, target: tuple[str, int], flip: bool, after: int = 0,
                 dribble: int = 0) -> None:
        self.listener = listen("127.0.0.1")
        self.address = self.listener.getsockname()
        self.target = target
        self.flip = flip
        self.after = after
        self.dribble = dribble
        self.random = random.Random(7)
        self.captured = bytearray()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(self.target)
        threading.Thread(target=self.pump, args=(server, client, False), daemon=True).start()
        self.pump(client, server, self.flip)

    def pump(self, src: socket.socket, dst: socket.socket, flip: bool) -> None:
        passed = 0
        while True:
            try:
                data = bytearray(src.recv(65536))
            except OSError:
                data = bytearray()
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            self.captured += data
            if flip and passed <= self.after < passed + len(data):
                data[self.after - passed] ^= 0x01
                flip = False
            passed += len(data)
            try:
                start = 0
                while start < len(data):
                    end = start + self.random.randint(1, self.dribble) if self.dribble \
                        else len(data)
                    dst.sendall(data[start:end])
                    start = end
            except OSError:
                return


def proxied_pair(flip: bool, after: int = 0,
                 dribble: int = 0) -> tuple[list[Engine], TamperingProxy]:
    """Rank 0 reaches rank 1 through a proxy (the handshake and every frame pass it)."""
    key = JobKey.generate()
    listeners = [listen("127.0.0.1"), listen("127.0.0.1")]
    proxy = TamperingProxy(listeners[1].getsockname(), flip, after, dribble)
    for_rank0 = [listeners[0].getsockname(), proxy.address]
    for_rank1 = [listeners[0].getsockname(), listeners[1].getsockname()]
    endpoints = in_threads(lambda: TcpEndpoint(0, 2, key, listeners[0], for_rank0),
                           lambda: TcpEndpoint(1, 2, key, listeners[1], for_rank1))
    return [Engine(r, 2, e) for r, e in enumerate(endpoints)], proxy
