"""Compile shoal's own modules once, so N ranks do not each compile them.

Python normally caches bytecode in ``__pycache__`` on first import, but not
when ``PYTHONDONTWRITEBYTECODE`` is set (common in containers and CI): then
every rank of every job compiles every shoal module again, which costs tens
of milliseconds of start-up per rank.  The launcher compiles them once.  A read-only
installation is left as it is.

Checking that every cached file is current costs some 15-20 ms (each one is opened);
so the launcher writes down, next to the cache, a digest of what
the check depends on (every source's path, modification time and size, and which
cached files exist), and while the digest still matches it skips the check: a scan
of the folders, about a millisecond.
"""

from __future__ import annotations

import os
import sys

_done: set[str] = set()   # packages checked by this process


def _digest(package: str) -> str:
    """What decides whether the cache is current: sources' mtime and size, cached names."""
    import hashlib

    entries: list[str] = []
    folders = [package]
    tag = f".{sys.implementation.cache_tag}.pyc"
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    info = entry.stat()
                    entries.append(f"{entry.path}\0{info.st_mtime_ns}\0{info.st_size}")
                elif entry.name.endswith(tag):
                    entries.append(entry.path)
    entries.sort()
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _compile_stale(package: str) -> None:
    """Compile every source whose cached file is missing or does not match it.

    Not ``compileall``: it compares only the modification time, to the second, so a
    file changed twice in one second stays stale; the import system compares the
    size too, and so does this.
    """
    import importlib.util
    import py_compile

    folders = [package]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    cached = importlib.util.cache_from_source(entry.path)
                    info = entry.stat()
                    expected = b"\0\0\0\0" + b"".join(  # flags 0: checked by mtime and size
                        (value & 0xFFFFFFFF).to_bytes(4, "little")
                        for value in (int(info.st_mtime), info.st_size))
                    try:
                        with open(cached, "rb") as handle:
                            header = handle.read(16)
                    except OSError:
                        header = b""
                    if header[:4] != importlib.util.MAGIC_NUMBER or header[4:] != expected:
                        try:
                            py_compile.compile(entry.path, cached, doraise=True)
                        except py_compile.PyCompileError:
                            pass  # a syntax error: the import will say so


def ensure_compiled(package: str | None = None) -> None:
    """Write missing or stale ``.pyc`` files for a package (default: shoal), best effort."""
    package = package or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if package in _done or not sys.dont_write_bytecode:
        return  # done already, or Python writes the cache itself on first import
    _done.add(package)
    marker = os.path.join(package, "__pycache__",
                          f"shoal-compiled.{sys.implementation.cache_tag}")
    try:
        try:
            with open(marker, encoding="ascii") as handle:
                if handle.read() == _digest(package):
                    return
        except (OSError, ValueError):
            pass
        _compile_stale(package)
        partial = f"{marker}.{os.getpid()}"
        try:
            with open(partial, "w", encoding="ascii") as handle:
                handle.write(_digest(package))
            os.replace(partial, marker)  # whole or not at all, even with jobs side by side
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    except OSError:
        pass  # a read-only installation: ranks compile in memory as before
