"""Waiting on a page's state under its Content-Security-Policy.

Playwright's ``wait_for_function`` runs its predicate through ``eval`` inside the page, which
the policy's ``script-src 'self'`` forbids (as it should). ``page.evaluate`` goes through the
DevTools protocol, which the policy does not govern, so polling with it tests the page as
users get it.
"""

from __future__ import annotations

import time

from playwright.sync_api import Page

DEFAULT_TIMEOUT_MS = 30_000
POLL_MS = 100


def wait_for(page: Page, expression: str, timeout: float = DEFAULT_TIMEOUT_MS) -> None:
    """Until ``expression`` is truthy on the page (an error counts as not yet)."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            if page.evaluate(expression):
                return
        except Exception as exc:  # the page navigating or a chart not drawn yet
            last_error: Exception | None = exc
        else:
            last_error = None
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout / 1000:.0f} s: {expression}") from (
                last_error
            )
        page.wait_for_timeout(POLL_MS)
