"""Issue #16's experiment page on a 390 px phone: nothing reaches past the screen's edge (the
header's buttons went to 535 px), and "Copy as CLI command" puts the command that launches
the run again in the clipboard and shows it.

The run is written with the test factories (no training); the web app is served by uvicorn in
its own process and driven by Debian's Chromium.
"""

from __future__ import annotations

import shlex

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session

from tests.support.factories import finished_experiment

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def test_the_experiment_page_fits_a_phone_and_copies_its_cli_command(
    session: Session, served: str, browser: Browser
) -> None:
    experiment = finished_experiment(session, name="a run named at some length, as people do")
    context = browser.new_context(viewport=PHONE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{served}/experiments/{experiment.id}")
        expect(page.locator("#phase")).to_have_text("finished")
        page.wait_for_function("document.getElementById('accuracy-chart').data !== undefined")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide"

        page.locator("#copy-cli").click()
        shown = page.locator("#cli-command")
        expect(shown).to_be_visible()
        expect(page.locator("#cli-command-note")).to_contain_text("Copied to the clipboard")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#copy-cli").get_attribute("data-command")
        assert shown.locator("code").text_content() == copied
        words = shlex.split(copied)
        assert words[:2] == ["cifarlab", "launch"]
        assert words[words.index("--name") + 1] == experiment.name
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"with the command shown the page is {width} px wide"
    finally:
        context.close()
    assert errors == []
