"""The HTTP side of the browser volunteer: the page, its scripts and Pyodide's files.

Three routes on the coordinator's app:

    /                  the volunteer page (index.html, with the install state written in)
    /static/<file>     the page's scripts and the ``shoal`` shim that runs inside Pyodide
    /pyodide/<file>    Pyodide's files, from the npm package installed by ``install.py``

Every response carries explicit MIME types (browsers refuse ``.mjs`` modules and stream-compile
``.wasm`` only with the right type, and ``mimetypes`` does not know them everywhere) and the
COOP/COEP headers that make the page cross-origin isolated: only then may the page hand the
worker a SharedArrayBuffer, which Pyodide uses to interrupt Python running in the worker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from shoal.stream.web import install

STATIC_DIR = Path(__file__).resolve().parent / "static"

MEDIA_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".map": "application/json",
    ".zip": "application/zip",
    ".py": "text/x-python; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}

ISOLATION_HEADERS: Mapping[str, str] = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

# Where index.html wants the server's facts; a JSON island the page script reads.
_CONFIG_MARKER = "<!--SHOAL-CONFIG-->"


def page_config(pyodide_dir: Path) -> dict[str, Any]:
    """What the page must know before it starts: is Pyodide there, and if not, what to run."""
    missing = install.missing_files(pyodide_dir)
    return {
        "pyodideVersion": install.PYODIDE_VERSION,
        "pyodideReady": not missing,
        "pyodideMissing": missing,
        "installCommand": install.INSTALL_COMMAND,
    }


def render_index(pyodide_dir: Path) -> str:
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    # "</" must not appear raw inside a <script> element; JSON allows escaping the slash.
    config = json.dumps(page_config(pyodide_dir)).replace("</", "<\\/")
    island = f'<script type="application/json" id="shoal-config">{config}</script>'
    return page.replace(_CONFIG_MARKER, island)


def file_in(folder: Path, name: str) -> Path | None:
    """The file ``name`` directly in ``folder``, else None: both folders served are flat, so
    no path with a separator (``..`` escapes, ``__pycache__``) is ever looked up."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    try:
        root = folder.resolve(strict=True)
        candidate = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if candidate.parent != root or not candidate.is_file():
        return None
    return candidate


def serve_file(path: Path, *, cache_seconds: int) -> Response:
    media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    headers = dict(ISOLATION_HEADERS)
    headers["Cache-Control"] = f"public, max-age={cache_seconds}" if cache_seconds else "no-cache"
    return FileResponse(path, media_type=media_type, headers=headers)


def not_found(text: str) -> Response:
    return PlainTextResponse(text, status_code=404, headers=dict(ISOLATION_HEADERS))


class VolunteerSite:
    """The endpoints, bound to the folder Pyodide is served from (looked up once at mount)."""

    def __init__(self, pyodide_dir: Path) -> None:
        self.pyodide_dir = pyodide_dir

    async def index(self, request: Request) -> Response:
        headers = dict(ISOLATION_HEADERS)
        headers["Cache-Control"] = "no-cache"
        return HTMLResponse(render_index(self.pyodide_dir), headers=headers)

    async def static(self, request: Request) -> Response:
        path = file_in(STATIC_DIR, request.path_params["path"])
        if path is None:
            return not_found("no such file")
        # The page's own files change with shoal; never let a browser keep an old worker.
        return serve_file(path, cache_seconds=0)

    async def pyodide(self, request: Request) -> Response:
        missing = install.missing_files(self.pyodide_dir)
        if missing:
            return not_found(
                f"Pyodide {install.PYODIDE_VERSION} is not installed on the coordinator's "
                f"machine ({self.pyodide_dir} lacks {', '.join(missing)}); "
                f"run: {install.INSTALL_COMMAND}")
        path = file_in(self.pyodide_dir, request.path_params["path"])
        if path is None:
            return not_found("no such file")
        # One version's files never change, and the wasm is 9.6 MB: let the browser keep them.
        return serve_file(path, cache_seconds=86400)
