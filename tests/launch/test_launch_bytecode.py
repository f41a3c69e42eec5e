"""The launcher keeps shoal's bytecode cache current under PYTHONDONTWRITEBYTECODE, and
skips the per-file check while nothing changed."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import sys
from pathlib import Path

import pytest

from shoal.launch import bytecode

pytestmark = pytest.mark.timeout(30)


def _package(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("A = 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "mod.py").write_text("B = 2\n")
    return package


def _compile(package: Path) -> None:
    bytecode._done.discard(str(package))
    bytecode.ensure_compiled(str(package))


def _cached(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_the_cache_is_written_then_the_check_is_skipped_until_a_source_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    package = _package(tmp_path)
    mod = package / "sub" / "mod.py"
    _compile(package)
    assert _cached(mod).is_file() and _cached(package / "__init__.py").is_file()

    calls: list[str] = []
    real = py_compile.compile

    def counted(source: str, *args: object, **kwargs: object) -> str | None:
        calls.append(source)
        return real(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(py_compile, "compile", counted)
    _compile(package)
    assert calls == []  # nothing changed: not even a check

    # Changed within the same second as it was compiled: only the size tells.
    mod.write_text("B = 'changed, and longer'\n")
    _compile(package)
    assert calls == [str(mod)]
    # The cache holds the new source: its header records the new size.
    header = _cached(mod).read_bytes()[:16]
    assert int.from_bytes(header[12:16], "little") == mod.stat().st_size

    _cached(mod).unlink()  # a cached file lost: noticed, written again
    _compile(package)
    assert len(calls) == 2 and _cached(mod).is_file()


def test_nothing_is_written_when_python_writes_its_cache_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    package = _package(tmp_path)
    _compile(package)
    assert not (package / "__pycache__").exists()


def test_a_read_only_package_is_left_alone(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        monkeypatch.setattr(os, "replace", _refuse)  # root may write anywhere
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    package = _package(tmp_path)
    _compile(package)  # no exception, no half-written marker left behind
    assert not list((package / "__pycache__").glob("shoal-compiled.*.*"))


def _refuse(*args: object) -> None:
    raise PermissionError("read-only file system")
