"""The browser walkthrough: every page of a realistic data folder (tests/support/demo_data.py)
at a laptop's 1440x900 and a phone's 390x844, as a researcher would open them. Each page must
fit its width (no sideways scrolling of the whole page; a wide table scrolls inside its card)
and log no errors. With CIFARLAB_SCREENSHOTS set, a full-page screenshot of each goes to
``$CIFARLAB_SCREENSHOTS/<page>-<width>.png``, for before/after notes on a change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, ConsoleMessage, Page
from sqlalchemy.orm import Session

from tests.support.demo_data import DemoData, seed_demo
from tests.support.servers import serve_app

pytestmark = pytest.mark.e2e

VIEWPORTS = {"1440": (1440, 900), "390": (390, 844)}

# The elements sticking out past the right edge, outermost first: what to fix when a page
# scrolls sideways (inside a scrolling card an element may be wider; that is not counted).
OVERFLOW_REPORT = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (element) => {
    for (let node = element.parentElement; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (["auto", "scroll", "hidden", "clip"].includes(style.overflowX)) {
        return node !== document.body && node !== document.documentElement;
      }
    }
    return false;
  };
  return [...document.body.querySelectorAll("*")]
    .filter((element) => element.getBoundingClientRect().right > width + 1 && !clipped(element))
    .filter((element) => !(element.parentElement.getBoundingClientRect().right > width + 1))
    .slice(0, 6)
    .map((element) => `${element.tagName.toLowerCase()}#${element.id}.${element.className}`
      + ` right=${Math.round(element.getBoundingClientRect().right)}`);
}"""

# plotly.js 4 puts a "Share chart..." button in every modebar by default, which uploads the
# chart to cloud.plotly.com: nothing on a page may send its data to an outside host.
SHARING_CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter((chart) => chart._context.showSendToCloud
    || chart.querySelector('.modebar-btn[data-title^="Share"]'))
  .map((chart) => chart.id)"""


def pages(demo: DemoData) -> dict[str, str]:
    """Every page, by the name its screenshot gets."""
    first, second, third = demo.finished[:3]
    compared = ",".join(str(i) for i in [*demo.finished[:5], demo.imported[0]])
    # Three seed groups: the two CNN baselines, and the sweep's two learning rates.
    grouped = ",".join(str(i) for i in [*demo.finished[:2], *demo.sweep_trials])
    return {
        "list": "/",
        "list-by-sweep": "/?group=sweep",
        "list-columns": "/?cols=best_val_accuracy,hp.learning_rate,hp.batch_size&model=custom_cnn",
        "new": "/experiments/new",
        "launch-again": f"/experiments/new?from={third}",
        "launch-preset": "/experiments/new?preset=quick-custom-cnn",
        "experiment": f"/experiments/{first}",
        "experiment-running": f"/experiments/{demo.running}",
        "experiment-queued": f"/experiments/{demo.queued}",
        "imported": f"/experiments/{demo.imported[0]}",
        "longest-names": f"/experiments/{demo.longest_names}",
        "compare-longest-names": f"/compare?ids={first},{demo.longest_names}",
        "compare": f"/compare?ids={compared}",
        "compare-two": f"/compare?ids={first},{second}",
        "compare-twelve": f"/compare?ids={','.join(map(str, demo.finished))}",
        "compare-groups": f"/compare?ids={grouped}&group=seed",
        "sweeps": "/sweeps",
        "sweep": f"/sweeps/{demo.sweep}",
        "import": "/experiments/import",
        "workers": "/workers",
        "login": "/login",
        "not-found": "/experiments/999999",
        "api-docs": "/docs",
    }


@pytest.fixture
def demo_site(
    data_dir: Path, session: Session, broker: redis.Redis
) -> Iterator[tuple[str, DemoData]]:
    demo = seed_demo(session)
    with serve_app(data_dir) as base_url:
        yield base_url, demo


def _console_errors(page: Page) -> list[str]:
    errors: list[str] = []

    def record(message: ConsoleMessage) -> None:
        # A 404 or 422 page's own status shows as "Failed to load resource"; expected there.
        if message.type == "error" and not re.search(r"status of (404|422)", message.text):
            errors.append(message.text)

    page.on("console", record)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@dataclass
class Walk:
    """One viewport's visit: what it found wrong, and where its screenshots go."""

    page: Page
    width: int
    label: str
    shots: str | None
    problems: list[str]
    errors: list[str] = field(default_factory=list)

    def check(self, name: str) -> None:
        page = self.page
        page.evaluate("document.fonts.ready")
        scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
        if scroll_width > self.width:
            offenders = page.evaluate(OVERFLOW_REPORT)
            self.problems.append(f"{name} at {self.width}px is {scroll_width}px wide: {offenders}")
        if self.errors:
            self.problems.append(f"{name} at {self.width}px logged errors: {self.errors}")
            self.errors.clear()
        if sharing := page.evaluate(SHARING_CHARTS):
            self.problems.append(f"{name}: charts {sharing} offer to upload to Plotly's cloud")
        if self.shots:
            path = f"{self.shots}/{name}-{self.label}.png"
            page.screenshot(path=path, full_page=True, timeout=120_000)


def test_every_page_fits_a_laptop_and_a_phone(
    browser: Browser, demo_site: tuple[str, DemoData]
) -> None:
    base_url, demo = demo_site
    shots = os.environ.get("CIFARLAB_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for label, (width, height) in VIEWPORTS.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        walk = Walk(page, width, label, shots, problems, _console_errors(page))
        for name, path in pages(demo).items():
            page.goto(base_url + path, wait_until="load")
            walk.check(name)
        # The launch form refusing two settings: the error summary names them.
        page.goto(base_url + "/experiments/new", wait_until="load")
        shown = "fieldset[data-models]:not([disabled])"
        page.locator(f"{shown} [name='hp.epochs']").fill("0")
        page.locator(f"{shown} [name='hp.batch_size']").fill("0")
        page.locator("#launch-button").click()
        page.wait_for_selector("#error-summary")
        walk.check("new-errors")
        if shots and width < 640:  # the phone's menu, opened
            page.goto(base_url + "/", wait_until="load")
            page.locator("#nav-menu summary").click()
            page.screenshot(path=f"{shots}/menu-{label}.png")
        context.close()
    assert problems == [], "\n".join(problems)
