"""A person in a browser: launch from the form, watch it train live, read the evaluation.

Real everything: `cifarlab up` (embedded Redis, one Celery worker, uvicorn on SQLite) and
Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
TRAINING_TIMEOUT_MS = 180_000
FINISHED_JS = (
    "['succeeded', 'failed', 'cancelled']"
    ".includes(document.getElementById('status')?.dataset.status)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
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
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def experiment_count(stack: Stack) -> int:
    return int(httpx.get(f"{stack.base_url}/api/experiments").json()["total"])


def hyperparameter(page: Page, key: str):  # type: ignore[no-untyped-def]
    """The input of the shown model's fieldset (hidden fieldsets are disabled)."""
    return page.locator(f"fieldset[data-models]:not([disabled]) [name='hp.{key}']")


def fill_launch_form(page: Page, name: str, values: dict[str, str]) -> None:
    page.fill("#name", name)
    for key, value in values.items():
        hyperparameter(page, key).fill(value)
    page.get_by_role("button", name="Launch").click()


def test_launch_from_the_form_and_watch_it_train(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.base_url}/")
    page.locator("main").get_by_role("link", name="New experiment").first.click()
    page.wait_for_url("**/experiments/new")
    expect(hyperparameter(page, "epochs")).to_be_visible()
    fill_launch_form(
        page,
        "browser run",
        {"epochs": "2", "train_size": "300", "test_size": "100", "image_size": "32",
         "batch_size": "32"},
    )  # fmt: skip
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    experiment_id = int(page.url.rsplit("/", 1)[1])

    page.wait_for_function(FINISHED_JS, timeout=TRAINING_TIMEOUT_MS)
    status = page.locator("#status").get_attribute("data-status")
    assert status == "succeeded", page.locator("#error").text_content()

    page.wait_for_function(
        "(() => { const d = document.getElementById('accuracy-chart').data;"
        " return d.length === 2 && d.every(t => t.x.length === 2); })()"
    )
    traces = page.evaluate(
        "document.getElementById('accuracy-chart').data.map(t => ({name: t.name, x: t.x, y: t.y}))"
    )
    assert [t["name"] for t in traces] == ["train", "validation"]
    assert all(t["x"] == [1, 2] and None not in t["y"] for t in traces)
    expect(page.locator("#progress")).to_contain_text("Epoch 2/2")

    page.wait_for_function(
        "(() => { const m = document.getElementById('confusion-matrix');"
        " return m && m.data && m.data[0].type === 'heatmap'"
        " && m.querySelectorAll('.hm').length > 0; })()"
    )
    classes = httpx.get(f"{stack.base_url}/api/experiments/{experiment_id}/evaluation").json()[
        "classes"
    ]
    assert len(classes) == 10
    rows = page.locator("#report tbody tr").evaluate_all("rows => rows.map(r => r.dataset.row)")
    assert rows == [*classes, "accuracy", "macro avg", "weighted avg"]
    expect(page.locator("[data-fact=test_accuracy]")).to_contain_text("%")


def test_invalid_epochs_shows_the_field_error_and_launches_nothing(
    stack: Stack, page: Page
) -> None:
    before = experiment_count(stack)
    page.goto(f"{stack.base_url}/experiments/new")
    fill_launch_form(page, "not launched", {"epochs": "0"})
    error = page.locator(".field-error[data-field='hyperparameters.epochs']")
    expect(error).to_be_visible()
    expect(page.locator("#error-summary")).to_be_visible()
    assert page.url.endswith("/experiments/new")
    expect(hyperparameter(page, "epochs")).to_have_value("0")
    assert experiment_count(stack) == before
