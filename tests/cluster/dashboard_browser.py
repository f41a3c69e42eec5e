"""The dashboard tests' browser: a fresh headless Chromium page per test, and screenshots.

A test module uses the ``page`` fixture after importing ``page_fixture`` and
``playwright_fixture`` from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chromium_support import launch, needs_chromium, screenshot_path

__all__ = ["needs_chromium", "page_fixture", "playwright_fixture", "screenshot"]

# Generous: the machine is shared, and a liveness wait is not a timing assertion.
UI_TIMEOUT_MS = 20_000


@pytest.fixture(name="playwright", scope="module")
def playwright_fixture() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=UI_TIMEOUT_MS)  # expect() waits this long too
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture(name="page")
def page_fixture(playwright: object) -> Iterator[object]:
    """A fresh browser per test (closing it ends every Chromium process it started)."""
    browser = launch(playwright)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        new_page = context.new_page()
        errors: list[str] = []
        new_page.on("pageerror", lambda error: errors.append(str(error)))
        yield new_page
        # An exception in the page's own script is a bug even if the test passed.
        assert not errors, f"the dashboard's JavaScript failed: {errors}"
    finally:
        browser.close()


def screenshot(page: object, test: str, step: str) -> Path:
    """Save the whole page as ``<test>-<step>.png``; returns the path."""
    path = screenshot_path(f"{test}-{step}")
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
