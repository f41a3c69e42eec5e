"""Put Pyodide's files where the coordinator serves them from, once, at install time.

Browser volunteers run Python through Pyodide, and they must get it from *our* server, never
from a CDN: the machines a stream runs on may have no internet, and a page that pulls code from
a third party is a page we cannot vouch for. The npm package ``pyodide`` holds exactly the core
interpreter (WebAssembly, its JS loader and the standard library), so we install it with npm
into a cache folder and :func:`shoal.stream.web.mount` serves that folder under ``/pyodide/``.

    python -m shoal.stream.web.install        # or: python src/shoal/stream/web/install.py

The folder is ``SHOAL_PYODIDE_DIR`` if set, else the user data dir (``~/.local/share/shoal/
pyodide`` on Linux). This file imports nothing from shoal and nothing outside the standard
library but the optional ``platformdirs``, so CI runs it by path before shoal is installed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PYODIDE_VERSION = "314.0.7"
INSTALL_COMMAND = "python -m shoal.stream.web.install"

# What the page needs from the package; a partial install (an interrupted npm) is "missing".
REQUIRED_FILES = (
    "package.json",
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)


class PyodideInstallError(RuntimeError):
    """npm is missing or failed: the message says what to do.

    A RuntimeError rather than a ShoalError because this file must import nothing from shoal
    (see the module docstring); ``shoal.stream.web`` re-raises it as a ConfigurationError.
    """


def cache_dir() -> Path:
    """The npm prefix that holds Pyodide: ``SHOAL_PYODIDE_DIR`` or the user data dir."""
    override = os.environ.get("SHOAL_PYODIDE_DIR")
    if override:
        return Path(override).expanduser()
    try:
        from platformdirs import user_data_dir
    except ImportError:  # the same folder platformdirs picks on Linux
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "shoal" / "pyodide"
    return Path(user_data_dir("shoal")) / "pyodide"


def files_dir(prefix: Path | None = None) -> Path:
    """The folder served under ``/pyodide/``: the package inside the npm prefix."""
    return (prefix or cache_dir()) / "node_modules" / "pyodide"


def missing_files(folder: Path | None = None) -> list[str]:
    """Names of the required files absent from ``folder``, or ``["package.json (version ...)"]``
    when another version of Pyodide is there; empty when the install is usable."""
    folder = folder or files_dir()
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        return missing
    try:
        version = json.loads((folder / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        version = None
    if version != PYODIDE_VERSION:
        return [f"package.json (version {version}, expected {PYODIDE_VERSION})"]
    return []


def ensure_pyodide(prefix: Path | None = None, *, quiet: bool = False) -> Path:
    """Install Pyodide into ``prefix`` (default :func:`cache_dir`) unless it is already there.

    Returns the folder holding the files. Raises :class:`PyodideInstallError` when npm is absent
    or the install did not produce the expected files.
    """
    prefix = prefix or cache_dir()
    folder = files_dir(prefix)
    if not missing_files(folder):
        return folder
    try:
        prefix.mkdir(parents=True, exist_ok=True)
        lock = open(prefix / ".shoal-install.lock", "w")  # noqa: SIM115 (a with below)
    except OSError as error:
        raise PyodideInstallError(
            f"cannot write to {prefix} ({error.strerror}): set SHOAL_PYODIDE_DIR to a folder "
            "you may write to") from None
    # Two installs at once (parallel test runs, two coordinators starting) would interleave
    # npm's writes into one folder: the second waits, then finds the files there.
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not missing_files(folder):
            return folder
        _npm_install(prefix, quiet=quiet)
    still_missing = missing_files(folder)
    if still_missing:
        raise PyodideInstallError(
            f"npm installed pyodide@{PYODIDE_VERSION} but {folder} lacks: "
            + ", ".join(still_missing))
    return folder


# What makes the folder an npm project of its own: npm installs into the nearest folder
# above its working directory that holds a package.json.
PROJECT = {"name": "shoal-pyodide", "private": True,
           "description": "Pyodide's files, served to browser volunteers by shoal"}


def _npm_install(prefix: Path, *, quiet: bool) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise PyodideInstallError(
            "npm is not installed: install Node.js and npm (Debian: apt-get install npm), "
            f"then run {INSTALL_COMMAND}")
    # Run *in* the folder rather than with --prefix: npm takes a --prefix given on its
    # command line as the global prefix too, and then looks for the machine's global npmrc
    # (a registry, a proxy, the cafile of a TLS-inspecting network) under it, never finding
    # it.  Here npm reads its configuration as it would anywhere else on the machine.
    package = prefix / "package.json"
    if not package.is_file():
        package.write_text(json.dumps(PROJECT, indent=2) + "\n")
    command = [npm, "install", "--no-save", "--no-audit", "--no-fund",
               f"pyodide@{PYODIDE_VERSION}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=prefix)
    if not quiet and done.stdout.strip():
        print(done.stdout.strip(), file=sys.stderr)
    if done.returncode != 0:
        raise PyodideInstallError(
            f"`{' '.join(command)}` in {prefix} failed (exit {done.returncode}):\n"
            f"{done.stderr.strip()}")


def main() -> int:
    try:
        folder = ensure_pyodide()
    except PyodideInstallError as error:
        print(f"shoal: could not install Pyodide: {error}", file=sys.stderr)
        return 1
    print(f"Pyodide {PYODIDE_VERSION} is in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
