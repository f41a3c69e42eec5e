"""Seal/open throughput of the secure channel's frames, and the cost of a handshake.

    python benchmarks/security_frames.py [--quick]

For each AEAD and payload size, on one core, in this process, without sockets:

* ``seal``: ``SecureChannel.send`` (header, nonce, encryption into one buffer);
* ``seal into``: ``seal(payload, into=buffer)``, the TCP transport's path for
  large frames (a reused buffer);
* ``open``: ``receive_data`` of the sealed bytes (parse, sequence check,
  authenticated decryption);
* ``open_frames``: the TCP transport's path (frames opened where they lie,
  large payloads decrypted into a reused buffer);
* ``AEAD``: the cipher alone (``cryptography``'s encrypt and decrypt with the
  same nonce and associated data): what is left of each figure is framing.

Each figure is the best of a few timed rounds (after a warm-up), so it is the
code's speed, not the machine's noise.  Also timed: a full handshake per
login method, both ends in this process.  Needs ``pip install 'shoal[beacon]'``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import harness
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

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
from shoal.security.channel import OVERHEAD

SIZES = [64, 1024, 16 << 10, 128 << 10]  # up to the TCP transport's frame


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


def frames(suite: Suite, size: int, budget: int) -> tuple[dict[str, float], int]:
    """Microseconds per frame of each path (see the module docstring), and frames per
    round, for one payload size."""
    count = max(50, min(budget // size, 100_000))
    payload = os.urandom(size)
    frame_buffer = memoryview(bytearray(size + OVERHEAD))
    payload_buffer = memoryview(bytearray(size))
    aead = (AESGCM if suite is Suite.AES_256_GCM else ChaCha20Poly1305)(os.urandom(32))
    nonce, header = os.urandom(12), os.urandom(14)
    ciphertext = aead.encrypt(nonce, payload, header)

    def seal(sender: SecureChannel) -> list[bytes]:
        return [sender.send(payload) for _ in range(count)]

    def seal_into(sender: SecureChannel) -> None:
        for _ in range(count):
            sender.seal(payload, frame_buffer)

    def open_all(receiver: SecureChannel, sealed: list[bytes]) -> None:
        for frame in sealed:
            receiver.receive_data(frame)

    def open_frames(receiver: SecureChannel, sealed: list[bytes]) -> None:
        out: list[object] = []
        for frame in sealed:
            receiver.open_frames(memoryview(frame), out, lambda n: payload_buffer[:n])
            out.clear()

    def cipher() -> None:
        for _ in range(count // 2):
            aead.encrypt(nonce, payload, header)
            aead.decrypt(nonce, ciphertext, header)

    times: dict[str, list[float]] = {name: [] for name in
                                     ("seal", "seal into", "open", "open_frames", "AEAD")}

    def timed(name: str, function, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = function(*args)
        times[name].append(time.perf_counter() - start)
        return result

    for _ in range(5 + 1):  # the first round warms up
        sender, receiver = channel_pair(suite)
        sealed = timed("seal", seal, sender)
        timed("open", open_all, receiver, sealed)
        sender, receiver = channel_pair(suite)
        timed("seal into", seal_into, sender)
        sender, receiver = channel_pair(suite)
        timed("open_frames", open_frames, receiver, seal(sender))
        timed("AEAD", cipher)
    return {name: min(values[1:]) / count * 1e6 for name, values in times.items()}, count


def handshake(client_config: ClientConfig, server_config: ServerConfig) -> None:
    client, server = ClientHandshake(client_config), ServerHandshake(server_config, "bench")
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    assert client.complete and server.complete


def main() -> None:
    quick = harness.plain_options(__doc__)
    budget = (32 if quick else 256) << 20
    names = ("seal", "seal into", "open", "open_frames", "AEAD")
    print("microseconds per frame (AEAD: one encrypt and one decrypt, halved), and the "
          "seal and open rates")
    print(f"{'suite':<18} {'payload':>8} {'frames':>7} "
          + " ".join(f"{name:>11}" for name in names) + f" {'seal MiB/s':>11} {'open MiB/s':>11}")
    for suite in Suite:
        for size in SIZES:
            per_frame, count = frames(suite, size, budget)
            mib = size / (1 << 20)
            print(f"{suite.name:<18} {size:>8} {count:>7} "
                  + " ".join(f"{per_frame[name]:>11.2f}" for name in names)
                  + f" {mib / per_frame['seal'] * 1e6:>11.0f}"
                  f" {mib / per_frame['open'] * 1e6:>11.0f}")
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
