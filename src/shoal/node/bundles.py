"""Bundles: a job's files as one tar, named by its SHA-256, and the beacon's cache of them.

A **bundle** is a tar of the program's files (:func:`make_bundle`), built the
same way every time, so the same files give the same hash.  The beacon keeps
each one it received (0600, in its cache folder), so a runner asks
:meth:`BundleStore.has` first and sends the bytes only once.  For each job
the bundle is unpacked into a fresh private temp folder (0700).  A bundle
holds regular files and folders only (that is what :func:`make_bundle` makes):
every member is checked before anything is written, and a member whose name is
absolute, climbs out with ``..``, holds a NUL byte, or that is a link, a device
or a FIFO is refused with a :class:`~shoal.node.protocol.BeaconError` naming
it, leaving nothing behind.  Where ``tarfile`` has its ``data`` filter (Python
3.10.12+, 3.11.4+) it is used as well; on older patch releases (Debian 12's
3.11.2) the checked members are written by :func:`_write_members` itself, with
private modes, so every Python >= 3.10 unpacks alike.

The cache is bounded: after every new bundle (and when the beacon starts),
bundles unused for longer than ``max_age`` seconds are removed, then the
least recently used ones until the cache holds at most ``max_total`` bytes.
A bundle counts as used when a runner asks for it or a job unpacks it (its
file's modification time is the clock).  The bundle just stored is never
removed, even alone over the budget: its job is about to start.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from shoal.node.config import write_private
from shoal.node.protocol import BeaconError

log = logging.getLogger("shoal.beacon")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_hash(sha256: object) -> str:
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        raise BeaconError("a bundle is named by 64 lowercase hex digits (SHA-256)",
                          code="bundle")
    return sha256


class BundleStore:
    """Bundles received, by SHA-256, in one folder, at most ``max_total`` bytes in all
    and none unused for more than ``max_age`` seconds."""

    def __init__(self, folder: Path, max_size: int, *, max_total: int | None = None,
                 max_age: float | None = None) -> None:
        self.folder = folder
        self.max_size = max_size
        self.max_total = max_total
        self.max_age = max_age
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.folder / f"{check_hash(sha256)}.tar"

    def has(self, sha256: str) -> bool:
        """Whether the bundle is here; asking counts as using it (it is kept longer)."""
        path = self.path(sha256)
        if not path.is_file():
            return False
        _touch(path)
        return True

    def store(self, sha256: str, data: bytes) -> None:
        """Keep ``data`` if its SHA-256 is ``sha256`` (else BeaconError, nothing kept)."""
        path = self.path(sha256)
        if len(data) > self.max_size:
            raise BeaconError(f"the bundle is {len(data)} bytes, more than this beacon's "
                              f"limit of {self.max_size}", code="bundle")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise BeaconError(f"the bundle's SHA-256 is {actual}, not {sha256}: refused",
                              code="bundle")
        write_private(path, data)
        self.prune(keep=sha256)

    def unpack(self, sha256: str) -> Path:
        """A new private folder holding the bundle's files (the caller removes it)."""
        if not self.has(sha256):
            raise BeaconError(f"this beacon has no bundle {sha256}; send it first",
                              code="bundle")
        folder = Path(tempfile.mkdtemp(prefix="shoal-job-"))
        try:
            with tarfile.open(self.path(sha256), "r:") as tar:
                extract(tar, folder)
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if not isinstance(exc, Exception):
                raise
            why = str(exc) if isinstance(exc, BeaconError) else f"{type(exc).__name__}: {exc}"
            raise BeaconError(f"cannot unpack bundle {sha256}: {why}", code="bundle") from None
        return folder

    def prune(self, keep: str | None = None) -> list[str]:
        """Remove stale bundles, then the least recently used over the budget; their hashes."""
        entries = []
        for path in self.folder.glob("*.tar"):
            with contextlib.suppress(OSError):  # another prune may have removed it
                info = path.stat()
                entries.append((info.st_mtime, info.st_size, path))
        entries.sort()  # least recently used first
        now, total = time.time(), sum(size for _, size, _ in entries)
        removed = []
        for used, size, path in entries:
            sha = path.stem
            if sha == keep:
                continue
            stale = self.max_age is not None and now - used > self.max_age
            over = self.max_total is not None and total > self.max_total
            if not (stale or over):
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
            removed.append(sha)
            log.info("bundle %s removed from the cache (%s)", sha,
                     "unused too long" if stale else "cache over its size")
        return removed


# tarfile's extraction filters exist from 3.10.12 / 3.11.4 / 3.12 on, not before.
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


def check_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The members of a bundle, each checked; BeaconError naming the first bad one."""
    members = tar.getmembers()
    for member in members:
        name = member.name
        why = None
        if "\0" in name:
            why = "its name holds a NUL byte"
        elif os.path.isabs(name):
            why = "its path is absolute"
        elif ".." in name.split("/"):
            why = "its path climbs out with '..'"
        elif not name.strip("/") or name.strip("/") == ".":
            why = "it has no name"
        elif not (member.isreg() or member.isdir()):
            why = ("it is a link" if member.issym() or member.islnk()
                   else "it is a device, FIFO or other special file")
        if why:
            raise BeaconError(f"the bundle's member {name!r} is refused: {why} (a bundle "
                              "holds regular files and folders inside it only)", code="bundle")
    return members


def extract(tar: tarfile.TarFile, folder: Path) -> None:
    """Unpack a bundle into ``folder`` safely, on every Python >= 3.10."""
    members = check_members(tar)
    if HAS_DATA_FILTER:
        tar.extractall(folder, members=members, filter="data")
    else:
        _write_members(tar, members, folder)


def _write_members(tar: tarfile.TarFile, members: list[tarfile.TarInfo], folder: Path) -> None:
    """Write checked members (files and folders only) below ``folder``, never following a link.

    The fallback for Pythons without ``tarfile``'s ``data`` filter.  Modes are
    those of the filter: permission bits only, owner read/write always, no
    write for group or others; owners and times are not restored.
    """
    root = os.path.realpath(folder)
    for member in members:
        target = os.path.realpath(os.path.join(root, member.name))
        if os.path.commonpath([root, target]) != root:
            raise BeaconError(f"the bundle's member {member.name!r} would land outside the "
                              "job's folder: refused", code="bundle")
        if member.isdir():
            os.makedirs(target, mode=0o700, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None  # a regular file always has its data
        mode = (member.mode & 0o755) | 0o600
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out, source:
            shutil.copyfileobj(source, out)


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def make_bundle(root: str | os.PathLike[str], files: Sequence[str] | None = None
                ) -> tuple[bytes, str]:
    """A tar of ``files`` (paths relative to ``root``; default: all under root) and its SHA-256.

    Members are sorted with fixed owners and times, so the same files give the
    same hash and a beacon that has them is not sent them again.
    """
    base = Path(root)
    names = sorted(files) if files is not None else sorted(
        str(p.relative_to(base)) for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            data = (base / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, 0
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()
