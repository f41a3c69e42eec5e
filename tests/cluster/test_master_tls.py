"""``--certfile/--keyfile``: the API over HTTPS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cluster_helpers import Master, shoal
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_the_api_is_served_over_https_with_the_given_certificate(
        start_master: Callable[..., Master], tmp_path: Path) -> None:
    certfile, keyfile = self_signed(tmp_path)
    master = start_master(["--certfile", str(certfile), "--keyfile", str(keyfile)])
    assert master.url.startswith("https://")
    assert master.api("GET", "/api/v1/workers") == {"items": [], "total": 0}
    with pytest.raises(httpx.HTTPError):  # not to a client that does not trust it
        httpx.get(f"{master.url}/healthz", timeout=5)


def test_a_certificate_without_its_key_is_a_usage_error(tmp_path: Path) -> None:
    done = shoal("master", "--certfile", "/x.pem",
                 env={**os.environ, "SHOAL_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 2 and "--keyfile" in done.stderr
