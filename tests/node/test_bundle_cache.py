"""The beacon's bundle cache stays bounded: stale bundles go, then the least recently used."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from shoal.node.bundles import BundleStore, make_bundle


def _bundle(n: int, size: int = 1000) -> tuple[str, bytes]:
    data = bytes([n]) * size
    return hashlib.sha256(data).hexdigest(), data


def _age(store: BundleStore, sha: str, seconds: float) -> None:
    """Pretend the bundle was last used ``seconds`` ago."""
    when = time.time() - seconds
    os.utime(store.path(sha), (when, when))


def test_over_its_size_the_cache_drops_the_least_recently_used_bundles_first(
        tmp_path: Path) -> None:
    store = BundleStore(tmp_path, 1 << 20, max_total=2500)
    shas = []
    for n in range(3):
        sha, data = _bundle(n)
        store.store(sha, data)
        _age(store, sha, 300 - 100 * n)  # bundle 0 the oldest
        shas.append(sha)
    assert [store.path(s).exists() for s in shas] == [False, True, True]


def test_a_bundle_asked_for_counts_as_used_and_outlives_a_newer_unused_one(
        tmp_path: Path) -> None:
    store = BundleStore(tmp_path, 1 << 20, max_total=2500)
    old, old_data = _bundle(1)
    new, new_data = _bundle(2)
    store.store(old, old_data)
    store.store(new, new_data)
    _age(store, old, 300)
    _age(store, new, 200)
    assert store.has(old)  # a runner asks for it: it is used now
    third, third_data = _bundle(3)
    store.store(third, third_data)
    assert store.path(old).exists() and store.path(third).exists()
    assert not store.path(new).exists()


def test_bundles_unused_for_longer_than_the_age_limit_are_removed(tmp_path: Path) -> None:
    store = BundleStore(tmp_path, 1 << 20, max_age=3600)
    stale, stale_data = _bundle(1)
    fresh, fresh_data = _bundle(2)
    store.store(stale, stale_data)
    store.store(fresh, fresh_data)
    _age(store, stale, 7200)
    assert store.prune() == [stale]
    assert not store.has(stale) and store.has(fresh)


def test_the_bundle_just_stored_is_kept_even_alone_over_the_budget(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "cache", 1 << 20, max_total=100)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "prog.py").write_text("print('hi')\n" * 500)
    data, sha = make_bundle(tmp_path / "proj")
    store.store(sha, data)
    assert store.has(sha)
    folder = store.unpack(sha)  # its job can still start
    try:
        assert (folder / "prog.py").read_text().startswith("print('hi')")
    finally:
        shutil.rmtree(folder)


def test_a_file_that_vanishes_while_the_folder_is_bundled_is_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "prog.py").write_text("print('hi')\n")
    (proj / "status.json.tmp").write_text("{}")
    real_read = Path.read_bytes

    def read_after_a_rename(self: Path) -> bytes:
        if self.name == "status.json.tmp":  # another program renames it away first
            self.rename(self.with_name("status.json"))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_after_a_rename)
    data, _ = make_bundle(proj)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["prog.py"]
    (proj / "status.json").rename(proj / "status.json.tmp")
    with pytest.raises(FileNotFoundError):  # a file named explicitly must exist
        make_bundle(proj, ["prog.py", "status.json.tmp"])
