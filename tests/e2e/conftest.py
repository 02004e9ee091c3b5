"""Browser fixtures shared by the browser tests: Debian's Chromium driven by Playwright, and a
page whose JavaScript errors and Content-Security-Policy violations fail the test that
opened it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.support.servers import serve_app

CHROMIUM = Path("/usr/bin/chromium")
# Never `playwright install` (it downloads); these flags let Playwright drive Debian's build.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium per test process (a launch costs about a second of CPU); each test gets
    its own context, so cookies and storage never carry over from one test to the next."""
    if not CHROMIUM.exists():
        pytest.fail("needs Debian's chromium: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: _record_policy_violation(message, errors))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors or Content-Security-Policy violations: {errors}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed browser test's report says where the page was and what it showed: a form
    that came back with an error reads as a timeout otherwise."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and isinstance(page, Page) and not page.is_closed():
        try:
            text = page.inner_text("body", timeout=5_000)
        except PlaywrightError as exc:
            text = f"(unreadable: {exc})"
        report.sections.append(("the page when the test failed", f"{page.url}\n{text[:4_000]}"))
    return report


def _record_policy_violation(message: ConsoleMessage, errors: list[str]) -> None:
    """A script, style or frame the page's policy blocked (app/web/security_headers.py)."""
    if message.type == "error" and "Content Security Policy" in message.text:
        errors.append(message.text)


@pytest.fixture
def served(data_dir: Path) -> Iterator[str]:
    """The web app alone (no broker or worker: nothing here trains), on a free port."""
    with serve_app(data_dir) as base_url:
        yield base_url
