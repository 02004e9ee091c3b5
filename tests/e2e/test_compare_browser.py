"""A person comparing runs in a browser: tick three on the list, compare them while they
train, watch the page fill in, then open a confusion-matrix cell's test images; and fold a
section of the page, which stays folded on the next visit.

Real everything, as in test_browser.py: `cifarlab up` with the tiny dataset and Debian's
Chromium. One training test on purpose: the three trainings are what it costs. The folding
test needs no training, so it serves the web app alone on runs written to its database.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.support.factories import make_evaluated, spec_data
from tests.support.polling import wait_for
from tests.support.servers import Stack, wait_until_finished

pytestmark = pytest.mark.e2e

TAG = "compare-e2e"
TRAINING_TIMEOUT_MS = 240_000
EPOCHS = [{"loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.45},
          {"loss": 0.8, "accuracy": 0.6, "val_loss": 0.9, "val_accuracy": 0.55}]  # fmt: skip
FILLS_ITS_CARD = """Math.abs(document.getElementById('accuracy-chart').clientWidth
    - document.querySelector('#accuracy-chart .main-svg').getBoundingClientRect().width) < 2"""
RUNS = [  # name, epochs, learning rate
    ("compare a", 2, 0.001),
    ("compare b", 2, 0.003),
    ("compare c", 1, 0.001),
]


def launch_three(stack: Stack) -> list[int]:
    ids = []
    for name, epochs, learning_rate in RUNS:
        spec = spec_data(epochs=epochs, train_size=300, test_size=100, batch_size=32,
                         learning_rate=learning_rate)  # fmt: skip
        spec.update(name=name, tags=[TAG])
        response = httpx.post(f"{stack.base_url}/api/experiments", json=spec)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def select_and_compare(stack: Stack, page: Page, ids: list[int]) -> None:
    page.goto(f"{stack.base_url}/?tag={TAG}")
    expect(page.locator("#experiments .row-link")).to_have_count(3)
    compare = page.locator("#compare-button")
    expect(compare).to_be_disabled()
    for experiment_id in ids:
        page.locator(f".select-row[value='{experiment_id}']").check()
    expect(compare).to_have_text("Compare 3 selected")
    compare.click()
    page.wait_for_url(re.compile(r"/compare\?ids=[\d,]+$"))
    assert sorted(map(int, page.url.rsplit("=", 1)[1].split(","))) == sorted(ids)


def cell_position(page: Page, chart_id: str, row: int, column: int) -> tuple[float, float]:
    """Where a heatmap cell is drawn, from Plotly's own axes, in page coordinates."""
    return page.evaluate(
        """([id, row, column]) => {
            const chart = document.getElementById(id), layout = chart._fullLayout;
            const box = chart.getBoundingClientRect();
            return [box.left + layout.xaxis._offset + layout.xaxis.l2p(column),
                    box.top + layout.yaxis._offset + layout.yaxis.l2p(row)];
        }""",
        [chart_id, row, column],
    )


def biggest_cell(stack: Stack, experiment_id: int) -> tuple[int, int, int]:
    """The matrix's fullest cell (a diagonal one, for a model that learned anything): its
    count, row (true class) and column (predicted)."""
    evaluation = httpx.get(f"{stack.base_url}/api/experiments/{experiment_id}/evaluation").json()
    matrix = evaluation["confusion_matrix"]
    return max((value, i, j) for i, values in enumerate(matrix) for j, value in enumerate(values))


def open_biggest_cell(stack: Stack, page: Page, experiment_id: int) -> int:
    """Clicks the matrix's fullest cell; its count."""
    count, row, column = biggest_cell(stack, experiment_id)
    page.locator(f"#matrix-{experiment_id}").scroll_into_view_if_needed()
    page.mouse.click(*cell_position(page, f"matrix-{experiment_id}", row, column))
    return count


def test_compare_three_runs_live_then_open_a_cells_images(stack: Stack, page: Page) -> None:
    ids = launch_three(stack)
    select_and_compare(stack, page, ids)
    expect(page.locator("#summary tbody tr")).to_have_count(3)
    expect(page.locator("#live")).to_be_visible()  # queued or running: the page polls

    deadline = time.monotonic() + TRAINING_TIMEOUT_MS / 1000
    for experiment_id in ids:
        remaining = max(1.0, deadline - time.monotonic())
        finished = wait_until_finished(stack, experiment_id, remaining)
        assert finished["status"] == "succeeded", finished["error"]
    wait_for(
        page,
        "[...document.querySelectorAll('#summary [data-status]')]"
        ".every(b => b.dataset.status === 'succeeded')",
        timeout=30_000,
    )  # updated in place, without a reload
    expect(page.locator("#live")).to_be_hidden()

    validation = page.evaluate(
        "document.getElementById('accuracy-chart').data"
        ".filter(t => t.meta.kind === 'validation').map(t => [t.meta.experiment, t.x.length])"
    )
    assert sorted(map(tuple, validation)) == sorted(zip(ids, [2, 2, 1], strict=True))
    expect(page.locator("#per-class tbody tr")).to_have_count(13)
    expect(page.locator("#per-class td.best").first).to_be_visible()
    for experiment_id in ids:
        expect(page.locator(f"#matrix-{experiment_id} .hm")).to_have_count(1)

    count = open_biggest_cell(stack, page, ids[0])
    gallery = page.locator("#gallery")
    expect(gallery).to_be_visible()
    expect(page.locator("#gallery-title")).to_contain_text("compare a: ")
    images = page.locator("#gallery-grid img")
    expect(images).to_have_count(min(count, 60))
    wait_for(
        page,
        "[...document.querySelectorAll('#gallery-grid img')]"
        ".every(image => image.complete && image.naturalWidth === 32)",
    )
    expect(page.locator("#gallery-grid figcaption").first).to_contain_text("%")
    page.locator("[data-gallery-close]").click()
    expect(gallery).to_be_hidden()

    # From the keyboard: the cells take no focus, so the form under the matrix picks one.
    count, row, column = biggest_cell(stack, ids[0])
    picker = page.locator(f"#matrix-{ids[0]} + form.gallery-picker")
    picker.get_by_label("True").select_option(str(row))
    picker.get_by_label("predicted").select_option(str(column))
    show = picker.get_by_role("button", name="Show test images")
    show.focus()
    page.keyboard.press("Enter")
    expect(gallery).to_be_visible()
    expect(images).to_have_count(min(count, 60))
    page.keyboard.press("Escape")
    expect(gallery).to_be_hidden()
    expect(show).to_be_focused()  # back where the keyboard left off


def test_a_folded_section_stays_folded_after_a_reload(
    session: Session, served: str, page: Page
) -> None:
    """No training here: two evaluated runs written to the database the server reads."""
    labels = [i % 10 for i in range(200)]
    wrong = [(label + 1) % 10 if i % 7 == 0 else label for i, label in enumerate(labels)]
    runs = [make_evaluated(session, labels, labels, epochs=EPOCHS),
            make_evaluated(session, wrong, labels, epochs=EPOCHS, seed=2)]  # fmt: skip
    page.goto(f"{served}/compare?ids={runs[0].id},{runs[1].id}")
    significance, curves = page.locator("#part-significance"), page.locator("#part-curves")
    expect(page.locator("#pairwise")).to_be_visible()
    significance.locator("summary").click()
    curves.locator("summary").click()
    expect(page.locator("#pairwise")).to_be_hidden()

    page.reload()
    expect(page.locator("#summary")).to_be_visible()
    expect(page.locator("#pairwise")).to_be_hidden()
    expect(page.locator("#accuracy-chart")).to_be_hidden()
    assert page.evaluate("document.getElementById('part-significance').open") is False
    expect(page.locator("#per-class")).to_be_visible()  # only the folded parts are folded

    curves.locator("summary").click()  # drawn while folded, it fills its card once opened
    wait_for(page, FILLS_ITS_CARD)
    page.reload()
    expect(page.locator("#accuracy-chart")).to_be_visible()
    expect(page.locator("#pairwise")).to_be_hidden()
