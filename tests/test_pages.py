"""HTML pages and the SSE stream against a real SQLite database (no broker, no browser).

The one stand-in: ``enqueue_training`` records ids instead of talking to Redis.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud, db
from app.core.models import Experiment, Status
from app.core.presets import PRESETS
from app.core.report_import import parse_classification_report
from app.core.schemas import EvaluationPublic, FieldError, SpecError
from app.core.zoo import MODELS
from app.services import outbox
from app.web import experiment_sections, templating
from app.web.routes import events, launch_pages
from tests.support.factories import (
    CIFAR10_CLASSES,
    cifar10_report,
    end_experiment,
    finished_experiment,
    make_evaluated,
    make_experiment,
)
from tests.support.pages import (
    XSS,
    Element,
    by_id,
    described_input,
    description,
    elements,
    error_summary,
    field_errors,
    form,
    inputs,
    post_form,
)


@dataclass
class Enqueued:
    ids: list[int] = field(default_factory=list)
    committed_status: list[str] = field(default_factory=list)


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> Enqueued:
    """Records enqueued ids and what a separate session (like the worker's) sees then."""
    record = Enqueued()

    def fake_enqueue(experiment_id: int) -> None:
        with db.get_sessionmaker()() as other:
            experiment = other.get(Experiment, experiment_id)
            record.committed_status.append(experiment.status if experiment else "missing")
        record.ids.append(experiment_id)

    monkeypatch.setattr(outbox, "enqueue_training", fake_enqueue)
    return record


# --- the launch form ---------------------------------------------------------------------------


def test_form_inputs_are_generated_from_the_hyperparameter_schema(client: TestClient) -> None:
    response = client.get("/experiments/new")
    assert response.status_code == 200
    fields = inputs(response.text)
    schema = MODELS["custom_cnn"].hyperparameters.model_json_schema()["properties"]
    varied = {f"vary.{key}" for key in schema if key != "seed"}  # a sweep's grid axes
    expected = {"csrf_token", "name", "model", "tags", "seeds", "max_parallel"} | varied
    assert expected | {f"hp.{key}" for key in schema} == set(fields)
    epochs = fields["hp.epochs"]
    assert (epochs["type"], epochs["value"], epochs["min"], epochs["max"], epochs["step"]) == (
        "number",
        str(schema["epochs"]["default"]),
        "1",
        "500",
        "1",
    )
    assert fields["hp.learning_rate"]["value"] == "0.001"
    assert fields["hp.learning_rate"]["step"] == "any"
    assert fields["hp.train_size"]["value"] == ""  # null: all images
    assert schema["epochs"]["description"] in response.text


def test_form_has_one_fieldset_per_hyperparameter_class(client: TestClient) -> None:
    html = client.get("/experiments/new").text
    options = [
        e.attrs["value"]
        for e in elements(html)
        if e.tag == "option" and e.attrs.get("value") in MODELS
    ]
    assert set(options) == set(MODELS)
    fieldsets = [e for e in elements(html) if e.tag == "fieldset"]
    classes = {info.hyperparameters for info in MODELS.values()}
    assert len(fieldsets) == len(classes)
    shown = [f for f in fieldsets if "disabled" not in f.attrs]
    assert len(shown) == 1 and "custom_cnn" in shown[0].attrs["data-models"].split()
    assert all("hidden" in f.attrs for f in fieldsets if f not in shown)
    listed = [model for f in fieldsets for model in f.attrs["data-models"].split()]
    assert sorted(listed) == sorted(MODELS)


def test_choice_fields_render_as_selects(client: TestClient) -> None:
    html = client.get("/experiments/new").text
    collector = [e for e in elements(html) if not e.disabled]
    names = [e.attrs.get("name") for e in collector if e.tag == "select"]
    schema = MODELS["custom_cnn"].hyperparameters.model_json_schema()["properties"]
    choices = [
        key for key, prop in schema.items() if prop.get("type") == "boolean" or "enum" in prop
    ]
    assert choices and {f"hp.{key}" for key in choices} <= set(names)


def test_valid_post_creates_queued_experiment_and_enqueues_after_commit(
    client: TestClient, enqueued: Enqueued, session: Session
) -> None:
    response = post_form(client, "/experiments/new", form(), follow_redirects=False)
    assert response.status_code == 303
    experiment_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert enqueued.ids == [experiment_id]
    assert enqueued.committed_status == ["queued"]  # visible to another session: committed
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    assert experiment is not None and experiment.status == Status.queued
    assert experiment.tags == ["baseline", "small"]
    hyperparameters = experiment.spec["hyperparameters"]
    assert (hyperparameters["epochs"], hyperparameters["learning_rate"]) == (3, 0.002)
    assert (hyperparameters["train_size"], hyperparameters["test_size"]) == (None, 500)
    assert hyperparameters["seed"] == 0  # empty input: the default applies
    assert client.get(response.headers["location"]).status_code == 200


@pytest.mark.parametrize("epochs", ["0", "abc"])
def test_invalid_post_shows_field_error_and_launches_nothing(
    client: TestClient, enqueued: Enqueued, session: Session, epochs: str
) -> None:
    response = post_form(client, "/experiments/new", form(**{"hp.epochs": epochs}))
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert list(errors) == ["hyperparameters.epochs"]
    assert errors["hyperparameters.epochs"]
    assert "error-summary" in response.text
    fields = inputs(response.text)
    assert fields["hp.epochs"]["value"] == epochs  # what the user typed is kept
    assert fields["name"]["value"] == "form run"
    assert fields["hp.test_size"]["value"] == "500"
    assert enqueued.ids == []
    assert crud.list_experiments(session=session)[1] == 0


def test_a_refused_launch_ties_each_error_to_its_field_for_screen_readers(
    client: TestClient, enqueued: Enqueued
) -> None:
    """WCAG 3.3.1 and 4.1.2: each refused field says it is invalid and is described by its
    message; the summary above the form, focused on load, links to each of them."""
    bad = form(**{"tags": "x" * 41, "hp.epochs": "0"})
    html = post_form(client, "/experiments/new", bad).text
    tags = described_input(html, "tags.0")
    epochs = described_input(html, "hyperparameters.epochs")
    assert (tags.attrs["id"], epochs.attrs["id"]) == ("tags", "hp-custom_cnn-epochs")
    assert "at most 40 characters" in description(html, tags)
    assert "greater than or equal to 1" in description(html, epochs)
    assert "aria-invalid" not in by_id(html, "name").attrs  # a field that was fine
    summary, links = error_summary(html)
    assert (summary.attrs["role"], summary.attrs["tabindex"]) == ("alert", "-1")
    assert "autofocus" in summary.attrs
    heading = [e.text for e in elements(html) if e.tag == "h2" and "error-summary" in e.within]
    assert heading == ["There is a problem"]
    assert links == ["#tags", "#hp-custom_cnn-epochs"]
    assert enqueued.ids == []


def test_an_error_that_names_no_field_is_only_in_the_summary(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(session: Session, spec: object, **_: object) -> Experiment:
        queue_down = FieldError(field="spec", message="the queue is down")
        raise SpecError(
            [queue_down, FieldError(field="hyperparameters.epochs", message="no workers left")]
        )

    monkeypatch.setattr(launch_pages, "launch", refuse)
    html = post_form(client, "/experiments/new", form()).text
    assert field_errors(html) == {"hyperparameters.epochs": "no workers left"}
    _, links = error_summary(html)
    assert links == ["#hp-custom_cnn-epochs"]
    listed = [e.text for e in elements(html) if e.tag == "li" and "error-summary" in e.within]
    assert any("the queue is down" in text for text in listed), listed
    assert html.count("the queue is down") == 1
    invalid = [e.attrs["id"] for e in elements(html) if e.attrs.get("aria-invalid") == "true"]
    assert invalid == ["hp-custom_cnn-epochs"]


def test_a_blank_name_is_derived_from_what_the_form_changes(
    client: TestClient, enqueued: Enqueued, session: Session
) -> None:
    """The name box is optional (app.core.naming): a blank one names the run by its changes."""
    assert 'id="name" name="name" type="text" required' not in client.get("/experiments/new").text
    response = post_form(client, "/experiments/new", form(name="  "), follow_redirects=False)
    assert response.status_code == 303, response.text
    experiment = crud.get_experiment(session=session, experiment_id=enqueued.ids[0])
    assert experiment is not None
    assert (
        experiment.name == "custom_cnn · epochs=3 batch_size=64 test_size=500 learning_rate=0.002"
    )


def test_broker_down_keeps_it_queued_for_the_outbox_and_still_redirects(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(experiment_id: int) -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(outbox, "enqueue_training", broker_down)
    response = post_form(client, "/experiments/new", form(), follow_redirects=False)
    assert response.status_code == 303
    experiment = crud.list_experiments(session=session)[0][0]
    assert response.headers["location"] == f"/experiments/{experiment.id}"
    assert (experiment.status, experiment.enqueued_at) == (Status.queued, None)


def test_from_prefills_the_form_with_a_copy(client: TestClient, session: Session) -> None:
    source = make_experiment(session, epochs=7, learning_rate=0.01)
    fields = inputs(client.get(f"/experiments/new?from={source.id}").text)
    assert fields["name"]["value"] == "tiny cnn (copy)"
    assert fields["tags"]["value"] == "test"
    assert (fields["hp.epochs"]["value"], fields["hp.learning_rate"]["value"]) == ("7", "0.01")
    assert fields["hp.train_size"]["value"] == "200"
    assert client.get("/experiments/new?from=999").status_code == 404


def _cards(html: str) -> list[Element]:
    return [e for e in elements(html) if "data-preset" in e.attrs]


def test_presets_are_cards_grouped_by_kind_above_the_form(client: TestClient) -> None:
    html = client.get("/experiments/new").text
    assert "open" in by_id(html, "presets").attrs
    titles = [e.text for e in elements(html) if e.tag == "h3" and e.text]
    assert titles[:3] == ["The original study", "Quick (minutes on a CPU)", "Beyond the study"]
    assert [card.attrs["data-preset"] for card in _cards(html)] == list(PRESETS)
    assert html.index('id="presets"') < html.index('id="launch-form"')
    actions = {e.attrs["action"] for e in elements(html) if e.tag == "form"}
    assert {f"/presets/{name}/launch" for name in PRESETS} <= actions
    links = {e.attrs.get("href") for e in elements(html) if e.tag == "a"}
    assert {f"/experiments/new?preset={name}" for name in PRESETS} <= links
    studies = [e.text for e in elements(html) if "preset-study" in e.attrs.get("class", "")]
    assert studies == ["study: 0.82", "study: 0.90", "study: 0.89", "study: 0.94"]
    assert PRESETS["quick-custom-cnn"].description in html


def test_preset_launch_is_one_click(
    client: TestClient, enqueued: Enqueued, session: Session
) -> None:
    preset = PRESETS["quick-custom-cnn"]
    response = post_form(client, f"/presets/{preset.name}/launch", follow_redirects=False)
    assert response.status_code == 303
    experiment_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert enqueued.ids == [experiment_id] and enqueued.committed_status == ["queued"]
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    assert experiment is not None
    assert experiment.spec == preset.spec.model_dump(mode="json")
    assert experiment.tags == ["quick", "quick-custom-cnn"]
    assert post_form(client, "/presets/nope/launch").status_code == 404
    assert enqueued.ids == [experiment_id]


def test_refused_preset_launch_shows_the_form_prefilled_with_the_error(
    client: TestClient, enqueued: Enqueued, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(session: Session, spec: object, **_: object) -> Experiment:
        raise SpecError([FieldError(field="hyperparameters.epochs", message="no workers left")])

    monkeypatch.setattr(launch_pages, "launch", refuse)
    response = post_form(client, "/presets/quick-residual-cnn/launch")
    assert response.status_code == 422
    assert field_errors(response.text) == {"hyperparameters.epochs": "no workers left"}
    fields = inputs(response.text)
    assert fields["name"]["value"] == "Quick: residual CNN"
    assert fields["hp.width"]["value"] == "16"
    assert enqueued.ids == []


def test_preset_query_prefills_the_form(client: TestClient) -> None:
    preset = PRESETS["quick-transfer-two-phase"]
    html = client.get(f"/experiments/new?preset={preset.name}").text
    fields = inputs(html)
    assert fields["name"]["value"] == preset.title
    selected = [
        e.attrs["value"] for e in elements(html) if e.tag == "option" and "selected" in e.attrs
    ]
    assert "mobilenet_v2" in selected
    assert fields["tags"]["value"] == "quick, quick-transfer-two-phase"
    assert (fields["hp.epochs"]["value"], fields["hp.fine_tune_epochs"]["value"]) == ("1", "1")
    assert fields["hp.train_size"]["value"] == str(preset.spec.hyperparameters.train_size)
    assert "open" not in by_id(html, "presets").attrs  # the form is what matters now
    assert preset.title in by_id(html, "prefilled").text
    assert client.get("/experiments/new?preset=nope").status_code == 404


# --- the experiment page and its stream --------------------------------------------------------


def test_experiment_page_renders_facts_charts_and_report(
    client: TestClient, session: Session
) -> None:
    experiment = finished_experiment(session)
    html = client.get(f"/experiments/{experiment.id}").text
    assert by_id(html, "status").text == "succeeded"
    facts = {e.attrs["data-fact"]: e.text for e in elements(html) if "data-fact" in e.attrs}
    assert facts["worker_host"] == "gpu-1"
    assert facts["device"] == "CPU:0"
    assert facts["parameters"] == "550,570"
    assert facts["trainable_parameters"] == "550,000"
    layers = [e.text for e in elements(html) if e.attrs.get("data-layer") is not None]
    assert layers == ["conv2d", "dense"]
    assert facts["test_accuracy"] == "87.50%"
    assert facts["macro_f1"] == "0.778"
    assert "hidden" in by_id(html, "error").attrs
    progress = by_id(html, "progress")
    assert (progress.attrs["data-current-epoch"], progress.attrs["data-total-epochs"]) == ("2", "2")
    assert by_id(html, "phase").text == "finished"
    assert by_id(html, "progress-detail").text == "2/2 epochs · 100% overall"
    assert by_id(html, "accuracy-chart") and by_id(html, "loss-chart")
    figures = _figures(html)
    assert [trace["y"] for trace in figures["accuracy-chart"]["data"]] == [
        [0.31, 0.52],
        [0.28, 0.47],
    ]
    assert figures["loss-chart"]["data"][0]["x"] == [1, 2]
    heatmap = figures["confusion-matrix"]["data"][0]
    assert heatmap["y"] == CIFAR10_CLASSES and heatmap["z"][0][0] == 7
    report = by_id(html, "report")
    assert report.tag == "table"
    rows = [e.attrs["data-row"] for e in elements(html) if "data-row" in e.attrs]
    assert rows == [*CIFAR10_CLASSES, "accuracy", "macro avg", "weighted avg"]
    page_data = json.loads(_script(html, 'id="experiment-data"'))
    assert page_data["lastEpoch"] == 2 and page_data["finished"] is True


def _script(html: str, marker: str) -> str:
    match = re.search(rf'<script type="application/json" {marker}>(.*?)</script>', html, re.S)
    assert match, marker
    return match.group(1)


def _figures(html: str) -> dict[str, dict]:
    pattern = r'<script type="application/json" data-chart="([\w-]+)">(.*?)</script>'
    return {name: json.loads(body) for name, body in re.findall(pattern, html, re.S)}


def two_phase_experiment(session: Session, phases: list[str]) -> Experiment:
    """A transfer run as the worker records it: one row per epoch, each with its phase."""
    spec = PRESETS["study-efficientnetb2-fine-tuned"].spec
    experiment = crud.create_experiment(session=session, spec=spec)
    lease = crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="gpu-1", device="GPU:0"
    )
    assert lease is not None
    for epoch, phase in enumerate(phases, start=1):
        values = {
            "phase": phase, "accuracy": 0.5 + epoch / 100, "val_accuracy": 0.5,
            "loss": 1.0, "val_loss": 1.1, "learning_rate": 1e-3 if phase == "train" else 1e-4,
            "seconds": 10.0 * epoch, "images_per_second": 1000.0 + epoch,
        }  # fmt: skip
        crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
    session.commit()
    return experiment


def _boundaries(figure: dict) -> list[float]:
    return [
        shape["x0"]
        for shape in figure["layout"].get("shapes", [])
        if shape["line"].get("dash") == "dash" and shape["x0"] == shape["x1"]
    ]


def test_fine_tuning_is_marked_in_every_curve_chart(client: TestClient, session: Session) -> None:
    experiment = two_phase_experiment(session, ["train"] * 3 + ["fine_tune"] * 2)
    html = client.get(f"/experiments/{experiment.id}").text
    figures = _figures(html)
    for chart in ("accuracy-chart", "loss-chart", "learning-rate-chart"):
        assert _boundaries(figures[chart]) == [3.5], chart
        labels = [a["text"] for a in figures[chart]["layout"]["annotations"]]
        assert labels == ["fine-tuning"], chart
    rates = figures["learning-rate-chart"]
    assert rates["layout"]["yaxis"]["type"] == "log"
    assert rates["data"][0]["y"] == [1e-3, 1e-3, 1e-3, 1e-4, 1e-4]
    page_data = json.loads(_script(html, 'id="experiment-data"'))
    assert (page_data["lastEpoch"], page_data["lastPhase"]) == (5, "fine_tune")
    assert page_data["boundaryMarks"]["shape"]["line"]["dash"] == "dash"


def test_one_phase_draws_no_boundary(client: TestClient, session: Session) -> None:
    experiment = two_phase_experiment(session, ["train"] * 3)
    figures = _figures(client.get(f"/experiments/{experiment.id}").text)
    assert all(_boundaries(figure) == [] for figure in figures.values())


def test_speed_facts_give_the_mean_and_the_last_epoch(client: TestClient, session: Session) -> None:
    experiment = two_phase_experiment(session, ["train", "train", "fine_tune"])
    html = client.get(f"/experiments/{experiment.id}").text
    facts = {e.attrs["data-fact"]: e.text for e in elements(html) if "data-fact" in e.attrs}
    assert facts["seconds_per_epoch"] == "20.0 s mean · 30.0 s last"
    assert facts["images_per_second"] == "1,002 mean · 1,003 last"
    empty = make_experiment(session)
    facts = {
        e.attrs["data-fact"]: e.text
        for e in elements(client.get(f"/experiments/{empty.id}").text)
        if "data-fact" in e.attrs
    }
    assert facts["seconds_per_epoch"] == facts["images_per_second"] == "—"


def test_a_study_run_shows_what_the_study_reported(client: TestClient, session: Session) -> None:
    study = two_phase_experiment(session, ["train"])
    html = client.get(f"/experiments/{study.id}").text
    assert by_id(html, "study-accuracy").text == "The study reported test accuracy 0.94"
    plain = make_experiment(session)
    assert 'id="study-accuracy"' not in client.get(f"/experiments/{plain.id}").text


def test_model_download_is_offered_only_once_succeeded(
    client: TestClient, session: Session
) -> None:
    running = two_phase_experiment(session, ["train"])
    finished = finished_experiment(session)
    for experiment, hidden in ((running, True), (finished, False)):
        html = client.get(f"/experiments/{experiment.id}").text
        download = by_id(html, "download")
        assert download.attrs["href"] == f"/api/experiments/{experiment.id}/model"
        assert ("hidden" in download.attrs) is hidden
        relaunch = by_id(html, "relaunch")
        assert relaunch.attrs["href"] == f"/experiments/new?from={experiment.id}"
        assert relaunch.text == "Launch again with changes"


def test_failed_experiment_shows_its_multiline_error(client: TestClient, session: Session) -> None:
    experiment = make_experiment(session)
    error = "CIFAR-10 not found.\nSet CIFARLAB_CIFAR10_PATH to cifar-10-python.tar.gz."
    end_experiment(session, experiment.id, Status.failed, error=error)
    session.commit()
    html = client.get(f"/experiments/{experiment.id}").text
    assert "hidden" not in by_id(html, "error").attrs
    assert error in html
    # Nothing more is coming: the page says so, not that results appear once training ends.
    missing, waiting = by_id(html, "evaluation-missing"), by_id(html, "evaluation-waiting")
    assert "hidden" not in missing.attrs and "hidden" in waiting.attrs
    said = re.search(r'id="evaluation-missing">(.*?)</p>', html)
    assert said is not None and re.sub(r"<[^>]+>", "", said.group(1)) == (
        "No evaluation on the test set: the run ended before it (failed)."
    )
    notes = {
        chart: [a["text"] for a in figure["layout"].get("annotations", [])]
        for chart, figure in _figures(html).items()
    }
    no_epoch = ["No epoch was recorded: the run ended before its first one."]
    assert notes == dict.fromkeys(
        ["accuracy-chart", "loss-chart", "learning-rate-chart", "gap-chart"], no_epoch
    )


def test_unknown_experiment_is_a_404_page(client: TestClient) -> None:
    response = client.get("/experiments/12345")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "12345" in response.text


def test_an_address_no_route_serves_is_a_titled_page_for_a_browser_and_json_for_the_api(
    client: TestClient,
) -> None:
    """A browser opening a mistyped address got raw {"detail":"Not Found"}: no title, no
    language, no way back."""
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client.get("/no/such/page", headers=browser)
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert '<html lang="en">' in page.text and "<title>Not found" in page.text
    assert "no page at this address" in page.text and 'href="/"' in page.text
    assert client.get("/no/such/page").json() == {"detail": "Not Found"}  # curl, scripts
    missing = client.get("/api/experiments/12345", headers=browser)  # a route's own 404
    assert missing.status_code == 404 and "12345" in missing.json()["detail"]


def test_evaluation_panel_is_the_section_the_live_page_swaps_in(
    client: TestClient, session: Session
) -> None:
    experiment = finished_experiment(session)
    fragment = client.get(f"/experiments/{experiment.id}/evaluation")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert by_id(fragment.text, "report").tag == "table"
    assert "confusion-matrix" in _figures(fragment.text)
    pending = make_experiment(session)
    assert client.get(f"/experiments/{pending.id}/evaluation").status_code == 404


def test_an_evaluation_without_a_matrix_shows_the_report_alone() -> None:
    """Imported reports may come without their confusion matrix."""
    evaluation = EvaluationPublic(
        accuracy=0.875,
        test_size=80,
        classes=CIFAR10_CLASSES,
        confusion_matrix=None,
        report=cifar10_report(),
    )
    context = experiment_sections.evaluation_context(evaluation)
    assert context["confusion_figure"] is None
    assert [row["label"] for row in context["report_rows"]][-3:] == [
        "accuracy",
        "macro avg",
        "weighted avg",
    ]
    html = templating.templates.get_template("_evaluation.html").render(context)
    assert 'id="report"' in html and "confusion-matrix" not in html


VAL_LOSS = [1.0, 0.8, 0.7, 0.75, 0.9, 1.1]
OVERFIT = [
    {"loss": 1.0 - 0.1 * e, "accuracy": 0.5 + 0.05 * e, "val_loss": VAL_LOSS[e],
     "val_accuracy": 0.6, "learning_rate": 1e-3}
    for e in range(6)
]  # fmt: skip
LABELS = [i % 10 for i in range(100)]


def test_experiment_page_reads_its_curves_in_words(client: TestClient, session: Session) -> None:
    experiment = make_evaluated(session, LABELS, LABELS, epochs=OVERFIT)
    html = client.get(f"/experiments/{experiment.id}").text
    section = by_id(html, "diagnosis")
    assert section.tag == "section"
    verdict = next(e for e in elements(html) if "data-verdict" in e.attrs).text
    assert verdict.startswith("The model overfits from epoch 3")
    findings = [e.attrs["data-finding"] for e in elements(html) if "data-finding" in e.attrs]
    assert findings[0] == "overfitting"
    best = next(e for e in elements(html) if "data-best-epoch" in e.attrs)
    assert best.attrs["data-best-epoch"] == "3"
    # By its rule: the list's "best val accuracy" is the highest, this is early stopping's.
    assert best.text == "Lowest validation loss at epoch  · validation accuracy 60.00%"
    gap = _figures(html)["gap-chart"]
    assert gap["data"][0]["x"] == [1, 2, 3, 4, 5, 6]
    assert gap["data"][0]["y"][0] == pytest.approx(-0.1)
    names = {chart: figure["config"]["toImageButtonOptions"]["filename"]
             for chart, figure in _figures(html).items()}  # fmt: skip
    assert names["gap-chart"] == f"cifarlab-experiment-{experiment.id}-gap"
    assert names["confusion-matrix"] == f"cifarlab-experiment-{experiment.id}-confusion-matrix"
    traces = json.loads(_script(html, 'id="experiment-data"'))["traces"]  # for the live page
    assert traces == {
        "accuracy-chart": ["accuracy", "val_accuracy"],
        "loss-chart": ["loss", "val_loss"],
        "learning-rate-chart": ["learning_rate"],
    }


def test_a_running_experiments_diagnosis_is_provisional_and_refreshable(
    client: TestClient, session: Session
) -> None:
    experiment = two_phase_experiment(session, ["train", "train"])
    fragment = client.get(f"/experiments/{experiment.id}/diagnostics")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    verdict = next(e for e in elements(fragment.text) if "data-verdict" in e.attrs).text
    assert verdict.startswith("So far: ")
    assert _figures(fragment.text)["gap-chart"]["data"][0]["x"] == [1, 2]
    waiting = client.get(f"/experiments/{make_experiment(session).id}/diagnostics").text
    assert "No epochs yet." in waiting
    assert client.get("/experiments/999/diagnostics").status_code == 404


def test_matrix_cells_open_the_gallery_only_with_per_image_results(
    client: TestClient, session: Session
) -> None:
    with_images = make_evaluated(session, LABELS, LABELS)
    matrix = by_id(client.get(f"/experiments/{with_images.id}").text, "confusion-matrix")
    assert (matrix.attrs["data-gallery"], matrix.attrs["data-gallery-name"]) == (
        str(with_images.id), "tiny cnn",
    )  # fmt: skip
    html = client.get(f"/experiments/{with_images.id}").text
    assert by_id(html, "gallery").tag == "dialog"
    assert '<script src="/static/gallery.js"' in html
    without = finished_experiment(session)  # evaluated without per-image predictions
    matrix = by_id(client.get(f"/experiments/{without.id}").text, "confusion-matrix")
    assert "data-gallery" not in matrix.attrs


STUDY_REPORT = """              precision    recall  f1-score   support

         cat       0.80      0.40      0.53        10
         dog       0.60      0.90      0.72        10

    accuracy                           0.65        20
   macro avg       0.70      0.65      0.63        20
weighted avg       0.70      0.65      0.63        20
"""


def imported_experiment(session: Session, matrix: str | None = None) -> Experiment:
    experiment = crud.import_experiment(
        session=session, name="study cnn", tags=["study"], notes="From the paper.",
        imported=parse_classification_report(STUDY_REPORT, matrix),
    )  # fmt: skip
    session.commit()
    return experiment


def test_an_imported_report_shows_the_report_not_a_run(
    client: TestClient, session: Session
) -> None:
    experiment = imported_experiment(session, "[[4 6]\n [1 9]]")
    html = client.get(f"/experiments/{experiment.id}").text
    assert by_id(html, "imported-report").tag == "section"
    assert by_id(html, "status").text == "imported"
    for absent in ("progress", "accuracy-chart", "loss-chart", "cancel", "relaunch", "download",
                   "diagnostics"):  # fmt: skip
        assert f'id="{absent}"' not in html, absent
    rows = [e.attrs["data-row"] for e in elements(html) if "data-row" in e.attrs]
    assert rows == ["cat", "dog", "accuracy", "macro avg", "weighted avg"]
    assert _figures(html)["confusion-matrix"]["data"][0]["z"] == [[4, 6], [1, 9]]
    assert "data-gallery" not in by_id(html, "confusion-matrix").attrs
    facts = {e.attrs["data-fact"]: e.text for e in elements(html) if "data-fact" in e.attrs}
    # As the two-digit report gave them: no "65.00%" or "0.630" it never printed.
    assert (facts["test_size"], facts["test_accuracy"], facts["macro_f1"]) == ("20", "65%", "0.63")
    notes = next(e for e in elements(html) if e.attrs.get("data-notes-for") == str(experiment.id))
    assert notes.text == "From the paper."
    assert f'data-annotate="{experiment.id}"' in html
    bare = client.get(f"/experiments/{imported_experiment(session).id}").text
    assert 'id="report"' in bare and 'id="confusion-matrix"' not in bare


# --- list, plotly.js, escaping, no CDN ---------------------------------------------------------


def test_list_shows_filters_and_paginates(client: TestClient, session: Session) -> None:
    finished_experiment(session, name="alpha run")
    for _ in range(26):
        make_experiment(session)
    html = client.get("/").text
    assert html.count('class="row-link"') == 25
    assert 'href="/?page=2"' in html
    filtered = client.get("/?status=succeeded&q=alpha").text
    assert filtered.count('class="row-link"') == 1
    assert "87.50%" in filtered and "badge-succeeded" in filtered
    cells = {e.attrs["data-column"]: e for e in elements(filtered) if "data-column" in e.attrs}
    assert cells["epochs"].text == "2/2"
    assert cells["macro_f1"].text == "0.778"
    assert cells["parameters"].text == "550.6k"
    assert cells["parameters"].attrs["title"] == "550,570 parameters"
    assert cells["training_seconds"].text == "30s"
    headers = [e.text for e in elements(filtered) if e.tag in ("th", "a") and e.text]
    assert {"Epochs", "Macro F1", "Parameters", "Training time", "Test accuracy"} <= set(headers)
    assert client.get("/?q=nomatch").text.count('class="row-link"') == 0


def _names(html: str) -> list[str]:
    return [e.text for e in elements(html) if "row-link" in e.attrs.get("class", "")]


def _sort_links(html: str) -> dict[str, str]:
    return {e.attrs["data-sort"]: e.attrs["href"] for e in elements(html) if "data-sort" in e.attrs}


def test_list_sorts_by_a_column_and_a_second_click_flips_it(
    client: TestClient, session: Session
) -> None:
    for name in ("beta", "alpha", "gamma"):
        finished_experiment(session, name=name)
    links = _sort_links(client.get("/").text)
    assert links["name"] == "/?sort=name&order=asc"  # names start A-Z
    assert links["test_accuracy"] == "/?sort=test_accuracy&order=desc"  # numbers: best first
    ascending = client.get(links["name"]).text
    assert _names(ascending) == ["alpha", "beta", "gamma"]
    assert by_id(ascending, "experiments").tag == "table"
    flipped = _sort_links(ascending)["name"]
    assert flipped == "/?sort=name&order=desc"
    assert _names(client.get(flipped).text) == ["gamma", "beta", "alpha"]
    assert _sort_links(client.get("/?sort=created_at&order=asc").text)["created_at"] == "/"
    assert _names(client.get("/?sort=nonsense").text) == ["gamma", "alpha", "beta"]  # newest


def test_list_filters_by_tag_and_finds_text_in_notes(client: TestClient, session: Session) -> None:
    tagged = finished_experiment(session, name="tagged")
    crud.update_experiment(
        session=session,
        experiment=tagged,
        changes={"tags": ["baseline", "small"], "notes": "augmentation helps"},
    )
    session.commit()
    finished_experiment(session, name="other")
    assert _names(client.get("/?tag=baseline").text) == ["tagged"]
    assert _names(client.get("/?q=augmentation").text) == ["tagged"]
    html = client.get("/").text
    tags = [e for e in elements(html) if e.tag == "a" and "tag" in e.attrs.get("class", "")]
    assert {(tag.text, tag.attrs["href"]) for tag in tags} >= {("baseline", "/?tag=baseline")}
    notes = [e for e in elements(html) if e.attrs.get("data-notes-for") == str(tagged.id)]
    assert notes[0].text == "augmentation helps" and "hidden" not in notes[0].attrs


def test_list_rows_are_selectable_for_compare_and_editable_in_place(
    client: TestClient, session: Session
) -> None:
    first, second = finished_experiment(session), finished_experiment(session)
    html = client.get("/").text
    assert by_id(html, "compare-form").attrs["action"] == "/compare"
    boxes = [e.attrs for e in elements(html) if "select-row" in e.attrs.get("class", "")]
    assert {(box["name"], box["value"], box["form"]) for box in boxes} == {
        ("ids", str(first.id), "compare-form"), ("ids", str(second.id), "compare-form"),
    }  # fmt: skip
    opener = next(e for e in elements(html) if e.attrs.get("data-annotate-open") == str(first.id))
    assert opener.attrs["aria-controls"] == f"annotate-{first.id}"
    # One form in a <template>, not one per row: annotate.js copies it under the opened row.
    assert html.count('<form class="annotate-form"') == 1
    assert by_id(html, "annotate-template").tag == "template"
    assert f'id="annotate-{first.id}"' not in html
    assert by_id(html, "import-link").attrs["href"] == "/experiments/import"
    assert '<script src="/static/annotate.js"' in html and '<script src="/static/list.js"' in html


def test_plotly_is_served_locally_with_caching(client: TestClient) -> None:
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=86400"
    etag = response.headers["etag"]
    assert len(response.content) > 1_000_000
    again = client.get("/static/vendor/plotly.min.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag and not again.content
    head = client.head("/static/vendor/plotly.min.js")  # what caches and proxies check with
    assert head.status_code == 200 and head.headers["etag"] == etag


def test_user_text_is_escaped_everywhere(client: TestClient, session: Session) -> None:
    experiment = finished_experiment(session, name=XSS)
    crud.update_experiment(
        session=session, experiment=experiment, changes={"tags": [XSS], "notes": XSS}
    )
    running = named(make_experiment(session), XSS)
    crud.claim_experiment(
        session=session, experiment_id=running.id, worker_host=XSS, device=XSS, worker_name=XSS
    )
    crud.see_worker(session=session, name=XSS, hostname=XSS, pid=1, device=XSS)
    queued = named(make_experiment(session), XSS)
    session.commit()
    imported = post_form(client, "/experiments/import", {
        "name": XSS, "tags": XSS, "notes": XSS, "report_text": STUDY_REPORT,
    })  # fmt: skip
    assert imported.status_code == 200 and by_id(imported.text, "imported-report")
    pages = ["/", f"/experiments/{experiment.id}", f"/experiments/new?from={experiment.id}",
             f"/experiments/{running.id}", f"/experiments/{queued.id}", "/workers",
             "/workers/live", f"/compare?ids={experiment.id},{running.id}",
             f"/login?next=/{XSS}"]  # fmt: skip
    for html in [imported.text, *(client.get(url).text for url in pages)]:
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def named(experiment: Experiment, name: str) -> Experiment:
    experiment.name = name
    return experiment


# --- runs that stop or die, workers and the queue ----------------------------------------------


def _shown(html: str, element_id: str) -> bool:
    return "hidden" not in by_id(html, element_id).attrs


def test_a_queued_experiment_shows_its_place_in_the_queue(
    client: TestClient, session: Session
) -> None:
    first, second = make_experiment(session), make_experiment(session)
    html = client.get(f"/experiments/{second.id}").text
    assert _shown(html, "queue-position")
    assert " ".join(by_id(html, "queue-position").text.split()).startswith("Queued: position")
    position = next(e for e in elements(html) if "data-queue-position" in e.attrs)
    assert position.text == "2"
    assert _shown(html, "cancel") and not _shown(html, "retry") and not _shown(html, "delete")
    tick = events.read_tick(first.id, 0)
    assert tick is not None and tick.progress.queue_position == 1  # live, by SSE
    crud.claim_experiment(session=session, experiment_id=first.id, worker_host="h", device="CPU")
    session.commit()
    assert not _shown(client.get(f"/experiments/{first.id}").text, "queue-position")


def test_a_queued_run_with_no_worker_online_says_so(client: TestClient, session: Session) -> None:
    """A dashboard-only install, or every worker stopped: "when a worker is free" would wait
    for ever without a word."""
    queued = make_experiment(session)
    session.commit()
    html = client.get(f"/experiments/{queued.id}").text
    note = by_id(html, "no-worker-online").text
    assert note.startswith("no worker is online, so it starts when one connects")
    assert "<code>cifarlab worker</code>" in html[html.index('id="no-worker-online"') :]
    crud.see_worker(session=session, name="w1@h", hostname="h", pid=1, device="CPU")
    session.commit()
    html = client.get(f"/experiments/{queued.id}").text
    assert 'id="no-worker-online"' not in html and "it starts when a worker is free" in html


@pytest.mark.parametrize(
    ("status", "shown"),
    [("failed", {"retry", "delete"}), ("cancelled", {"retry", "delete"}),
     ("succeeded", {"delete", "download"}), ("running", {"cancel"})],
)  # fmt: skip
def test_each_state_offers_what_the_api_accepts(
    client: TestClient, session: Session, status: str, shown: set[str]
) -> None:
    experiment = make_experiment(session)
    experiment.status = status
    session.commit()
    html = client.get(f"/experiments/{experiment.id}").text
    buttons = {"cancel", "retry", "delete", "download"}
    assert {name for name in buttons if _shown(html, name)} == shown
    controls = {e.attrs["id"]: e.attrs for e in elements(html) if "data-action-url" in e.attrs}
    url = f"/api/experiments/{experiment.id}"
    assert {name: (c["data-method"], c["data-action-url"]) for name, c in controls.items()} == {
        "cancel": ("POST", f"{url}/cancel"), "retry": ("POST", f"{url}/retry"),
        "delete": ("DELETE", url),
    }  # fmt: skip
    assert controls["delete"]["data-confirm"] and controls["retry"]["data-after"] == "reload"
    assert '<script src="/static/actions.js"' in html


def test_a_lost_worker_failure_says_why_and_counts_its_attempts(
    client: TestClient, session: Session
) -> None:
    experiment = make_experiment(session)
    assert not _shown(client.get(f"/experiments/{experiment.id}").text, "attempts-row")
    error = "Worker lost: gpu-1 stopped sending heartbeats. Retry resumes from the last epoch."
    experiment.attempts = 2
    session.commit()
    end_experiment(session, experiment.id, Status.failed, error=error)
    session.commit()
    html = client.get(f"/experiments/{experiment.id}").text
    assert _shown(html, "error") and error in html
    assert _shown(html, "attempts-row")
    assert next(e for e in elements(html) if e.attrs.get("data-fact") == "attempts").text == "2"
    assert _shown(html, "retry")


def test_an_imported_report_can_be_deleted_not_cancelled(
    client: TestClient, session: Session
) -> None:
    html = client.get(f"/experiments/{imported_experiment(session).id}").text
    assert _shown(html, "delete") and 'id="cancel"' not in html and 'id="retry"' not in html


def test_the_workers_page_lists_workers_what_they_run_and_the_queue(
    client: TestClient, session: Session
) -> None:
    crud.see_worker(session=session, name="celery@gpu-1", hostname="gpu-1", pid=41, device="GPU:0")
    crud.see_worker(session=session, name="celery@gpu-2", hostname="gpu-2", pid=42, device="GPU:1")
    busy = named(make_experiment(session), "busy run")
    crud.claim_experiment(
        session=session, experiment_id=busy.id, worker_host="gpu-1", device="GPU:0",
        worker_name="celery@gpu-1",
    )  # fmt: skip
    waiting = [named(make_experiment(session), f"waiting {n}") for n in (1, 2)]
    session.commit()
    for url in ("/workers", "/workers/live"):
        html = client.get(url).text
        rows = {e.attrs["data-worker"]: e for e in elements(html) if "data-worker" in e.attrs}
        assert list(rows) == ["celery@gpu-1", "celery@gpu-2"]
        running = next(e for e in elements(html) if "data-running" in e.attrs)
        assert (running.attrs["href"], running.text) == (f"/experiments/{busy.id}", "busy run")
        assert "GPU:1" in html and "idle" in html and " ago" in html
        queue = [e.attrs["data-experiment"] for e in elements(html)
                 if e.tag == "tr" and "data-experiment" in e.attrs]  # fmt: skip
        assert queue == [str(e.id) for e in waiting]
        positions = [e.text for e in elements(html) if "data-position" in e.attrs]
        assert positions == ["1", "2"]
    page = client.get("/workers").text
    assert "<html" in page and '<script src="/static/workers.js"' in page
    assert next(e for e in elements(page) if e.attrs.get("href") == "/workers").text == "Workers"
    assert "<html" not in client.get("/workers/live").text


def test_restarts_show_on_the_workers_page_and_interruptions_on_the_experiment(
    client: TestClient, session: Session
) -> None:
    crud.see_worker(session=session, name="cifarlab-7@vm", hostname="vm", pid=7, device="CPU")
    crud.record_worker_restart(session=session, name="cifarlab-7@vm", reason="killed by SIGKILL")
    experiment = make_experiment(session)
    assert not _shown(client.get(f"/experiments/{experiment.id}").text, "interruption-row")
    reason = "Attempt 1: the worker was killed (SIGKILL), most likely out of memory."
    experiment.interruption = reason
    session.commit()
    for url in ("/workers", "/workers/live"):
        html = client.get(url).text
        cell = next(e for e in elements(html) if "data-restarts" in e.attrs)
        assert cell.attrs["data-restarts"] == "1" and "last killed by SIGKILL" in html
    [listed] = client.get("/api/workers").json()
    assert (listed["restarts"], listed["last_exit"]) == (1, "killed by SIGKILL")
    html = client.get(f"/experiments/{experiment.id}").text
    assert _shown(html, "interruption-row") and reason in html
    assert client.get(f"/api/experiments/{experiment.id}").json()["interruption"] == reason


def test_the_workers_page_says_when_nobody_is_there(client: TestClient) -> None:
    html = client.get("/workers").text
    assert by_id(html, "no-workers") and by_id(html, "empty-queue")
    assert "cifarlab worker" in html


def test_pages_load_nothing_from_other_hosts(client: TestClient, session: Session) -> None:
    experiment = finished_experiment(session)
    urls = ["/", "/experiments/new", f"/experiments/{experiment.id}", "/experiments/404",
            "/experiments/new?preset=quick-custom-cnn", "/workers", "/login"]  # fmt: skip
    for url in urls:
        html = client.get(url).text
        assert "http://" not in html and "https://" not in html, url
    page = client.get(f"/experiments/{experiment.id}").text
    assert '<script src="/static/vendor/plotly.min.js"' in page
    assert "Plotly.newPlot" not in page  # plotly.js and page code stay in static files


def test_a_collapsed_run_is_flagged_red_on_its_page_and_in_compare(
    client: TestClient, session: Session
) -> None:
    """The run of issue #15: every test image predicted as one class, validation accuracy at
    chance in both epochs; on the page, in compare and in the live page's last diagnostics."""
    at_chance = [
        {"loss": 2.35 - 0.02 * e, "accuracy": 0.1, "val_loss": 2.303, "val_accuracy": 0.1}
        for e in range(2)
    ]
    collapsed = make_evaluated(session, [0] * len(LABELS), LABELS, epochs=at_chance)
    other = make_evaluated(session, LABELS, LABELS, epochs=OVERFIT)

    def red_findings(html: str) -> list[Element]:
        return [e for e in elements(html) if e.attrs.get("data-finding") == "collapsed"]

    page = client.get(f"/experiments/{collapsed.id}").text
    (finding,) = red_findings(page)
    assert "finding-error" in finding.attrs["class"].split()
    assert "predicted 'class0' for 100% of the 100 test images" in finding.text
    verdict = next(e for e in elements(page) if "data-verdict" in e.attrs).text
    assert verdict.startswith("The model collapsed")
    assert not {"healthy", "underfitting"} & {
        e.attrs["data-finding"] for e in elements(page) if "data-finding" in e.attrs
    }
    compare = client.get(f"/compare?ids={other.id},{collapsed.id}").text
    (in_compare,) = red_findings(compare)
    assert "finding-error" in in_compare.attrs["class"].split()
    assert in_compare.text == finding.text
    with client.stream("GET", f"/experiments/{collapsed.id}/events") as response:
        blocks = response.read().decode().split("\n\n")
    live = next(block for block in blocks if block.startswith("event: diagnostics"))
    (streamed,) = red_findings(json.loads(live.partition("data: ")[2])["html"])
    assert streamed.text == finding.text  # the live page's final diagnostics say it too
    css = client.get("/static/app.css").text
    assert re.search(r"\.finding-error \{[^}]*var\(--danger\)", css)  # drawn red


def test_a_copy_of_an_auto_named_run_is_named_by_its_own_settings(
    client: TestClient, enqueued: Enqueued, session: Session
) -> None:
    """A run launched unnamed is named by its settings (app.core.naming); its copy, tweaked,
    was launched as "<the source's settings> (copy)", naming settings it no longer had. Its
    name box comes blank, so the launch names the copy by what it runs; a chosen name is
    kept with " (copy)"."""
    settings = {"hp.epochs": "2", "hp.batch_size": "32", "hp.train_size": "100",
                "hp.test_size": "50", "hp.learning_rate": ""}  # fmt: skip
    launched = post_form(client, "/experiments/new", form(name="", **settings))
    assert launched.status_code == 200, launched.text
    source = crud.get_experiment(session=session, experiment_id=enqueued.ids[0])
    assert source is not None
    assert source.name == "custom_cnn · epochs=2 batch_size=32 train_size=100 test_size=50"

    prefilled = inputs(client.get(f"/experiments/new?from={source.id}").text)
    assert prefilled["name"]["value"] == ""
    values = {
        name: attrs["value"]
        for name, attrs in prefilled.items()
        if attrs.get("value") and name.startswith("hp.") and attrs.get("type") != "checkbox"
    }
    assert (values["hp.epochs"], values["hp.train_size"]) == ("2", "100")
    tweaked = {**values, "model": "custom_cnn", "name": "", "tags": "",
               "hp.epochs": "1", "hp.train_size": "60"}  # fmt: skip
    response = post_form(client, "/experiments/new", tweaked, follow_redirects=False)
    assert response.status_code == 303, response.text
    copy = crud.get_experiment(session=session, experiment_id=enqueued.ids[1])
    assert copy is not None
    assert copy.name == "custom_cnn · epochs=1 batch_size=32 train_size=60 test_size=50"

    # The copy's name is its own derived one: a copy of the copy comes blank too.
    assert inputs(client.get(f"/experiments/new?from={copy.id}").text)["name"]["value"] == ""


def test_a_chosen_name_that_reads_like_other_settings_is_kept_on_a_copy(
    client: TestClient, session: Session
) -> None:
    """Only the name the source's own settings give counts as derived: one that names other
    settings (the stale copies launched before) was someone's, and is kept."""
    named = make_experiment(session, epochs=1)
    named.spec = {**named.spec, "name": "custom_cnn · epochs=2"}
    session.commit()
    fields = inputs(client.get(f"/experiments/new?from={named.id}").text)
    assert fields["name"]["value"] == "custom_cnn · epochs=2 (copy)"
    assert launch_pages.copy_name({"model": "nope", "name": "old"}) == "old (copy)"
