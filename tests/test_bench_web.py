"""`cifarlab bench web` at a tiny size: what fill writes, and the figures a whole run reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer
from typer.testing import CliRunner

from app.bench import web
from app.cli import cli
from app.core.models import EpochMetric, Evaluation, Experiment, Status, Sweep

ENDPOINTS = {
    "list_page", "list_api", "list_sorted_page", "list_sorted_api", "experiment_page",
    "metrics_api", "compare_page", "compare_api",
}  # fmt: skip
SWEEP_ENDPOINTS = {"sweep_page", "sweep_api", "compare_groups_page", "compare_groups_api"}


def test_fill_writes_what_was_asked(session: Session) -> None:
    filled = web.fill(session, experiments=20, epochs=5, seed=1)
    session.commit()

    experiments = session.scalars(select(Experiment)).all()
    assert len(experiments) == len(filled.experiment_ids) == 20
    assert web.count_rows(session)["epoch_metrics"] == filled.epoch_rows
    succeeded = [e for e in experiments if e.status == Status.succeeded]
    assert len(succeeded) == filled.evaluations >= 15
    assert {e.id for e in experiments if e.status == Status.running} == set(filled.running_ids)
    for experiment in succeeded:
        epochs = [row.epoch for row in experiment.epochs]
        assert epochs == [1, 2, 3, 4, 5]
        assert experiment.total_epochs == 5
        assert experiment.test_accuracy == experiment.evaluation.accuracy  # type: ignore[union-attr]
    for experiment in experiments:  # as crud.record_epoch keeps it: the epochs' seconds summed
        seconds = [row.seconds for row in experiment.epochs]
        assert experiment.training_seconds == (pytest.approx(sum(seconds)) if seconds else None)


def test_evaluations_are_consistent_and_sklearn_shaped(session: Session) -> None:
    filled = web.fill(session, experiments=20, epochs=5, seed=2)
    session.commit()
    evaluation = session.scalars(
        select(Evaluation)
        .where(Evaluation.experiment_id == filled.compare_ids[0])
        .options(undefer(Evaluation.labels), undefer(Evaluation.predictions),
                 undefer(Evaluation.confidences))
    ).one()  # fmt: skip

    assert list(evaluation.report) == [*web.CLASSES, "accuracy", "macro avg", "weighted avg"]
    assert set(evaluation.report["cat"]) == {"precision", "recall", "f1-score", "support"}
    labels, predictions = np.array(evaluation.labels), np.array(evaluation.predictions)
    assert evaluation.confidences is not None
    assert len(labels) == len(predictions) == len(evaluation.confidences) == 10_000
    matrix = np.array(evaluation.confusion_matrix)
    assert matrix.shape == (10, 10) and matrix.sum() == 10_000
    assert matrix[3, 5] == np.count_nonzero((labels == 3) & (predictions == 5))
    assert evaluation.accuracy == pytest.approx(np.mean(labels == predictions))
    assert evaluation.test_set_fingerprint == web.FINGERPRINT


def test_tiny_run_reports_every_endpoint_and_loses_nothing(tmp_path: Path) -> None:
    options = web.Options(
        experiments=20, epochs=5, clients=3, requests=5, databases=("sqlite",), data_dir=tmp_path
    )
    figures = web.run(options)
    table = web.report(figures)
    for name in figures["sqlite"]["runs"][0]["endpoints"]:
        assert name in table
    sqlite = figures["sqlite"]
    assert sqlite["status"] == "measured"
    assert sqlite["rows"]["experiments"] == 20
    assert figures["postgresql"] == {"status": "skipped", "reason": "not requested"}
    (server,) = sqlite["runs"]
    assert set(server["endpoints"]) == ENDPOINTS
    for name, endpoint in server["endpoints"].items():
        assert endpoint["errors"] == 0, (name, endpoint["error_samples"])
        assert endpoint["requests"] == 5
        assert 0 < endpoint["p50_ms"] <= endpoint["p95_ms"] <= endpoint["max_ms"]
    recording = server["recording"]
    assert recording["epochs_written"] >= 1
    assert recording["lost_rows"] == recording["errors"] == recording["database_locked"] == 0
    assert server["server_log"] == {"tracebacks": 0, "database_locked": 0}
    static = server["static"]
    assert "max-age" in static["cache_control"] and static["etag"]
    assert static["revalidated_304"] and not static["inlined_in_page"]
    assert figures["goals"]["correct"] is True
    assert isinstance(figures["goals"]["met"], bool)


def test_cpu_per_request_and_each_process_s_share_of_it() -> None:
    server = web.Served(port=1, pid=10)  # the launcher, idle; 11 and 12 serve
    before, after = {10: 1.0, 11: 2.0, 12: 3.0}, {10: 1.0, 11: 5.0, 12: 4.0}
    assert web.cpu_figures(server, before, after, requests=100) == {
        "server_cpu_ms": 40.0, "process_cpu_shares": [0.75, 0.25],
    }  # fmt: skip
    assert web.cpu_figures(server, {10: 1.0}, {10: 1.5}, requests=100) == {"server_cpu_ms": 5.0}


def test_epoch_check_counts_lost_rows(session: Session) -> None:
    filled = web.fill(session, experiments=20, epochs=4, seed=3)
    session.commit()
    running = filled.running_ids[0]
    last = session.scalar(
        select(EpochMetric.epoch).where(EpochMetric.experiment_id == running).order_by(
            EpochMetric.epoch.desc()).limit(1)
    )  # fmt: skip
    run = web.WriterRun({"last_epochs": {running: (last or 0) + 2}, "written": 2, "errors": []})
    assert web.check_epochs(session, run)["lost_rows"] == 2


def test_fill_with_a_sweep_writes_its_trials_with_their_drawn_settings(session: Session) -> None:
    filled = web.fill(session, experiments=60, epochs=6, seed=4, sweep_trials=40, per_image=2)
    session.commit()

    sweep = session.get(Sweep, filled.sweep_id)
    assert sweep is not None and sweep.model == "custom_cnn" and sweep.max_parallel == 8
    trials = session.scalars(select(Experiment).where(Experiment.sweep_id == sweep.id)).all()
    assert len(trials) == 40 and len(filled.experiment_ids) == 60
    assert {t.status for t in trials} <= {Status.succeeded, Status.pruned, Status.failed}
    for trial in trials:
        hyperparameters = trial.spec["hyperparameters"]
        assert 1e-4 <= hyperparameters["learning_rate"] <= 1e-2
        assert hyperparameters["batch_size"] in (64, 128, 256)
        assert trial.total_epochs == 6
        if trial.status == Status.pruned:
            assert trial.stop_reason and trial.stop_reason.startswith("pruned at epoch")
            assert trial.current_epoch < 6
    # Four configurations of ten seeds, each differing from the others only in its seed.
    assert sorted(len(group) for group in filled.seed_groups) == [10, 10, 10, 10]
    by_id = {t.id: t.spec["hyperparameters"] for t in trials}
    for group in filled.seed_groups:
        settings = [{k: v for k, v in by_id[i].items() if k != "seed"} for i in group]
        assert all(s == settings[0] for s in settings)
        assert sorted(by_id[i]["seed"] for i in group) == list(range(10))
    # Per-image results: every evaluated trial's, and the newest two of the rest.
    assert web.count_rows(session)["with_per_image"] == 2 + sum(
        t.status == Status.succeeded for t in trials
    )
    assert len(filled.compare_ids) == 2 and not set(filled.compare_ids) & set(by_id)


def test_a_run_with_a_sweep_reports_what_this_version_cannot_serve(tmp_path: Path) -> None:
    """The sweep page and grouped compare come from other parts of cifarlab: where this build
    answers 404 (or refuses more than 12 runs), they are reported as not available, and the
    rest is measured and correct."""
    options = web.Options(
        experiments=40, epochs=3, clients=2, requests=3, databases=("sqlite",),
        data_dir=tmp_path, sweep_trials=20,
    )  # fmt: skip
    figures = web.run(options)
    (server,) = figures["sqlite"]["runs"]
    measured, missing = set(server["endpoints"]), set(server["not_available"])
    assert measured | missing == ENDPOINTS | SWEEP_ENDPOINTS and not measured & missing
    assert ENDPOINTS <= measured
    assert all(400 <= status < 500 for status in server["not_available"].values())
    for name, endpoint in server["endpoints"].items():
        assert endpoint["errors"] == 0, (name, endpoint["error_samples"])
    assert figures["goals"]["correct"] is True
    assert "one sweep of 20 trials" in web.report(figures)


@pytest.mark.parametrize("trials", ["5", "19", "99"])
def test_the_command_refuses_a_sweep_that_does_not_fit(trials: str) -> None:
    """Ten seeds a configuration and two configurations compared; the sweep is among the
    experiments, with two left beside it."""
    result = CliRunner().invoke(
        cli, ["bench", "web", "--experiments", "100", "--sweep-trials", trials]
    )
    assert result.exit_code == 2
    assert "--sweep-trials" in result.output
