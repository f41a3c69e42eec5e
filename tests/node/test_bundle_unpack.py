"""Bundles unpack safely on every Python >= 3.10 this machine has (Debian 12's own 3.11.2
has no ``tarfile`` filters), and a beacon that cannot unpack a bundle says why and leaves
nothing behind."""

from __future__ import annotations

import glob
import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon

from shoal.node.bundles import BundleStore, make_bundle
from shoal.node.client import BeaconClient
from shoal.node.protocol import BeaconError

pytestmark = pytest.mark.timeout(60)

SRC = Path(__file__).resolve().parents[2] / "src"


def _pythons() -> list[str]:
    """Debian's python3 and pyenv's 3.10+, those that run here."""
    found = []
    for path in ["/usr/bin/python3", *sorted(glob.glob(os.path.expanduser(
            "~/.pyenv/versions/3.*/bin/python")))]:
        try:
            done = subprocess.run([path, "-c", "import sys; print(sys.version_info >= (3, 10))"],
                                  capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.stdout.strip() == "True":
            found.append(path)
    return found


# Run by each interpreter with only shoal's source on its path (no third-party package:
# bundles need none), so Debian's bare python3 takes part.
CHECK = r"""
import io, os, sys, tarfile, tempfile
from pathlib import Path
from shoal.node.bundles import HAS_DATA_FILTER, BundleStore, make_bundle
from shoal.node.protocol import BeaconError

work = Path(sys.argv[1])
tempfile.tempdir = str(work / "tmp")
(work / "tmp").mkdir()
src = work / "src"
(src / "pkg").mkdir(parents=True)
(src / "prog.py").write_text("print('hi')\n")
(src / "pkg" / "data.txt").write_text("data\n")
os.chmod(src / "prog.py", 0o4755)  # setuid: must not survive unpacking
store = BundleStore(work / "bundles", 1 << 20)
data, sha = make_bundle(src)
store.store(sha, data)
folder = store.unpack(sha)
assert (folder / "prog.py").read_text() == "print('hi')\n"
assert (folder / "pkg" / "data.txt").read_text() == "data\n"
assert not os.stat(folder / "prog.py").st_mode & 0o7000

def bundle(*members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return buffer.getvalue()

def member(name, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info

import hashlib
bad = {"../escape": member("../escape"), "/etc/evil": member("/etc/evil"),
       "link": member("link", tarfile.SYMTYPE, "/etc/passwd"),
       "hard": member("hard", tarfile.LNKTYPE, "../../x"),
       "dev": member("dev", tarfile.CHRTYPE), "fifo": member("fifo", tarfile.FIFOTYPE),
       "nul": member("x" * 120 + "\0y")}
for label, info in bad.items():
    data = bundle(member("ok.txt"), info)
    sha = hashlib.sha256(data).hexdigest()
    store.store(sha, data)
    try:
        store.unpack(sha)
    except BeaconError as exc:
        assert exc.code == "bundle", exc.code
        assert "refused" in str(exc), str(exc)
    else:
        raise AssertionError(f"{label}: unpacked")
    assert not (work / "escape").exists()
left = [p for p in (work / "tmp").iterdir() if p != folder]
assert not left, left
print("ok", sys.version.split()[0], "filter" if HAS_DATA_FILTER else "own checks")
"""


@pytest.mark.parametrize("python", _pythons() or [pytest.param("", marks=pytest.mark.skip(
    reason="no Python >= 3.10 other than this one found"))])
def test_bundles_unpack_safely_and_refuse_bad_members_on_every_python(python: str,
                                                                      tmp_path: Path) -> None:
    done = subprocess.run([python, "-c", CHECK, str(tmp_path)], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ, PYTHONPATH=str(SRC)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok "), done.stdout
    print(python, done.stdout.strip())


def test_without_tarfile_filters_the_own_checks_still_unpack_safely(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path Debian 12's 3.11.2 takes, on this Python too."""
    import shoal.node.bundles as bundles

    monkeypatch.setattr(bundles, "HAS_DATA_FILTER", False)
    original = tarfile.TarFile.extractall

    def no_filter(self: tarfile.TarFile, *args: object, **kwargs: object) -> None:
        if "filter" in kwargs:
            raise TypeError("TarFile.extractall() got an unexpected keyword argument 'filter'")
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tarfile.TarFile, "extractall", no_filter)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.py").write_text("a = 1\n")
    (src / "sub" / "b.txt").write_text("b\n")
    store = BundleStore(tmp_path / "bundles", 1 << 20)
    data, sha = make_bundle(src)
    store.store(sha, data)
    folder = store.unpack(sha)
    try:
        assert (folder / "a.py").read_text() == "a = 1\n"
        assert (folder / "sub" / "b.txt").read_text() == "b\n"
        assert (folder / "a.py").stat().st_mode & 0o777 == 0o600
    finally:
        import shutil

        shutil.rmtree(folder)


def _nul_bundle() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("x" * 120 + "\0evil")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    data = buffer.getvalue()
    import hashlib

    return data, hashlib.sha256(data).hexdigest()


def test_a_beacon_that_cannot_unpack_a_bundle_tells_the_runner_why_and_removes_its_folder(
        start_beacon: Callable[..., Beacon], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "beacon-tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the beacon's job folders go here
    beacon = start_beacon()
    data, sha = _nul_bundle()
    with BeaconClient.connect("127.0.0.1", beacon.port, password=PASSWORD) as client:
        client.send_bundle(data, sha)
        with pytest.raises(BeaconError) as caught:
            client.run(bundle=sha, program="prog.py", ranks=[0], size=1)
        assert caught.value.code == "bundle"
        assert "NUL byte" in str(caught.value), caught.value
        # The session goes on: the beacon still answers.
        assert client.status()["pid"] == beacon.pid
    assert list(temp.iterdir()) == []
