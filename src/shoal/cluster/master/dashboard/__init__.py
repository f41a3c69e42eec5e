"""The dashboard: one static page the master serves at ``/``.

Plain HTML, CSS and JavaScript (no build step, no CDN: a lab's master may have no
internet). The page talks only to the master's own REST API (``/api/v1``) with the
token the user typed, kept in ``sessionStorage``; live updates come over SSE with
``?token=`` because ``EventSource`` cannot set headers.

The master's app factory calls :func:`mount` once.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")
PREFIX = "/dashboard"

# Everything the page loads comes from the master itself; nothing inline runs as
# script, so an injected job output line can never execute.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount(app: FastAPI) -> None:
    """Serve the dashboard page at ``/`` and its files under ``/dashboard/``."""
    app.mount(PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard")

    @app.get("/", include_in_schema=False)
    def dashboard_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers=_SECURITY_HEADERS)

    @app.get(PREFIX, include_in_schema=False)
    def dashboard_root() -> RedirectResponse:
        return RedirectResponse("/")
