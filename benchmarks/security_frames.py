"""Seal/open throughput of the secure channel's frames, and the cost of a handshake.

    python benchmarks/security_frames.py [--quick]

For each AEAD and payload size, ``seal`` is ``SecureChannel.send`` (header,
nonce, encryption into one buffer) and ``open`` is ``receive_data`` of the
sealed bytes (parse, sequence check, authenticated decryption), on one core,
in this process, without sockets.  Each figure is the best of a few timed
rounds (after a warm-up), so it is the code's speed, not the machine's noise.
Also timed: a full handshake per login method, both ends in this process.
Needs ``pip install 'shoal[beacon]'``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shoal.security import (
    AuthorizedKeys,
    ClientConfig,
    ClientHandshake,
    Identity,
    JobKey,
    PinnedHostKey,
    SecureChannel,
    ServerConfig,
    ServerHandshake,
    Suite,
)

SIZES = [64, 1024, 16 << 10, 1 << 20]


def channel_pair(suite: Suite) -> tuple[SecureChannel, SecureChannel]:
    a_to_b, b_to_a = os.urandom(32), os.urandom(32)
    return SecureChannel(suite, a_to_b, b_to_a), SecureChannel(suite, b_to_a, a_to_b)


def best_of(rounds: int, function, *args) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def frames(suite: Suite, size: int, budget: int) -> tuple[float, float, int]:
    """(seal MiB/s, open MiB/s, frames per round) for one payload size."""
    count = max(50, min(budget // size, 100_000))
    payload = os.urandom(size)

    def seal(sender: SecureChannel) -> list[bytes]:
        return [sender.send(payload) for _ in range(count)]

    def open_all(receiver: SecureChannel, sealed: list[bytes]) -> None:
        for frame in sealed:
            receiver.receive_data(frame)

    rounds, seal_times, open_times = 5, [], []
    for _ in range(rounds + 1):  # the first round warms up
        sender, receiver = channel_pair(suite)
        start = time.perf_counter()
        sealed = seal(sender)
        seal_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        open_all(receiver, sealed)
        open_times.append(time.perf_counter() - start)
    mib = count * size / (1 << 20)
    return mib / min(seal_times[1:]), mib / min(open_times[1:]), count


def handshake(client_config: ClientConfig, server_config: ServerConfig) -> None:
    client, server = ClientHandshake(client_config), ServerHandshake(server_config, "bench")
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    assert client.complete and server.complete


def main() -> None:
    quick = "--quick" in sys.argv
    budget = (32 if quick else 256) << 20
    print(f"{'suite':<20} {'payload':>9} {'frames':>7} {'seal MiB/s':>11} {'open MiB/s':>11} "
          f"{'seal us/frame':>14} {'open us/frame':>14}")
    for suite in Suite:
        for size in SIZES:
            seal, opened, count = frames(suite, size, budget)
            per = size / (1 << 20)
            print(f"{suite.name:<20} {size:>9} {count:>7} {seal:>11.0f} {opened:>11.0f} "
                  f"{per / seal * 1e6:>14.2f} {per / opened * 1e6:>14.2f}")
    alice, beacon = Identity.generate(), Identity.generate()
    job = JobKey.generate()
    logins = {
        "password (SPAKE2)": (ClientConfig(password="pw"), ServerConfig(password="pw")),
        "pinned keys": (ClientConfig(identity=alice, host_keys=PinnedHostKey(beacon.public_bytes)),
                        ServerConfig(identity=beacon,
                                     authorized_keys=AuthorizedKeys([alice.public_bytes]))),
        "job key": (job.client_config(0, 1), job.server_config(1)),
    }
    print()
    for name, (client_config, server_config) in logins.items():
        seconds = best_of(3 if quick else 10, handshake, client_config, server_config)
        print(f"handshake, {name:<18} {seconds * 1e3:8.2f} ms (both ends, one core)")


if __name__ == "__main__":
    main()
