"""Headless Debian Chromium driven by Playwright's sync API, and screenshots of each step.

Never ``playwright install``: the tests use the system's ``/usr/bin/chromium``
(CI installs it), and are skipped with the reason when it is missing.
Screenshots go to ``test-artifacts/screenshots/`` (git-ignored, kept by CI).
A test module uses the ``page`` fixture after importing ``page_fixture`` and
``playwright_fixture`` from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Generous: the machine is shared, and a liveness wait is not a timing assertion.
UI_TIMEOUT_MS = 20_000

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason=f"needs Debian's Chromium at {CHROMIUM} "
                                           "(apt-get install chromium)")


@pytest.fixture(name="playwright", scope="module")
def playwright_fixture() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=UI_TIMEOUT_MS)  # expect() waits this long too
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture(name="page")
def page_fixture(playwright: object) -> Iterator[object]:
    """A fresh browser per test (closing it ends every Chromium process it started)."""
    browser = playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{test}-{step}") + ".png"
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
