"""Issue #15's time before launch, in a browser: the launch form shows how long the run would
take on the online CPU worker, warns while that is hours, and follows the epochs and the
training images as they are typed.

A past run and the worker's heartbeat are written with the test factories (no training); the
web app is served by uvicorn in its own process and driven by Debian's Chromium.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.support.factories import online_worker, timed_run

pytestmark = pytest.mark.e2e

CPU = "CPU (2 cores)"


def test_the_estimate_follows_the_form_and_warns_of_hours_on_a_cpu(
    session: Session, served: str, page: Page
) -> None:
    timed_run(session, device=CPU, images_per_second=[10.0, 10.0])
    online_worker(session, "cpu-worker", CPU)
    page.goto(f"{served}/experiments/new")
    estimate = page.locator("#launch-estimate [data-estimate-lines]")
    warning = page.locator("#launch-estimate [data-estimate-warning]")
    # The defaults: 20 epochs of all 40,000 training images at 10 images/s.
    expect(estimate).to_contain_text(f"{CPU}: about")
    expect(estimate).to_contain_text("for 20 epochs")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("on the CPU worker: consider a quick preset")

    shown = "fieldset[data-models]:not([disabled])"
    page.locator(f"{shown} [name='hp.epochs']").fill("2")
    expect(estimate).to_contain_text("for 2 epochs")
    page.locator(f"{shown} [name='hp.train_size']").fill("1000")
    expect(estimate).to_contain_text("about 2 min per epoch, 3 min for 2 epochs")
    expect(warning).to_be_hidden()

    page.locator(f"{shown} [name='hp.epochs']").fill("0")
    expect(estimate).to_contain_text("No estimate until the settings are valid")
    expect(estimate).to_contain_text("hyperparameters.epochs")
