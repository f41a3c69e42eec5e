"""The documented bytes, recomputed independently from the module docstrings."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from security_helpers import C2S, S2C, connect

from shoal.security import JobKey, Suite
from shoal.security import records as rec
from shoal.security.channel import FRAME_DATA


def hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(secret)


def records_of(wire: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(wire):
        (length,) = struct.unpack_from(">I", wire, pos)
        out.append(wire[pos:pos + 4 + length])
        pos += 4 + length
    return out


@pytest.mark.timeout(30)
def test_a_job_login_and_its_first_frame_match_the_documented_bytes() -> None:
    job = JobKey.generate()
    relay = connect(job.client_config(0, 1, suites=(Suite.AES_256_GCM,)), job.server_config(1))
    relay.client.send(b"documented")
    relay.pump()
    ch, cf, frame = records_of(bytes(relay.wire[C2S]))
    sh, sf = records_of(bytes(relay.wire[S2C]))

    # HELLO: magic, version, method 3 (JOB), suites, reserved, max frame, nonce, name, data.
    assert ch[4] == rec.CLIENT_HELLO and ch[5:13] == b"SHOALSEC" and ch[13:16] == b"\x01\x03\x01"
    assert ch[16] == 0 and struct.unpack(">I", ch[17:21])[0] == 16 << 20
    name_len = struct.unpack(">H", ch[53:55])[0]
    assert ch[55:55 + name_len] == b"rank 0" and ch[55 + name_len:] == b"\x00\x00"
    assert sh[4] == rec.SERVER_HELLO and sh[15] == int(Suite.AES_256_GCM)

    # FINISHED: MACs over the transcript, with keys from th1.
    th1 = hashlib.sha256(ch + sh).digest()
    sfk = hkdf(job.key, th1, b"shoal/1 server finished")
    cfk = hkdf(job.key, th1, b"shoal/1 client finished")
    assert sf[5:] == hmac.digest(sfk, hashlib.sha256(ch + sh + sf[:5]).digest(), "sha256")
    assert cf[5:] == hmac.digest(cfk, hashlib.sha256(ch + sh + sf + cf[:5]).digest(), "sha256")

    # The first frame: header as associated data, nonce = iv XOR sequence number.
    th = hashlib.sha256(ch + sh + sf + cf).digest()
    assert relay.server.handshake.result.session_id == th
    c2s = hkdf(job.key, th, b"shoal/1 c2s")
    key = HKDFExpand(hashes.SHA256(), 32, b"shoal/1 key").derive(c2s)
    iv = HKDFExpand(hashes.SHA256(), 12, b"shoal/1 iv").derive(c2s)
    length, kind, flags, seq = struct.unpack(">IBBQ", frame[:14])
    assert (length, kind, flags, seq) == (len(frame) - 4, FRAME_DATA, 0, 0)
    nonce = bytes(a ^ b for a, b in zip(iv, (0).to_bytes(12, "big"), strict=True))
    assert AESGCM(key).decrypt(nonce, frame[14:], frame[:14]) == b"documented"
