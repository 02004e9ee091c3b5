"""A person reading two runs' curves on the compare page: a legend names the runs, the
smoothing slider smooths them (the raw curve stays faint behind), log-y puts the loss on a log
axis, and x switches from epochs to training time; the settings survive a reload and hold on
an experiment's own page too.

The runs are written with the test factories (no training), then the web app is served by
uvicorn in its own process and driven by Debian's Chromium.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from tests.support.factories import make_evaluated
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

LABELS = [i % 10 for i in range(100)]
SECONDS = [30.0, 60.0, 30.0, 60.0]  # cumulative minutes 0.5, 1.5, 2.0, 3.0
VALIDATION_LOSS = [2.0, 1.0, 1.5, 0.5]  # a zigzag, which smoothing flattens


def run(session: Session, name: str, wrong: int) -> Experiment:
    epochs = [
        {"loss": loss + 0.1, "accuracy": 0.5, "val_loss": loss, "val_accuracy": 0.4,
         "learning_rate": 1e-3, "seconds": seconds}
        for loss, seconds in zip(VALIDATION_LOSS, SECONDS, strict=True)
    ]  # fmt: skip
    predictions = [(label + 1) % 10 if i < wrong else label for i, label in enumerate(LABELS)]
    experiment = make_evaluated(session, predictions, LABELS, epochs=epochs)
    crud.update_experiment(session=session, experiment=experiment, changes={"name": name})
    session.commit()
    return experiment


LEGEND_CLEARS_AXIS_TITLE = """(() => {
  const chart = document.getElementById('loss-chart');
  const title = chart.querySelector('.g-xtitle'), legend = chart.querySelector('g.legend');
  return title && legend
    && title.getBoundingClientRect().bottom <= legend.getBoundingClientRect().top;
})()"""


def traces(page: Page, chart: str) -> list[dict[str, Any]]:
    """The drawn traces' kind, experiment, whether raw, x and y."""
    return page.evaluate(  # type: ignore[no-any-return]
        f"document.getElementById('{chart}').data.map(t => ({{kind: t.meta.kind,"
        " experiment: t.meta.experiment, raw: !!t.meta.raw, x: [...t.x], y: [...t.y]}))"
    )


def validation(page: Page, chart: str, experiment_id: int, *, raw: bool = False) -> dict[str, Any]:
    (found,) = [
        t
        for t in traces(page, chart)
        if t["kind"] == "validation" and t["experiment"] == experiment_id and t["raw"] == raw
    ]
    return found


def test_smoothing_log_y_and_time_axis_redraw_the_compared_curves(
    session: Session, served: str, page: Page
) -> None:
    # Names long enough that the legend wraps to a row each in a half-width chart.
    first = run(session, "narrow net · learning_rate=0.001 batch_size=64 dropout=0.3", 30)
    second = run(session, "wide net · learning_rate=0.003 batch_size=128 dropout=0.2", 10)
    page.goto(f"{served}/compare?ids={first.id},{second.id}")
    wait_for(page, "(document.getElementById('loss-chart').data || []).length > 0")

    legend = page.locator("#loss-chart .legend .traces")
    expect(legend).to_have_count(2)  # one entry per run, not one per trace
    # Below the axis title, never over it, however many rows it wraps to.
    wait_for(page, LEGEND_CLEARS_AXIS_TITLE)
    expect(page.locator("#loss-chart .legend")).to_contain_text("narrow net")
    expect(page.locator("#loss-chart .legend")).to_contain_text("wide net")
    before = validation(page, "loss-chart", first.id)
    assert (before["x"], before["y"]) == ([1, 2, 3, 4], VALIDATION_LOSS)
    assert not any(t["raw"] for t in traces(page, "loss-chart"))

    page.locator("#curve-smoothing").fill("0.6")
    expect(page.locator("#curve-smoothing-value")).to_have_text("0.60")
    wait_for(page, "document.getElementById('loss-chart').data.some(t => t.meta.raw)")
    smoothed = validation(page, "loss-chart", first.id)
    raw = validation(page, "loss-chart", first.id, raw=True)
    assert raw["y"] == VALIDATION_LOSS  # kept, faint, behind
    assert smoothed["y"][0] == pytest.approx(2.0)  # debiased: the first point is the data
    assert smoothed["y"][1] == pytest.approx((0.6 * 0.4 * 2.0 + 0.4 * 1.0) / (1 - 0.6**2))
    assert max(smoothed["y"]) - min(smoothed["y"]) < max(VALIDATION_LOSS) - min(VALIDATION_LOSS)

    page.locator("#curve-log-y").check()
    wait_for(page, "document.getElementById('loss-chart').layout.yaxis.type === 'log'")
    assert page.evaluate("document.getElementById('accuracy-chart').layout.yaxis.type") != "log"

    page.locator("#curve-x label", has_text="Training time").click()
    wait_for(page, "document.getElementById('loss-chart').data[0].x[0] !== 1")
    timed = validation(page, "loss-chart", first.id)
    assert timed["x"] == [0.5, 1.5, 2.0, 3.0]
    assert validation(page, "accuracy-chart", second.id)["x"] == [0.5, 1.5, 2.0, 3.0]
    title = page.evaluate("document.getElementById('loss-chart').layout.xaxis.title.text")
    assert title.startswith("Training time")

    page.reload()  # the settings are remembered
    wait_for(page, "(document.getElementById('loss-chart').data || []).length > 0")
    expect(page.locator("#curve-smoothing")).to_have_value("0.6")
    expect(page.locator("#curve-log-y")).to_be_checked()
    assert validation(page, "loss-chart", first.id)["x"] == [0.5, 1.5, 2.0, 3.0]

    page.goto(f"{served}/experiments/{first.id}")  # the experiment's own curves follow them
    wait_for(page, "(document.getElementById('loss-chart').data || []).length > 0")
    own = page.evaluate(
        "document.getElementById('loss-chart').data.filter(t => !t.meta.raw)"
        ".map(t => [t.meta.kind, [...t.x]])"
    )
    assert own == [["train", [0.5, 1.5, 2.0, 3.0]], ["validation", [0.5, 1.5, 2.0, 3.0]]]
    assert page.evaluate("document.getElementById('loss-chart').layout.yaxis.type") == "log"
