"""Safe by default (issue 13, item 7): a local `shoal stream` listens on loopback unless
asked to listen on the network, and a network listener without a secret or without TLS
says so in one line."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from stream_helpers import module, start, stop, wait_for_url


def listening_addresses(pid: int) -> set[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN}
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("nothing listens")


def warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if ": warning: " in line]


def run_until_url(tmp_path: Path, command: str, *args: str) -> tuple[set[str], str]:
    err = tmp_path / f"{command}.err"
    with open(err, "w") as err_file:
        proc = start(command, *args, stderr=err_file)
    try:
        wait_for_url(err, proc, host=r"[\w.\[\]:]+")
        addresses = listening_addresses(proc.pid)
    finally:
        stop(proc)
    return addresses, err.read_text()


def test_a_local_stream_listens_on_loopback_unless_asked(tmp_path: Path):
    addresses, said = run_until_url(tmp_path, "stream", module("square"), "1", "--start-idle")
    assert addresses == {"127.0.0.1"}
    assert "listening on 127.0.0.1 only (this machine); --bind 0.0.0.0 lets other " \
           "machines" in said
    assert warnings(said) == []


def test_a_stream_on_the_network_without_a_secret_or_tls_warns_in_one_line(tmp_path: Path):
    addresses, said = run_until_url(tmp_path, "stream", module("square"), "1",
                                    "--start-idle", "--bind", "0.0.0.0")
    assert addresses == {"0.0.0.0"}
    assert warnings(said) == [
        "shoal stream: warning: listening on 0.0.0.0 with no secret and without TLS: anyone "
        "who reaches it may join, and everything crosses the network in clear; add "
        "--volunteer-secret S and --certfile FILE --keyfile FILE, or --bind 127.0.0.1"]


def test_a_stream_server_without_a_root_secret_warns(tmp_path: Path):
    _, said = run_until_url(tmp_path, "stream-server", "--port", "0", "--bind", "0.0.0.0",
                            "--volunteer-secret", "v")
    assert len(warnings(said)) == 1
    assert "with no secret and without TLS" in warnings(said)[0]
    assert "add --secret S" in warnings(said)[0]


def test_a_relay_on_the_network_with_a_secret_and_no_tls_warns(tmp_path: Path):
    err = tmp_path / "root.err"
    with open(err, "w") as err_file:
        root = start("stream", module("square"), "1", "--start-idle", "--bind", "127.0.0.1",
                     "--volunteer-secret", "s", stderr=err_file)
    try:
        url = wait_for_url(err, root)
        _, said = run_until_url(tmp_path, "volunteer", url, "--relay", "--bind", "0.0.0.0",
                                "--secret", "s")
    finally:
        stop(root)
    assert warnings(said) == [
        "shoal volunteer: warning: listening on 0.0.0.0 without TLS: the secret, the items "
        "and the results cross the network in clear; add --certfile FILE --keyfile FILE "
        "(docs/streams.md, \"Across machines: TLS\")"]
