"""Issue #14's "done when", in a browser: the launch form varies the learning rate over two
values with two seeds; the sweep page follows the four trials live as a real worker trains
them, draws its parallel coordinates and trial table (also on a 390-pixel-wide phone); and
"compare as seed groups" shows the two groups with bands and a group-against-group verdict.

Real everything: `cifarlab up` (embedded Redis, one Celery worker, uvicorn on SQLite) and
Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.polling import wait_for
from tests.support.servers import Stack

pytestmark = pytest.mark.e2e

SWEEP_TIMEOUT_MS = 600_000  # four tiny trials, one after another on one worker
SUCCEEDED = "#trials [data-cell=status] .badge[data-status=succeeded]"


def test_launch_a_sweep_from_the_form_and_watch_it_finish(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.base_url}/experiments/new")
    shown = "fieldset[data-models]:not([disabled])"
    page.fill("#name", "browser sweep")
    for key, value in {"epochs": "1", "train_size": "100", "test_size": "50",
                       "batch_size": "32"}.items():  # fmt: skip
        page.locator(f"{shown} [name='hp.{key}']").fill(value)
    for details in ("field-group", "vary"):  # the Optimizer group, then the field's Vary box
        page.locator(
            f"{shown} details.{details}:has([name='vary.learning_rate']) > summary"
        ).click()
    page.locator(f"{shown} [name='vary.learning_rate']").fill("0.001, 0.003")
    page.fill("#seeds", "2")
    button = page.locator("#launch-button")
    expect(button).to_have_text("Launch sweep of 4 trials")
    button.click()
    page.wait_for_url(re.compile(r"/sweeps/\d+$"))

    expect(page.locator("#trials tbody tr")).to_have_count(4)
    wait_for(page, f"document.querySelectorAll('{SUCCEEDED}').length === 4", SWEEP_TIMEOUT_MS)
    expect(page.locator("[data-count=done]")).to_have_text("4")
    expect(page.locator("#live")).to_be_hidden()  # polling stopped: nothing more to change
    expect(page.locator("#eta")).to_have_text("all trials finished")
    expect(page.locator("#best-link")).to_have_attribute("href", re.compile(r"/experiments/\d+"))
    wait_for(page, "document.querySelector('#parcoords-chart svg .parcoords') !== null")
    dimensions = page.evaluate(
        "document.getElementById('parcoords-chart').data[0].dimensions.map(d => d.label)"
    )
    assert dimensions == ["learning_rate", "seed", "best val accuracy"]
    wait_for(page, "document.getElementById('scatter-0').data[0].x.length === 4")
    expect(page.locator("#compare-groups")).to_be_visible()

    # Tick two trials: Compare opens /compare with exactly those.
    boxes = page.locator("#trials .select-row")
    boxes.nth(0).check()
    boxes.nth(3).check()
    ids = [boxes.nth(i).get_attribute("value") for i in (0, 3)]
    page.locator("#compare-button").click()
    page.wait_for_url(f"**/compare?ids={ids[0]},{ids[1]}")
    page.go_back()

    page.set_viewport_size({"width": 390, "height": 844})
    wait_for(page, "document.querySelector('#parcoords-chart svg .parcoords') !== null")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the sweep page scrolls sideways by {overflow} px at 390 px"

    # Compare as seed groups: two groups of two, each with its mean curve and band, and a
    # verdict in words on whether the learning rates differ by more than the seed noise.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.locator("#compare-groups").click()
    page.wait_for_url("**group=seed**")
    expect(page.locator("#group-summary tbody tr")).to_have_count(2)
    expect(page.locator("#group-summary tbody [data-column=n]")).to_have_text(["2", "2"])
    verdict = page.locator("#verdicts [data-verdict]")
    expect(verdict).to_have_count(1)
    expect(verdict.locator("[data-text]")).to_contain_text("seed-to-seed noise")
    bands = (
        "document.getElementById('group-accuracy-chart').data"
        ".filter(t => t.meta.kind === 'band' && t.visible === true).length"
    )
    wait_for(page, f"{bands} === 2")
