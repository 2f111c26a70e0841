"""Fixtures of the playground's browser tests: Debian's chromium driven by Playwright
(its own browsers are never downloaded), and the server on one backend only.

The page talks to the public /v1 API, whose storage backends the API tests already cover
on SQLite and PostgreSQL; a second browser pass on PostgreSQL would double the slowest
tests for nothing the page can see. So `server` here is one SQLite server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.support.fake_model import FakeModel
from tests.support.server import RunningServer, run_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Screenshots for a person to look at (git-ignored), kept after the run.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
CHROMIUM = ("chromium", "chromium-browser")  # Debian's package, another distribution's name


def chromium_path() -> str | None:
    return next((found for name in CHROMIUM if (found := shutil.which(name))), None)


SKIPPED: list[str] = []  # why the browser tests were skipped, said at the end of the run


def _unavailable(reason: str) -> NoReturn:
    """Fails under CI; elsewhere skips, and the run's summary says why."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    if reason not in SKIPPED:
        SKIPPED.append(reason)
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for reason in SKIPPED:
        terminalreporter.write_line(f"tests/ui: the browser tests were skipped: {reason}")


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    with run_server(
        tmp_path_factory.mktemp("server-ui"), ASSISTD_OPENAI_BASE_URL=fake_model.base_url
    ) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless chromium from the system's packages (`scripts/install.sh dev` installs
    Debian's where it can)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (the dev extra has it)")
    executable = chromium_path()
    if executable is None:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page(browser: Browser, server: RunningServer) -> Iterator[Page]:
    """A fresh tab (its own session storage) on the server; at the end, the test fails if
    the page logged an error or threw (a refused script or style under the CSP included).
    A 4xx the page answered is the browser's console line, not the page's error."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if _page_error(m.type, m.text) else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    context.close()
    assert not errors, errors


def _page_error(kind: str, text: str) -> bool:
    return kind == "error" and not text.startswith(HANDLED_STATUS)


HANDLED_STATUS = "Failed to load resource: the server responded with a status of 4"
