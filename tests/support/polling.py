"""Waiting with a deadline: the one way tests wait for something to happen.

A fixed sleep either wastes time or flakes on a loaded machine; polling a condition ends as
soon as it holds and fails with a message once the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from playwright.sync_api import Page

T = TypeVar("T")
INTERVAL_SECONDS = 0.2


def wait_until(
    condition: Callable[[], T],
    timeout_seconds: float,
    *,
    interval: float = INTERVAL_SECONDS,
    ignoring: tuple[type[BaseException], ...] = (),
    what: str = "condition",
    pause: Callable[[float], object] = time.sleep,
) -> T:
    """Call ``condition`` until it returns something truthy, and return that; an exception in
    ``ignoring`` counts as not yet (a server still starting, a page still drawing).
    ``pause`` waits between calls: Playwright's own wait lets the page's events through."""
    deadline = time.monotonic() + timeout_seconds
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignoring as exc:
            last_error = exc
        else:
            if value:
                return value
            last_error = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_seconds:g} s") from last_error
        pause(interval)


def wait_for(page: Page, expression: str, timeout: float = 30_000) -> None:
    """Until ``expression`` is truthy on the page (an error counts as not yet); ``timeout``
    in milliseconds, as Playwright counts.

    Playwright's ``wait_for_function`` runs its predicate through ``eval`` inside the page,
    which the policy's ``script-src 'self'`` forbids (as it should). ``page.evaluate`` goes
    through the DevTools protocol, which the policy does not govern, so polling with it tests
    the page as users get it."""
    wait_until(
        lambda: page.evaluate(expression),
        timeout / 1000,
        interval=0.1,
        ignoring=(Exception,),  # the page navigating or a chart not drawn yet
        what=expression,
        pause=lambda seconds: page.wait_for_timeout(seconds * 1000),
    )
