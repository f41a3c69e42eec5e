"""Debian's Chromium under Playwright, for every browser test (dashboard and volunteers).

Never ``playwright install``: the tests drive the system's ``/usr/bin/chromium`` (.ci/run
installs it) and skip, saying so, where it is missing. Screenshots go to
``test-artifacts/screenshots/`` (git-ignored), kept as the run's artifacts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root on a machine with no network: no sandbox, no GPU, and none of the
# background connections Chromium would otherwise try (and be refused) at every start.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"

needs_chromium = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                    reason=f"needs Debian's Chromium at {CHROMIUM} "
                                           "(apt-get install chromium)")


def skip_without_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Debian's Chromium is not at {CHROMIUM} (apt-get install chromium)")


def launch(playwright: Any) -> Any:
    """A headless Chromium (a Playwright Browser); closing it ends all its processes."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True)


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
