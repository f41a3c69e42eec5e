"""Streams across machines over TLS: HTTPS/WSS coordinators and the volunteers that trust them."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from stream_helpers import LIVENESS, module, start, stop, stream, wait_for_url

from shoal.stream.tls import network_warning, server_certificate


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A self-signed certificate for 127.0.0.1, its key, and a key that is not its own."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shoal test coordinator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_key(key, folder / "key.pem")
    _write_key(ec.generate_private_key(ec.SECP256R1()), folder / "other-key.pem")
    return {name: str(folder / f"{name}.pem") for name in ("cert", "key", "other-key")}


def volunteer(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = start("volunteer", url, "--once", *args)
    try:
        out, err = proc.communicate(timeout=LIVENESS)
    finally:
        stop(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_volunteer_trusts_a_self_signed_coordinator_only_with_cafile(
        tmp_path: Path, pem: dict[str, str]) -> None:
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), *map(str, range(40)), "--start-idle",
                     "--batch", "3", "--bind", "127.0.0.1", "--volunteer-secret", "hunter2",
                     "--certfile", pem["cert"], "--keyfile", pem["key"], stderr=err_file)
        try:
            url = wait_for_url(err, proc, scheme="https")
            refused = volunteer(url, "--secret", "hunter2")
            trusted = volunteer(url, "--secret", "hunter2", "--cafile", pem["cert"])
            try:
                out, _ = proc.communicate(timeout=LIVENESS)
            except subprocess.TimeoutExpired:  # say what the volunteers saw, then fail
                pytest.fail(f"the stream did not end in {LIVENESS} s; the trusted volunteer "
                            f"exited {trusted.returncode}: {trusted.stderr[-2000:]}\n"
                            f"--- the stream's stderr ---\n{err.read_text()[-2000:]}")
        finally:
            stop(proc)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"shoal volunteer: error: cannot verify the certificate of the coordinator at "
        f"wss{url[len('https'):]}volunteer (self-signed certificate); pass --cafile FILE "
        "with its certificate (or its CA's)"]
    assert trusted.returncode == 0, trusted.stderr
    assert "done: 40 items in all" in trusted.stderr
    assert proc.returncode == 0, err.read_text()
    assert out.split() == [str(i * i) for i in range(40)]
    assert "in clear" not in err.read_text()   # TLS, and on loopback: nothing to warn of


class RecordingProxy:
    """A TCP forwarder on 127.0.0.1 that keeps every byte the server sends back through it
    (a WebSocket client masks its frames, the server does not: its bytes read as sent)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.received = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with self.listener:
            client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
        self._pump(upstream, client, self.received)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                if record is not None:
                    record.extend(data)
                sink.sendall(data)
        # shutdown, not just close: the other pump's thread still blocks in recv on these
        # sockets, and a close alone would send no FIN until it returns.
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_the_modules_source_crosses_the_wire_in_clear_only_without_tls(
        tmp_path: Path, pem: dict[str, str], tls: bool) -> None:
    err = tmp_path / "stream.err"
    certificate = ["--certfile", pem["cert"], "--keyfile", pem["key"]] if tls else []
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), "7", "--start-idle", "--bind", "127.0.0.1",
                     "--volunteer-secret", "hunter2-on-the-wire", *certificate, stderr=err_file)
        try:
            pattern = r"https?://127\.0\.0\.1:(\d+)/"
            deadline = time.monotonic() + LIVENESS
            while not (found := re.search(pattern, err.read_text())):
                assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.05)
            proxy = RecordingProxy(int(found.group(1)))
            scheme = "https" if tls else "http"
            joined = volunteer(f"{scheme}://127.0.0.1:{proxy.port}/", "--secret",
                               "hunter2-on-the-wire", "--cafile", pem["cert"])
            out, _ = proc.communicate(timeout=LIVENESS)
        finally:
            stop(proc)
    assert joined.returncode == 0, joined.stderr
    assert out.split() == ["49"]
    assert (b"def square(x):" in proxy.received) is not tls   # in the welcome, as JSON
    assert len(proxy.received) > 100


def test_a_stream_runs_on_a_tls_stream_server_joined_with_its_certificate(
        tmp_path: Path, pem: dict[str, str]) -> None:
    err = tmp_path / "server.err"
    with open(err, "w") as err_file:
        # Its own volunteer trusts its certificate without being told.
        server = start("stream-server", "--port", "0", "--bind", "127.0.0.1", "--secret", "s3",
                       "--workers", "1", "--certfile", pem["cert"], "--keyfile", pem["key"],
                       stderr=err_file)
    try:
        url = wait_for_url(err, server, scheme="https")
        done = stream(module("square"), *map(str, range(20)), "--server", url, "--secret", "s3",
                      "--cafile", pem["cert"], "--batch", "2")
        untrusting = stream(module("square"), "1", "--server", url, "--secret", "s3")
    finally:
        stop(server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(i * i) for i in range(20)]
    assert untrusting.returncode == 1 and untrusting.stdout == ""
    assert ("cannot verify the certificate of the stream-server at wss://127.0.0.1:"
            in untrusting.stderr and "pass --cafile FILE" in untrusting.stderr)


def test_a_bad_certificate_or_key_is_one_error_line_before_anything_starts(
        tmp_path: Path, pem: dict[str, str]) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "stream.toml").write_text(
        f'[stream]\ncertfile = "{tmp_path / "absent.pem"}"\nkeyfile = "{pem["key"]}"\n')
    cases = {
        ("--certfile", str(tmp_path / "absent.pem"), "--keyfile", pem["key"]):
            "absent.pem: no such file or directory",
        ("--certfile", pem["cert"], "--keyfile", pem["other-key"]):
            "give a PEM certificate and the private key that belongs to it",
        ("--certfile", pem["cert"]): "TLS needs both --certfile and --keyfile",
    }
    for args, message in cases.items():
        done = stream(module("square"), "1", "--workers", "1", *args)
        assert done.returncode == 2 and done.stdout == ""
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("shoal stream: error: ") and message in line, line
    from_config = stream(module("square"), "1", "--workers", "1",
                         extra_env={"SHOAL_CONFIG_DIR": str(config)})
    assert from_config.returncode == 2
    assert "cannot read --certfile" in from_config.stderr
    assert "absent.pem: no such file" in from_config.stderr
    served = start("stream-server", "--port", "0", "--certfile", pem["cert"],
                   "--keyfile", pem["other-key"])
    try:
        _, said = served.communicate(timeout=LIVENESS)
    finally:
        stop(served)
    assert served.returncode == 2
    assert "the private key that belongs to it" in said and "serving" not in said


def test_a_network_listener_without_a_secret_or_without_tls_is_warned_of(
        pem: dict[str, str]) -> None:
    def warn(bind: str, secret: bool, tls: bool) -> str | None:
        certificate = server_certificate(pem["cert"], pem["key"]) if tls else None
        return network_warning("shoal stream", bind, secret=secret,
                               secret_option="--volunteer-secret", certificate=certificate)

    clear = warn("0.0.0.0", True, False)
    assert clear is not None and "in clear" in clear and "--certfile" in clear
    open_door = warn("192.0.2.7", False, True)
    assert open_door == ("shoal stream: warning: listening on 192.0.2.7 with no secret: "
                         "anyone who reaches it may join; add --volunteer-secret S")
    both = warn("0.0.0.0", False, False)
    assert both is not None and "no secret and without TLS" in both
    assert warn("0.0.0.0", True, True) is None
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert warn(loopback, False, False) is None


def test_local_workers_need_no_volunteer_secret_to_compute() -> None:
    # The secret guards the network port; our own processes speak over inherited sockets.
    done = stream(module("square"), "2", "3", "--workers", "1", "--volunteer-secret", "x")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "9"] and "refused" not in done.stderr
