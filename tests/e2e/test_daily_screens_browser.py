"""The list and launch form as a researcher uses them every day, in Chromium: the phone menu,
the selection bar that stays in view, the compact rows that are remembered, and "launch
again with changes" keeping its settings when the model changes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.support.factories import make_experiment

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def test_the_phone_menu_reaches_every_page(page: Page, served: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(served)
    expect(page.locator("nav.nav-wide")).to_be_hidden()
    menu = page.locator("#nav-menu")
    expect(menu.locator("summary")).to_be_visible()
    menu.locator("summary").click()
    for label in ("Experiments", "New experiment", "Sweeps", "Workers", "API docs"):
        expect(menu.get_by_role("link", name=label)).to_be_visible()
    # Escape closes it, back on its button; so does a click outside it.
    page.keyboard.press("Escape")
    expect(menu.get_by_role("link", name="Workers")).to_be_hidden()
    expect(menu.locator("summary")).to_be_focused()
    menu.locator("summary").click()
    page.locator("main").click(position={"x": 5, "y": 5})
    expect(menu.get_by_role("link", name="Workers")).to_be_hidden()
    menu.locator("summary").click()
    menu.get_by_role("link", name="Workers").click()
    page.wait_for_url(f"{served}/workers")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size({"width": 1440, "height": 900})  # wide: the plain links, no menu
    expect(page.locator("#nav-menu")).to_be_hidden()
    expect(page.locator("nav.nav-wide").get_by_role("link", name="API docs")).to_be_visible()


def test_selection_bar_stays_in_view_and_rows_go_compact(
    page: Page, served: str, session: Session
) -> None:
    for number in range(20):
        make_experiment(session).name = f"run {number:02d}"
    session.commit()
    page.set_viewport_size(PHONE)
    page.goto(served)
    bar = page.locator("#selection-bar")
    expect(bar.locator("#bulk-actions")).to_be_hidden()  # nothing ticked: a small bar
    page.locator(".select-row").nth(0).check()
    page.locator(".select-row").nth(1).check()
    expect(bar.locator("#bulk-actions")).to_be_visible()
    for fraction in (0, 0.3, 0.6):
        page.evaluate(f"window.scrollTo(0, document.body.scrollHeight * {fraction})")
        expect(page.locator("#compare-button")).to_be_in_viewport(ratio=1)
    box = bar.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"] + 1

    page.evaluate("window.scrollTo(0, 0)")
    row = page.locator("tr[data-experiment]").first
    comfortable = row.bounding_box()
    toggle = page.locator("#density-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#experiments")).to_have_class(re.compile(r"\bcompact\b"))
    compact = row.bounding_box()
    assert comfortable is not None and compact is not None
    assert compact["height"] < comfortable["height"] * 0.7
    page.reload()  # remembered in this browser
    expect(page.locator("#experiments")).to_have_class(re.compile(r"\bcompact\b"))
    expect(page.locator("#density-toggle")).to_have_attribute("aria-pressed", "true")
    page.locator("#density-toggle").click()
    page.reload()
    expect(page.locator("#experiments")).not_to_have_class(re.compile(r"\bcompact\b"))


def test_launch_again_keeps_shared_settings_when_the_model_changes(
    page: Page, served: str, session: Session
) -> None:
    source = make_experiment(session, epochs=3, train_size=1000, conv_blocks=2, batch_norm=True)
    page.goto(f"{served}/experiments/new?from={source.id}")
    expect(page.locator("#hp-custom_cnn-epochs")).to_have_value("3")
    page.locator("#model").select_option("efficientnet_b0")
    expect(page.locator("#hp-efficientnet_b0-epochs")).to_have_value("3")
    expect(page.locator("#hp-efficientnet_b0-train_size")).to_have_value("1000")
    expect(page.locator("#hp-efficientnet_b0-test_size")).to_have_value("100")
    # Left at its default, the image size takes the new model's (128 px, not the CNN's 32).
    expect(page.locator("#hp-efficientnet_b0-image_size")).to_have_value("128")
    note = page.locator("#model-switch-note")
    expect(note).to_be_visible()
    expect(note.locator("[data-switch='kept']")).to_contain_text("Epochs 3")
    expect(note.locator("[data-switch='kept']")).to_contain_text("1000")
    expect(note.locator("[data-switch='defaults']")).to_contain_text("Image Size 128 (was 32)")
    expect(note.locator("[data-switch='dropped']")).to_contain_text("Conv Blocks 2")
    expect(note.locator("[data-switch='dropped']")).to_contain_text("Batch Norm Yes")

    page.locator("#launch-button").click()  # what is launched is what the form showed
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    launched = page.request.get(page.url.replace("/experiments/", "/api/experiments/")).json()
    assert launched["model"] == "efficientnet_b0"
    hyperparameters = launched["spec"]["hyperparameters"]
    assert (hyperparameters["epochs"], hyperparameters["train_size"]) == (3, 1000)
    assert hyperparameters["image_size"] == 128
    page.goto("about:blank")  # closes the run page's event stream before the server stops


def test_keyboard_focus_is_drawn_as_a_ring_on_fields_buttons_and_nav_links(
    page: Page, served: str
) -> None:
    """The fields showed focus as a faint halo (1.3:1 on white) and the nav clipped its ring:
    someone on the keyboard could not see where they were."""
    page.goto(f"{served}/experiments/new")
    ring = "e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth]; }"
    in_nav = "document.activeElement.closest('nav.nav-wide') !== null"
    for _ in range(5):  # from the top of the page, past the brand link, to the nav
        page.keyboard.press("Tab")
        if page.evaluate(in_nav):
            break
    assert page.evaluate(in_nav)
    assert page.evaluate(f"({ring})(document.activeElement)") == ["solid", "2px"]
    page.locator("#name").focus()
    assert page.locator("#name").evaluate(ring) == ["solid", "2px"]
    page.locator("#launch-button").focus()
    page.keyboard.press("Shift+Tab")  # focus by keyboard, as :focus-visible asks
    page.keyboard.press("Tab")
    assert page.locator("#launch-button").evaluate(ring) == ["solid", "2px"]


def test_a_refused_launch_focuses_the_error_summary_and_marks_the_field(
    page: Page, served: str
) -> None:
    """A screen reader hears the refusal at once (the summary takes the focus), and the field
    says it is invalid and why; the summary's link leads to the field."""
    page.goto(f"{served}/experiments/new")
    page.locator("#hp-custom_cnn-epochs").fill("0")
    page.locator("#launch-button").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    epochs = page.locator("#hp-custom_cnn-epochs")
    expect(epochs).to_have_attribute("aria-invalid", "true")
    expect(epochs).to_have_accessible_description(re.compile("greater than or equal to 1"))
    summary.get_by_role("link").click()
    expect(epochs).to_be_focused()
