"""The browser volunteer: a page that runs a stream's function with Pyodide in a Web Worker.

The coordinator calls :func:`mount` on its web app; a browser that opens the app's root URL
gets the page, whose module worker loads Pyodide from ``/pyodide/``, joins ``/volunteer`` by
WebSocket and computes items (protocol: ``docs/contracts/stream-volunteer.md``). Pyodide's files
come from the npm package, installed once by ``python -m shoal.stream.web.install``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shoal.errors import ConfigurationError

# install.py is not imported here at module level: `python -m shoal.stream.web.install` runs
# it as __main__, and runpy warns when the package has already imported it.
__all__ = ["ensure_pyodide", "mount", "pyodide_dir"]


def pyodide_dir() -> Path:
    """The folder served under ``/pyodide/`` (it may not exist yet)."""
    from shoal.stream.web.install import files_dir

    return files_dir()


def ensure_pyodide(prefix: Path | None = None) -> Path:
    """Install Pyodide with npm unless it is there; return the folder holding its files.

    Raises ConfigurationError, saying what to do, when npm is missing or fails.
    """
    from shoal.stream.web.install import PyodideInstallError
    from shoal.stream.web.install import ensure_pyodide as install_pyodide

    try:
        return install_pyodide(prefix, quiet=True)
    except PyodideInstallError as error:
        raise ConfigurationError(f"cannot install Pyodide: {error}") from None


def mount(app: Any, *, pyodide_files: Path | None = None) -> None:
    """Serve the volunteer page at ``/``, its scripts under ``/static/`` and Pyodide under
    ``/pyodide/`` on ``app`` (a FastAPI or Starlette app).

    Pyodide is looked for in ``pyodide_files`` (default :func:`pyodide_dir`) at every request, so
    installing it while the coordinator runs is enough; until then the page says what to run.
    """
    from shoal.stream.web.routes import VolunteerSite  # starlette only when a server is built

    site = VolunteerSite(pyodide_files or pyodide_dir())
    methods = ["GET", "HEAD"]
    app.add_route("/", site.index, methods=methods, include_in_schema=False)
    app.add_route("/static/{path:path}", site.static, methods=methods, include_in_schema=False)
    app.add_route("/pyodide/{path:path}", site.pyodide, methods=methods, include_in_schema=False)
