"""The stream face's secrets cannot be guessed quickly: every check of the root secret and
the volunteer secret is rate limited per address and overall, and compared in constant time
(issue 11, item 6)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stream_helpers import module, start, stop, wait_for_url
from websockets.sync.client import connect

from shoal.security.ratelimit import LoginRateLimiter
from shoal.stream import protocol
from shoal.stream.guard import Limits, SecretCheck


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock) -> Limits:
    return Limits(LoginRateLimiter(clock=clock))


def test_one_address_is_slowed_down_after_a_few_wrong_secrets_even_with_the_right_one():
    clock = Clock()
    check = SecretCheck("s3cret", limits(clock), what="the root role", wrong="wrong")
    assert [check.check("guess", "10.0.0.1") for _ in range(4)] == ["wrong"] * 4
    refused = check.check("s3cret", "10.0.0.1")
    assert refused == "too many wrong secrets for the root role; try again in 1 s"
    assert check.check("s3cret", "10.0.0.2") is None   # another address is not blocked
    clock.now += 1.5
    assert check.check("s3cret", "10.0.0.1") is None   # after the wait: in, and forgiven
    assert check.check(None, "10.0.0.1") == "wrong"
    assert check.check(b"s3cret", "10.0.0.1") == "wrong"   # not a str: never equal


def test_many_addresses_share_an_overall_budget_that_spares_known_volunteers():
    clock = Clock()
    check = SecretCheck("s3cret", limits(clock), what="volunteering", wrong="wrong")
    assert check.check("s3cret", "127.0.0.99") is None   # a volunteer that joined before
    answers = [check.check("guess", f"127.0.0.{i}") for i in range(2, 52)]
    assert answers[:20] == ["wrong"] * 20
    assert all(a is not None and a.startswith("too many wrong secrets") for a in answers[20:])
    assert check.check("s3cret", "127.0.0.98").startswith("too many")   # strangers wait
    assert check.check("s3cret", "127.0.0.99") is None   # the known volunteer does not


def test_no_secret_lets_everyone_in():
    check = SecretCheck(None, Limits(), what="volunteering", wrong="wrong")
    assert not check.required and check.check(None, "10.0.0.1") is None


def ws_from(address: str, url: str) -> Any:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    sock = socket.socket()
    sock.bind((address, 0))
    sock.settimeout(10)
    sock.connect((host, port))
    return connect(url, sock=sock, open_timeout=10)


def ask_root(url: str, address: str, secret: str) -> dict[str, Any]:
    with ws_from(address, url.replace("http", "ws") + "root") as ws:
        ws.send(json.dumps({"type": "stream", "secret": secret,
                            "module": {"name": "m", "source": "def process(x): return x"},
                            "function": "process", "batch": 1}))
        return dict(json.loads(ws.recv(timeout=10)))


def volunteer_hello(url: str, address: str, secret: str) -> dict[str, Any]:
    with ws_from(address, url.replace("http", "ws") + "volunteer") as ws:
        ws.send(json.dumps(protocol.hello("machine", "guesser", 1, secret)))
        return dict(json.loads(ws.recv(timeout=10)))


def test_a_stream_server_slows_down_root_secret_guesses(tmp_path: Path):
    err = tmp_path / "server.err"
    with open(err, "w") as err_file:
        server = start("stream-server", "--port", "0", "--bind", "127.0.0.1", "--secret",
                       "hunter2", stderr=err_file)
    try:
        url = wait_for_url(err, server)
        answers = [ask_root(url, "127.0.0.1", f"guess{i}")["message"] for i in range(10)]
        # The right one, too, must wait now: a blocked address learns nothing.
        blocked = ask_root(url, "127.0.0.1", "hunter2")["message"]
        accepted = ask_root(url, "127.0.0.2", "hunter2")
    finally:
        stop(server)
    assert answers[:4] == ["wrong or missing secret for the root role"] * 4
    assert all(a.startswith("too many wrong secrets for the root role; try again in")
               for a in answers[4:]), answers
    assert blocked.startswith("too many wrong secrets")
    assert accepted["type"] == "accepted"


def test_volunteer_secret_guesses_from_many_addresses_meet_the_overall_budget(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), "1", "--start-idle", "--bind", "127.0.0.1",
                     "--volunteer-secret", "s3same", stderr=err_file)
    try:
        url = wait_for_url(err, proc)
        answers = [volunteer_hello(url, f"127.0.0.{i}", "guess")["message"]
                   for i in range(2, 42)]
    finally:
        stop(proc)
    wrong = "this stream needs the right secret to volunteer (shoal volunteer URL --secret S)"
    assert answers[:20] == [wrong] * 20
    assert all(a.startswith("too many wrong secrets for volunteering") for a in answers[20:])
