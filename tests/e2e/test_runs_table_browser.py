"""A person working through many runs in a browser: pick a hyperparameter column, sort by it,
tick rows, and keep the selection bar in view while scrolling; the chosen column is
remembered, and a bulk tag lands on the ticked rows.

No training: the runs are written with the test factories, and `cifarlab web` alone serves
them (no worker is needed to read or tag).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.core.models import Status
from app.embedded_redis import free_port
from tests.support.factories import make_experiment
from tests.support.polling import wait_until
from tests.support.servers import START_SECONDS, clean_environment, stop_group

pytestmark = pytest.mark.e2e

LEARNING_RATES = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03] * 5  # 30 runs: more than a page


@pytest.fixture
def web(data_dir: Path, redis_server: str, broker: redis.Redis, session: Session) -> Iterator[str]:
    """30 finished runs, then `cifarlab web` on this test's database; its base URL."""
    for number, learning_rate in enumerate(LEARNING_RATES):
        experiment = make_experiment(session, learning_rate=learning_rate)
        experiment.name = f"run {number:02d}"
        experiment.status = Status.succeeded
    session.commit()
    port = free_port()
    environment = clean_environment(
        CIFARLAB_DATA_DIR=str(data_dir), CIFARLAB_REDIS_URL=redis_server
    )
    with (data_dir / "web.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "web", "--port", str(port), "--processes", "1"],
            env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{base_url}/api/health", timeout=5).status_code == 200,
            START_SECONDS, ignoring=(httpx.HTTPError,), what="cifarlab web answering",
        )  # fmt: skip
        yield base_url
    finally:
        stop_group(process)


def column_values(page: Page, column: str) -> list[str]:
    return page.locator(f"td[data-column='{column}']").all_inner_texts()


def test_pick_a_hyperparameter_column_sort_select_and_scroll(page: Page, web: str) -> None:
    page.goto(web)
    page.locator("#column-chooser summary").click()
    page.locator("[data-column-choice][value='hp.learning_rate']").check()
    page.wait_for_url(re.compile(r"cols=hp\.learning_rate"))
    header = page.locator("a.sort-link[data-sort='hp.learning_rate']")
    expect(header).to_be_visible()

    header.click()  # a number column sorts highest first
    page.wait_for_url(re.compile(r"sort=hp\.learning_rate"))
    values = [float(v) for v in column_values(page, "hp.learning_rate")]
    assert len(values) == 25 and values == sorted(values, reverse=True)
    assert values[0] == 0.03

    # The choice is remembered: the plain list shows the column again.
    page.goto(web)
    page.wait_for_url(re.compile(r"cols=hp\.learning_rate"))
    expect(header).to_be_visible()

    boxes = page.locator(".select-row")
    for index in (0, 1, 2):
        boxes.nth(index).check()
    expect(page.locator("#compare-button")).to_have_text("Compare 3 selected")
    bar = page.locator("#selection-bar")
    page.evaluate("window.scrollTo(0, 0)")
    expect(bar).to_be_in_viewport()
    page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
    expect(bar).to_be_in_viewport()
    box = bar.bounding_box()
    assert box is not None and box["y"] + box["height"] <= page.viewport_size["height"]  # type: ignore[index]
    expect(page.locator("#selection-count")).to_have_text("3 selected")

    page.locator("#bulk-tag").fill("shortlist")
    page.locator("#bulk-tag-button").click()
    expect(page.locator("#bulk-result")).to_have_text("Add tag: 3 done")
    tagged = httpx.get(f"{web}/api/experiments", params={"tag": "shortlist"}).json()
    assert tagged["total"] == 3

    # More than 12 compare as seed groups.
    page.locator("#select-all").check()
    expect(page.locator("#compare-button")).to_have_text("Compare 25 as seed groups")
    page.locator("#compare-button").click()
    page.wait_for_url(re.compile(r"/compare\?ids=[\d,]+&group=seed$"))
    assert len(page.url.split("ids=")[1].split("&")[0].split(",")) == 25

    # Deleting every row shown: the reloaded page is empty, and still says what was done,
    # once; the next page shows no stale result.
    page.goto(f"{web}/?tag=shortlist")
    page.locator("#select-all").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#bulk-delete").click()
    expect(page.locator(".empty-state h2")).to_have_text("No experiments match")
    expect(page.locator("#bulk-result")).to_have_text("Delete: 3 done")
    page.goto(web)
    expect(page.locator("#bulk-result")).to_be_hidden()
