"""A person in a browser: launch from the form or a preset, watch it train live, read the
evaluation.

Real everything: `cifarlab up` (embedded Redis, one Celery worker, uvicorn on SQLite) and
Debian's Chromium driven by Playwright. The two-phase test writes epochs into the stack's
database itself, as a worker would, so it needs no transfer model trained on the CPU.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status, utcnow
from app.core.presets import PRESETS
from tests.support.factories import end_experiment
from tests.support.polling import wait_for
from tests.support.servers import Stack

pytestmark = pytest.mark.e2e

TRAINING_TIMEOUT_MS = 180_000
FINISHED_JS = (
    "['succeeded', 'failed', 'cancelled']"
    ".includes(document.getElementById('status')?.dataset.status)"
)


def experiment_count(stack: Stack) -> int:
    return int(httpx.get(f"{stack.base_url}/api/experiments").json()["total"])


def hyperparameter(page: Page, key: str):  # type: ignore[no-untyped-def]
    """The input of the shown model's fieldset (hidden fieldsets are disabled)."""
    return page.locator(f"fieldset[data-models]:not([disabled]) [name='hp.{key}']")


def fill_launch_form(page: Page, name: str, values: dict[str, str]) -> None:
    page.fill("#name", name)
    for key, value in values.items():
        hyperparameter(page, key).fill(value)
    page.locator("#launch-form").get_by_role("button", name="Launch").click()


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

    wait_for(page, FINISHED_JS, timeout=TRAINING_TIMEOUT_MS)
    status = page.locator("#status").get_attribute("data-status")
    assert status == "succeeded", page.locator("#error").text_content()

    wait_for(
        page,
        "(() => { const d = document.getElementById('accuracy-chart').data;"
        " return d.length === 2 && d.every(t => t.x.length === 2); })()",
    )
    traces = page.evaluate(
        "document.getElementById('accuracy-chart').data.map(t => ({name: t.name, x: t.x, y: t.y}))"
    )
    assert [t["name"] for t in traces] == ["train", "validation"]
    assert all(t["x"] == [1, 2] and None not in t["y"] for t in traces)
    expect(page.locator("#phase")).to_have_text("finished")
    expect(page.locator("#progress")).to_contain_text("2/2 epochs")
    # The worker's own lines for this run, from its log file, fetched by the page.
    expect(page.locator("#run-log")).to_contain_text(f"experiment {experiment_id}: loading data")
    expect(page.locator("#run-log")).to_contain_text("ended succeeded")

    wait_for(
        page,
        "(() => { const m = document.getElementById('confusion-matrix');"
        " return m && m.data && m.data[0].type === 'heatmap'"
        " && m.querySelectorAll('.hm').length > 0; })()",
    )
    classes = httpx.get(f"{stack.base_url}/api/experiments/{experiment_id}/evaluation").json()[
        "classes"
    ]
    assert len(classes) == 10
    rows = page.locator("#report tbody tr").evaluate_all("rows => rows.map(r => r.dataset.row)")
    assert rows == [*classes, "accuracy", "macro avg", "weighted avg"]
    expect(page.locator("[data-fact=test_accuracy]")).to_contain_text("%")
    # The diagnosis was re-read when the run ended: the final verdict, over both epochs.
    expect(page.locator("#diagnosis [data-verdict]")).not_to_have_text(
        re.compile(r"^(So far|No epochs)")
    )
    wait_for(page, "document.getElementById('gap-chart').data[0].x.length === 2")
    expect(page.locator("[data-fact=seconds_per_epoch]")).to_contain_text(" s last")
    expect(page.locator("[data-fact=images_per_second]")).to_contain_text(" last")
    download = page.locator("#download")
    expect(download).to_be_visible()
    response = httpx.get(f"{stack.base_url}{download.get_attribute('href')}")
    assert response.status_code == 200 and len(response.content) > 10_000


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


def test_customise_a_preset_then_launch_it(stack: Stack, page: Page) -> None:
    preset = PRESETS["quick-custom-cnn"]
    page.goto(f"{stack.base_url}/experiments/new")
    card = page.locator(f"[data-preset='{preset.name}']")
    expect(card).to_contain_text(preset.description)
    expect(page.locator("[data-preset='study-efficientnetb2']")).to_contain_text("study: 0.90")
    card.get_by_role("link", name="Customise").click()
    page.wait_for_url(f"**/experiments/new?preset={preset.name}")
    expect(page.locator("#name")).to_have_value(preset.title)
    expect(page.locator("#model")).to_have_value("custom_cnn")
    expect(hyperparameter(page, "train_size")).to_have_value("5000")
    before = experiment_count(stack)
    fill_launch_form(page, "customised preset", {"epochs": "0"})  # refused: nothing queued
    expect(page.locator(".field-error[data-field='hyperparameters.epochs']")).to_be_visible()
    assert experiment_count(stack) == before


def write_epoch(session: Session, lease: crud.Lease, epoch: int, phase: str) -> None:
    values = {
        "phase": phase, "accuracy": 0.4 + epoch / 10, "val_accuracy": 0.35 + epoch / 10,
        "loss": 2.0 / epoch, "val_loss": 2.2 / epoch, "seconds": 10.0 + epoch,
        "learning_rate": 1e-3 if phase == "train" else 1e-4, "images_per_second": 100.0 * epoch,
    }  # fmt: skip
    crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
    session.commit()


def fine_tune_lines(page: Page) -> list[list[float]]:
    return page.evaluate(
        "['accuracy-chart', 'loss-chart', 'learning-rate-chart'].map((id) =>"
        " (document.getElementById(id).layout.shapes || []).map((s) => s.x0))"
    )


def live_values(page: Page) -> dict[str, list[list[float]]]:
    """Each curve chart's traces' values, in trace order."""
    return page.evaluate(
        "Object.fromEntries(['accuracy-chart', 'loss-chart', 'learning-rate-chart'].map((id) =>"
        " [id, document.getElementById(id).data.map((trace) => trace.y)]))"
    )


def cancel_a_queued_run(stack: Stack, page: Page, session: Session) -> None:
    """A run no worker will take (created, never enqueued: marked sent, so the web's outbox
    leaves it) waits in the queue until the page cancels it; then it offers Retry and Delete."""
    waiting = crud.create_experiment(session=session, spec=PRESETS["quick-custom-cnn"].spec)
    waiting.enqueued_at = utcnow()
    session.commit()
    page.goto(f"{stack.base_url}/experiments/{waiting.id}")
    expect(page.locator("#queue-position")).to_contain_text("Queued: position")
    page.locator("#cancel").click()  # confirmed: the test accepts every dialog
    expect(page.locator("#status")).to_have_text("cancelled")
    expect(page.locator("#queue-position")).to_be_hidden()
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#retry")).to_be_visible()
    expect(page.locator("#delete")).to_be_visible()


def claimed_run(session: Session, preset: str) -> tuple[Experiment, crud.Lease]:
    """A run of ``preset`` created and claimed as a worker would, but never enqueued: the
    test writes its epochs and its end, and the stack's own worker never sees it."""
    experiment = crud.create_experiment(session=session, spec=PRESETS[preset].spec)
    lease = crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="test", device="CPU:0"
    )
    assert lease is not None
    session.commit()
    return experiment, lease


def test_fine_tuning_boundary_appears_live(stack: Stack, page: Page) -> None:
    """Epochs written while the page watches: each chart's traces grow by the fields the page
    data names, the dashed line comes with the first fine-tuning epoch, the diagnosis and the
    evaluation arrive in the stream itself (no request of their own), and the download link
    once the run has succeeded. On the way, the page's own buttons: Cancel a queued run, and
    Delete the finished one."""
    page.on("dialog", lambda dialog: dialog.accept())
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    engine = create_engine(f"sqlite:///{stack.data_dir / 'cifarlab.db'}")
    with Session(engine) as session:
        cancel_a_queued_run(stack, page, session)
        experiment, lease = claimed_run(session, "quick-transfer-two-phase")
        write_epoch(session, lease, 1, "train")
        url = f"{stack.base_url}/api/experiments/{experiment.id}"
        page.goto(f"{stack.base_url}/experiments/{experiment.id}")
        expect(page.locator("#live")).to_be_visible()
        expect(page.locator("#download")).to_be_hidden()
        assert fine_tune_lines(page) == [[], [], []]

        write_epoch(session, lease, 2, "fine_tune")
        wait_for(page, "document.getElementById('loss-chart').data[0].x.length === 2")
        assert fine_tune_lines(page) == [[1.5], [1.5], [1.5]]
        epochs = (1, 2)  # write_epoch's values, trace by trace
        assert live_values(page) == {
            "accuracy-chart": [[0.4 + e / 10 for e in epochs], [0.35 + e / 10 for e in epochs]],
            "loss-chart": [[2.0 / e for e in epochs], [2.2 / e for e in epochs]],
            "learning-rate-chart": [[1e-3, 1e-4]],
        }
        wait_for(page, "document.getElementById('gap-chart').data[0].x.length === 2")
        expect(page.locator("#diagnosis [data-verdict]")).to_have_text(re.compile("^So far"))
        labels = page.locator("#accuracy-chart").get_by_text("fine-tuning")
        expect(labels).to_have_count(1)
        expect(page.locator("[data-fact=seconds_per_epoch]")).to_have_text(
            "11.5 s mean · 12.0 s last"
        )

        crud.save_evaluation(
            session=session,
            lease=lease,
            classes=["cat", "dog"],
            confusion_matrix=[[3, 1], [0, 4]],
            report=_report(),
        )
        session.commit()
    engine.dispose()
    expect(page.locator("#status")).to_have_text("succeeded")
    expect(page.locator("#download")).to_be_visible()
    expect(page.locator("#report")).to_be_visible()
    assert fine_tune_lines(page) == [[1.5], [1.5], [1.5]]
    expect(page.locator("#diagnosis [data-verdict]")).not_to_have_text(re.compile("^So far"))
    sections = [url for url in fetched if url.endswith(("/evaluation", "/diagnostics"))]
    assert sections == []  # the stream carried them
    expect(page.locator("#cancel")).to_be_hidden()
    page.locator("#delete").click()
    page.wait_for_url(f"{stack.base_url}/")
    assert httpx.get(url).status_code == 404


def test_a_run_that_fails_while_watched_says_no_evaluation_is_coming(
    stack: Stack, page: Page
) -> None:
    """The evaluation note promised results "once training has finished" on a page whose run
    had already failed; the live page swaps it when the stream ends without an evaluation."""
    engine = create_engine(f"sqlite:///{stack.data_dir / 'cifarlab.db'}")
    with Session(engine) as session:
        experiment, _ = claimed_run(session, "quick-custom-cnn")
        page.goto(f"{stack.base_url}/experiments/{experiment.id}")
        expect(page.locator("#live")).to_be_visible()
        expect(page.locator("#evaluation-waiting")).to_be_visible()
        expect(page.locator("#evaluation-missing")).to_be_hidden()

        end_experiment(session, experiment.id, Status.failed, error="out of memory")
        session.commit()
    engine.dispose()
    expect(page.locator("#live")).to_be_hidden()
    expect(page.locator("#evaluation-missing")).to_have_text(
        "No evaluation on the test set: the run ended before it (failed)."
    )
    expect(page.locator("#evaluation-waiting")).to_be_hidden()
    charts = ["accuracy-chart", "loss-chart", "learning-rate-chart", "gap-chart"]
    notes = (
        f"{json.dumps(charts)}.map(id => document.getElementById(id).layout.annotations"
        ".map(a => a.text).join())"
    )
    no_epoch = "No epoch was recorded: the run ended before its first one."
    wait_for(page, f"{notes}.every(text => text === {json.dumps(no_epoch)})")


def _report() -> dict[str, object]:
    row = {"precision": 0.9, "recall": 0.9, "f1-score": 0.9, "support": 4.0}
    average = {"precision": 0.9, "recall": 0.9, "f1-score": 0.9, "support": 8.0}
    return {"cat": row, "dog": row, "accuracy": 0.875, "macro avg": average,
            "weighted avg": average}  # fmt: skip


def test_edit_tags_and_notes_from_the_list(stack: Stack, page: Page) -> None:
    """The list's one form is copied under the row that opens it, filled with what the row
    shows; a refused tag shows its error there, a saved one redraws the row and persists."""
    from sklearn.metrics import classification_report

    report = classification_report([0, 1, 1, 0], [0, 1, 0, 0], target_names=["cat", "dog"])
    imported = []
    for name in ("list edit a", "list edit b"):
        response = httpx.post(
            f"{stack.base_url}/api/experiments/import",
            json={"name": name, "report_text": report, "tags": ["seed"], "notes": "from a paper"},
        )
        assert response.status_code == 201, response.text
        imported.append(response.json()["id"])
    first, second = imported
    page.goto(f"{stack.base_url}/?q=list+edit")
    page.locator(f"[data-annotate-open='{first}']").click()
    form = page.locator(f"form[data-annotate='{first}']")
    expect(form).to_be_visible()
    expect(form.locator("[name=tags]")).to_have_value("seed")
    expect(form.locator("[name=notes]")).to_have_value("from a paper")
    expect(page.locator(f"form[data-annotate='{second}']")).to_have_count(0)

    form.locator("[name=tags]").fill("seed, " + "x" * 60)
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".field-error[data-field='tags']")).to_be_visible()
    tags = form.locator("[name=tags]")  # a screen reader hears it is refused, and why
    expect(tags).to_be_focused()
    expect(tags).to_have_attribute("aria-invalid", "true")
    expect(tags).to_have_accessible_description(re.compile("at most 40 characters"))

    form.locator("[name=tags]").fill("seed, baseline")
    form.locator("[name=notes]").fill("rerun with flips")
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden()
    row_tags = page.locator(f"[data-tags-for='{first}'] .tag")
    expect(row_tags).to_have_text(["seed", "baseline"])
    expect(page.locator(f"[data-notes-for='{first}']")).to_have_text("rerun with flips")

    page.reload()
    expect(page.locator(f"[data-tags-for='{first}'] .tag")).to_have_text(["seed", "baseline"])
    saved = httpx.get(f"{stack.base_url}/api/experiments/{first}").json()
    assert (saved["tags"], saved["notes"]) == (["seed", "baseline"], "rerun with flips")
    untouched = httpx.get(f"{stack.base_url}/api/experiments/{second}").json()
    assert (untouched["tags"], untouched["notes"]) == (["seed"], "from a paper")

    # The experiment's own page carries its form, filled from the record.
    page.goto(f"{stack.base_url}/experiments/{second}")
    page.locator(f"[data-annotate-open='{second}']").click()
    panel = page.locator(f"form[data-annotate='{second}']")
    expect(panel.locator("[name=tags]")).to_have_value("seed")
    panel.locator("[name=notes]").fill("checked against the paper")
    panel.get_by_role("button", name="Save").click()
    expect(panel).to_be_hidden()
    expect(page.locator(f"[data-notes-for='{second}']")).to_have_text("checked against the paper")
