"""``shoal beacon``: up, status, down, password, key, authorize; files and bundles."""

from __future__ import annotations

import io
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from node_helpers import Beacon, shoal

from process_support import alive, wait_for
from shoal.node.bundles import BundleStore
from shoal.node.client import BeaconError, make_bundle

pytestmark = pytest.mark.timeout(60)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_up_status_and_down_start_report_and_stop_a_beacon(
        start_beacon: Callable[..., Beacon], config_dir: Path) -> None:
    beacon = start_beacon()
    status = shoal("beacon", "status")
    assert status.returncode == 0
    assert f"running, pid {beacon.pid}, port {beacon.port}" in status.stdout
    assert "password login: on" in status.stdout
    again = shoal("beacon", "up", "--bind", "127.0.0.1", "--port", "0")
    assert again.returncode == 1 and "already running" in again.stderr
    down = shoal("beacon", "down")
    assert down.returncode == 0 and f"pid {beacon.pid}" in down.stdout
    assert wait_for(lambda: not alive(beacon.pid), 5)
    assert not (config_dir / "state" / "beacon.pid").exists()
    stopped = shoal("beacon", "status")
    assert stopped.returncode == 3 and "not running" in stopped.stdout


def test_up_takes_bind_and_the_old_host_option_is_one_line_pointing_to_bind(
        config_dir: Path) -> None:
    assert shoal("beacon", "password", "--stdin", stdin="long enough pw\n").returncode == 0
    old = shoal("beacon", "up", "--host", "127.0.0.1", "--port", "0")
    assert old.returncode == 2
    assert old.stderr.count("\n") == 1, old.stderr
    assert "--host is the hosts to run on (mpiexec's meaning); use --bind ADDR" in old.stderr
    assert not (config_dir / "state" / "beacon.pid").exists()
    helped = shoal("beacon", "up", "--help")
    assert "--bind ADDR" in helped.stdout and "--host" not in helped.stdout
    from shoal import ports

    assert f"else {ports.BEACON}" in helped.stdout
    up = shoal("beacon", "up", "--bind", "127.0.0.1", "--port", "0")
    try:
        assert up.returncode == 0, up.stderr
        assert "listening on 127.0.0.1:" in up.stdout
    finally:
        shoal("beacon", "down")


def test_status_into_a_reader_that_stopped_ends_quietly_as_unix_tools_do(
        config_dir: Path) -> None:
    import os
    import subprocess
    import sys

    from shoal.security import Identity

    config_dir.mkdir(parents=True, exist_ok=True)
    keys = "".join(Identity.generate(f"runner{i}").public_line() + "\n" for i in range(3000))
    # A long status: ~200 KB, more than a pipe holds (64 KiB).
    (config_dir / "authorized_keys").write_text(keys)
    (config_dir / "authorized_keys").chmod(0o600)
    proc = subprocess.Popen([sys.executable, "-m", "shoal", "beacon", "status"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # `| head -1`: one line, then the reader is gone
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141, err  # 128 + SIGPIPE, as a Unix tool's
    assert err == ""


def test_up_refuses_to_start_a_beacon_nobody_could_log_in_to(config_dir: Path) -> None:
    done = shoal("beacon", "up", "--bind", "127.0.0.1", "--port", "0")
    assert done.returncode == 2
    assert "shoal beacon password" in done.stderr and "authorize" in done.stderr
    assert not (config_dir / "state" / "beacon.pid").exists()


def test_the_password_identity_and_folders_are_private_to_the_user(config_dir: Path) -> None:
    assert shoal("beacon", "password", "--stdin", stdin="long enough pw\n").returncode == 0
    assert shoal("beacon", "key").stdout.startswith("shoal-ed25519 ")
    assert _mode(config_dir) == 0o700
    assert _mode(config_dir / "password") == 0o600
    assert _mode(config_dir / "identity") == 0o600
    (config_dir / "password").chmod(0o644)
    done = shoal("beacon", "up", "--bind", "127.0.0.1", "--port", "0")
    assert done.returncode == 2 and "chmod 600" in done.stderr


def test_a_short_password_is_refused(config_dir: Path) -> None:
    done = shoal("beacon", "password", "--stdin", stdin="short\n")
    assert done.returncode == 2 and "at least 8" in done.stderr


def test_status_lists_the_authorized_keys(config_dir: Path, tmp_path: Path) -> None:
    from shoal.security import Identity

    runner = Identity.generate("bob@desk")
    (tmp_path / "bob.pub").write_text(runner.public_line() + "\n")
    assert shoal("beacon", "authorize", str(tmp_path / "bob.pub")).returncode == 0
    assert shoal("beacon", "authorize", str(tmp_path / "bob.pub")).returncode == 0  # no twice
    status = shoal("beacon", "status")
    assert "authorized keys: 1" in status.stdout
    assert f"{runner.fingerprint} bob@desk" in status.stdout
    assert _mode(config_dir / "authorized_keys") == 0o600


def test_a_bundle_with_a_member_outside_its_folder_is_not_unpacked(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        info = tarfile.TarInfo("../escaped.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    import hashlib

    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    store = BundleStore(tmp_path / "bundles", 1 << 20)
    store.store(sha, data)
    with pytest.raises(BeaconError, match="cannot unpack"):
        store.unpack(sha)
    assert not list(tmp_path.parent.glob("escaped.py"))


def test_a_bundle_holds_the_files_and_unpacks_into_a_private_folder(tmp_path: Path) -> None:
    (tmp_path / "proj" / "pkg").mkdir(parents=True)
    (tmp_path / "proj" / "prog.py").write_text("print(1)\n")
    (tmp_path / "proj" / "pkg" / "mod.py").write_text("X = 2\n")
    data, sha = make_bundle(tmp_path / "proj")
    store = BundleStore(tmp_path / "bundles", 1 << 20)
    store.store(sha, data)
    folder = store.unpack(sha)
    try:
        assert _mode(folder) == 0o700
        assert (folder / "pkg" / "mod.py").read_text() == "X = 2\n"
        assert (folder / "prog.py").read_text() == "print(1)\n"
    finally:
        import shutil

        shutil.rmtree(folder)
