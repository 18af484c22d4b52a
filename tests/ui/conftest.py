"""Fixtures for the dashboard's browser tests: a real `spark serve` on loopback, a fake
LangFlow serving from its own thread, and Debian's Chromium driven by Playwright.

Playwright never downloads a browser here (``playwright install`` needs the internet): it drives
``/usr/bin/chromium``. Without it or without the ``playwright`` package the browser tests are
skipped with the reason; CI installs both (``.ci/run``, the ``test`` extra).
"""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import langflow, servers

__all__ = ["langflow", "servers"]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "ui-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for one test module (skipped when it or Playwright is missing).

    Not for the whole session: Playwright's sync API runs an event loop of its own in the
    main thread while it is open, and the async tests that follow need theirs."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed")
    executable = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if not executable:
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(executable),
            args=["--disable-dev-shm-usage", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def screenshots() -> Path:
    """Where the tests write a screenshot of each page (a CI artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
