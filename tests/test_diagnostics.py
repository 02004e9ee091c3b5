"""Curve diagnosis on curves with known answers: each rule fires where it should, not elsewhere;
its findings and verdict worded by ``app.web.presentation``."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.schemas import EpochMetricPublic
from app.services.diagnostics import Diagnosis, Predictions, diagnose
from app.web.presentation import finding_text, verdict_text


def _rows(
    loss: list[float | None],
    val_loss: list[float | None],
    accuracy: list[float | None] | None = None,
    val_accuracy: list[float | None] | None = None,
    learning_rate: list[float | None] | None = None,
    phase: list[str] | None = None,
) -> list[dict[str, Any]]:
    n = len(loss)
    return [
        {
            "epoch": i + 1,
            "phase": (phase or ["train"] * n)[i],
            "loss": loss[i],
            "accuracy": (accuracy or [None] * n)[i],
            "val_loss": val_loss[i],
            "val_accuracy": (val_accuracy or [None] * n)[i],
            "learning_rate": (learning_rate or [1e-3] * n)[i],
        }
        for i in range(n)
    ]


# Validation loss bottoms out at epoch 4 of 10 and climbs; training loss keeps falling.
OVERFITTING = _rows(
    loss=[1.8, 1.4, 1.1, 0.9, 0.7, 0.55, 0.42, 0.32, 0.25, 0.2],
    val_loss=[1.7, 1.4, 1.2, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5, 1.6],
    accuracy=[0.35, 0.5, 0.6, 0.68, 0.75, 0.81, 0.86, 0.9, 0.93, 0.95],
    val_accuracy=[0.38, 0.5, 0.58, 0.62, 0.63, 0.63, 0.64, 0.63, 0.64, 0.64],
)
# Both losses fall together; train and validation accuracy stay within a few points.
HEALTHY = _rows(
    loss=[1.6, 1.2, 0.95, 0.8, 0.7, 0.62, 0.57, 0.53],
    val_loss=[1.5, 1.15, 0.95, 0.82, 0.74, 0.68, 0.64, 0.62],
    accuracy=[0.42, 0.57, 0.66, 0.72, 0.76, 0.78, 0.8, 0.815],
    val_accuracy=[0.45, 0.58, 0.66, 0.71, 0.74, 0.76, 0.78, 0.79],
)
# Stuck near chance: both accuracies low and equal, losses barely moving.
UNDERFITTING = _rows(
    loss=[2.2, 2.05, 1.95, 1.9, 1.87, 1.85],
    val_loss=[2.15, 2.0, 1.93, 1.89, 1.86, 1.84],
    accuracy=[0.18, 0.25, 0.29, 0.31, 0.32, 0.33],
    val_accuracy=[0.2, 0.26, 0.3, 0.31, 0.32, 0.33],
)


def _kinds(diagnosis: Diagnosis) -> set[str]:
    return {finding.kind for finding in diagnosis.findings}


def _finding(diagnosis: Diagnosis, kind: str) -> Any:
    return next(finding for finding in diagnosis.findings if finding.kind == kind)


def test_overfitting_is_flagged_at_the_validation_minimum() -> None:
    diagnosis = diagnose(OVERFITTING, planned_epochs=10)
    finding = _finding(diagnosis, "overfitting")
    assert (finding.severity, finding.epoch) == ("warning", 4)
    assert "epoch 4" in finding_text(finding) and "overfitting" in finding_text(finding)
    assert "healthy" not in _kinds(diagnosis) and "underfitting" not in _kinds(diagnosis)
    assert diagnosis.best_epoch == 4
    assert diagnosis.best_val_accuracy == 0.62
    assert "overfits from epoch 4" in verdict_text(diagnosis)


def test_generalization_gap_is_train_minus_validation_accuracy() -> None:
    gap = diagnose(OVERFITTING).generalization_gap
    assert [epoch for epoch, _ in gap] == list(range(1, 11))
    assert gap[0][1] == pytest.approx(-0.03)
    assert gap[-1][1] == pytest.approx(0.31)


def test_healthy_curves_are_not_called_overfitting() -> None:
    diagnosis = diagnose(HEALTHY, planned_epochs=8)
    kinds = _kinds(diagnosis)
    assert "overfitting" not in kinds and "underfitting" not in kinds
    assert "healthy" in kinds
    assert "still_improving" in kinds  # its best epoch is its last, and all 8 ran
    assert diagnosis.best_epoch == 8
    assert "more epochs" in verdict_text(diagnosis)


def test_underfitting_is_flagged() -> None:
    diagnosis = diagnose(UNDERFITTING, planned_epochs=6)
    finding = _finding(diagnosis, "underfitting")
    assert finding.severity == "warning"
    assert "33.0%" in finding_text(finding)
    assert "overfitting" not in _kinds(diagnosis) and "healthy" not in _kinds(diagnosis)


def test_learning_rate_cuts_and_phase_boundary_are_found() -> None:
    rows = _rows(
        loss=[1.5, 1.2, 1.0, 0.9, 0.85, 0.7, 0.6],
        val_loss=[1.4, 1.1, 1.0, 0.95, 0.93, 0.85, 0.8],
        learning_rate=[1e-3, 1e-3, 1e-3, 2e-4, 2e-4, 1e-4, 1e-4],
        phase=["train"] * 5 + ["fine_tune"] * 2,
    )
    diagnosis = diagnose(rows)
    assert diagnosis.lr_reductions == [4]  # epoch 6's rate is the fine-tuning phase's
    assert diagnosis.phase_boundary == 6
    assert _finding(diagnosis, "lr_reduced").epochs == (4,)
    assert _finding(diagnosis, "fine_tuning").epoch == 6


def test_float32_learning_rates_do_not_read_as_cuts() -> None:
    rows = _rows(loss=[1.0, 0.9], val_loss=[1.0, 0.9], learning_rate=[0.001, 0.0009999999])
    assert diagnose(rows).lr_reductions == []


def test_single_phase_has_no_boundary() -> None:
    assert diagnose(HEALTHY).phase_boundary is None


def test_best_epoch_ties_go_to_the_earliest() -> None:
    rows = _rows(
        loss=[1.0, 0.9, 0.8, 0.7],
        val_loss=[1.0, 0.8, 0.9, 0.8],
        val_accuracy=[0.5, 0.7, 0.65, 0.72],
    )
    diagnosis = diagnose(rows)
    assert (diagnosis.best_epoch, diagnosis.best_val_accuracy) == (2, 0.7)


def test_early_stop_is_detected_and_not_called_still_improving() -> None:
    diagnosis = diagnose(OVERFITTING[:7], planned_epochs=20)
    finding = _finding(diagnosis, "early_stopped")
    assert (finding.severity, finding.epoch) == ("info", 7)
    assert "7 of the 20" in finding_text(finding)
    assert "still_improving" not in _kinds(diagnosis)


def test_a_run_in_progress_is_not_early_stopped_or_finished() -> None:
    diagnosis = diagnose(HEALTHY[:4], planned_epochs=8, in_progress=True)
    assert not {"early_stopped", "still_improving"} & _kinds(diagnosis)
    assert verdict_text(diagnosis).startswith("So far: training looks healthy.")


def test_unstable_validation_loss_is_flagged() -> None:
    rows = _rows(
        loss=[1.5, 1.3, 1.2, 1.1, 1.0, 0.95, 0.9],
        val_loss=[1.4, 1.2, 2.0, 1.1, 1.05, 1.9, 1.0],
    )
    finding = _finding(diagnose(rows), "unstable")
    assert finding.epoch == 3
    assert "3, 6" in finding_text(finding)


def test_a_jump_into_fine_tuning_is_not_instability() -> None:
    rows = _rows(
        loss=[1.5, 1.3, 1.2, 1.1, 1.0, 0.95],
        val_loss=[1.4, 1.2, 2.0, 1.1, 1.7, 1.0],
        phase=["train"] * 4 + ["fine_tune"] * 2,
    )
    assert "unstable" not in _kinds(diagnose(rows))


def test_empty_input() -> None:
    diagnosis = diagnose([])
    assert diagnosis == Diagnosis([], None, None, None, [], None, [])
    assert verdict_text(diagnosis) == "No epochs yet."


def test_missing_validation_never_crashes() -> None:
    rows = _rows(loss=[2.0, 1.5, None], val_loss=[None, None, None], accuracy=[0.3, 0.5, None])
    diagnosis = diagnose(rows, planned_epochs=3)
    assert diagnosis.best_epoch is None and diagnosis.best_val_accuracy is None
    assert diagnosis.generalization_gap == []
    assert "no_validation" in _kinds(diagnosis)
    assert "healthy" not in _kinds(diagnosis)


def test_nan_loss_is_reported_as_divergence() -> None:
    rows = _rows(loss=[2.0, float("nan"), float("nan")], val_loss=[2.1, float("inf"), None])
    diagnosis = diagnose(rows)
    assert _finding(diagnosis, "diverged").severity == "warning"
    assert diagnosis.best_epoch == 1
    assert verdict_text(diagnosis).startswith("Training diverged")


def test_objects_with_attributes_work_like_mappings() -> None:
    models = [
        EpochMetricPublic.model_validate({**row, "seconds": 1.0, "images_per_second": 5.0})
        for row in OVERFITTING
    ]
    assert diagnose(models, planned_epochs=10) == diagnose(OVERFITTING, planned_epochs=10)


def test_rows_out_of_order_are_sorted() -> None:
    assert diagnose(list(reversed(HEALTHY))) == diagnose(HEALTHY)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"epoch": 0, "loss": 1.0}], "1-based"),
        ([{"loss": 1.0}], "epoch must be"),
        ([{"epoch": 1, "loss": "lots"}], "loss must be a number"),
        ([{"epoch": 1}, {"epoch": 1}], "appears twice"),
    ],
)
def test_bad_rows_raise_helpful_errors(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        diagnose(rows)


def test_planned_epochs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="planned_epochs"):
        diagnose(HEALTHY, planned_epochs=0)


# --- a run that learned nothing ------------------------------------------------------------

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _all_predicted(column: int) -> Predictions | None:
    """An evaluation that predicted class ``column`` for every one of 500 test images."""
    matrix = [[50 if j == column else 0 for j in range(10)] for _ in range(10)]
    return Predictions.from_confusion_matrix(CIFAR10, matrix)


# The MobileNetV2 preset of issue #15: two epochs at exactly 10 % validation accuracy, every
# one of the 500 test images predicted "airplane".
MOBILENET_COLLAPSED = _rows(
    loss=[2.35, 2.31],
    val_loss=[2.3036, 2.3031],
    accuracy=[0.098, 0.101],
    val_accuracy=[0.1, 0.1],
)


def test_the_collapsed_run_of_the_issue_is_an_error_naming_its_class() -> None:
    diagnosis = diagnose(MOBILENET_COLLAPSED, planned_epochs=2, predictions=_all_predicted(0))
    finding = _finding(diagnosis, "collapsed")
    assert finding.severity == "error"
    assert "predicted 'airplane' for 100% of the 500 test images" in finding_text(finding)
    assert diagnosis.headline == finding
    assert verdict_text(diagnosis).startswith(
        "The model collapsed: it predicted 'airplane' for 100% of the test images."
    )
    # Underfitting is subsumed; a collapsed run is neither healthy nor worth more epochs.
    assert not {"underfitting", "healthy", "still_improving"} & _kinds(diagnosis)
    assert "more epochs" not in verdict_text(diagnosis)


def test_one_class_for_more_than_half_of_the_images_is_a_collapse() -> None:
    matrix = [[6 if j == 3 else 4 if j == i else 0 for j in range(10)] for i in range(10)]
    matrix[3][3] = 10  # "cat": 6 x 9 + 10 = 64 of the 100 predictions
    diagnosis = diagnose(HEALTHY, predictions=Predictions.from_confusion_matrix(CIFAR10, matrix))
    assert "predicted 'cat' for 64% of the 100 test images" in finding_text(
        _finding(diagnosis, "collapsed")
    )
    assert "healthy" not in _kinds(diagnosis)
    half = [[0] * 10 for _ in range(10)]
    half[0][3], half[1][1] = 50, 50  # "cat" for exactly half of the 100: not more than half
    evenly = Predictions.from_confusion_matrix(CIFAR10, half)
    assert "collapsed" not in _kinds(diagnose(HEALTHY, predictions=evenly))


def test_validation_accuracy_at_chance_after_epoch_2_is_a_collapse_naming_the_epochs() -> None:
    rows = _rows(
        loss=[2.2, 2.25, 2.3, 2.3, 2.3],
        val_loss=[2.2, 2.3, 2.3, 2.3, 2.3],
        accuracy=[0.2, 0.12, 0.1, 0.1, 0.1],
        val_accuracy=[0.25, 0.12, 0.1, 0.085, 0.115],
    )
    diagnosis = diagnose(rows, planned_epochs=5)
    finding = _finding(diagnosis, "collapsed")
    assert (finding.severity, finding.epochs) == ("error", (2, 3, 4, 5))
    text = finding_text(finding)
    assert "within 2 points of chance (10%) at every epoch from 2 to 5, at most 12.0%" in text
    assert verdict_text(diagnosis).startswith("The model learned nothing")
    assert not {"underfitting", "healthy"} & _kinds(diagnosis)
    for early_only in (
        [0.1, 0.1],  # two epochs only: too early to tell without the predictions
        [0.1, 0.1, 0.13],  # epoch 3 is more than 2 points above chance
        [0.1, 0.1, 0.1, 0.3],  # left chance at epoch 4
    ):
        n = len(early_only)
        rows = _rows(loss=[2.3] * n, val_loss=[2.3] * n, val_accuracy=early_only)
        assert "collapsed" not in _kinds(diagnose(rows)), early_only


def test_chance_is_one_over_the_evaluations_classes() -> None:
    rows = _rows(loss=[1.4] * 3, val_loss=[1.4] * 3, val_accuracy=[0.3, 0.26, 0.24])
    four = Predictions.from_confusion_matrix(["a", "b", "c", "d"], [[1] * 4 for _ in range(4)])
    assert "collapsed" in _kinds(diagnose(rows, predictions=four))  # chance 25 %
    assert "collapsed" not in _kinds(diagnose(rows))  # 10 classes: chance 10 %


def test_a_confusion_matrix_of_the_wrong_shape_is_refused() -> None:
    assert Predictions.from_confusion_matrix(CIFAR10, None) is None
    with pytest.raises(ValueError, match="10 x 10"):
        Predictions.from_confusion_matrix(CIFAR10, [[1, 2], [3, 4]])


# --- learning-rate changes: the phase switch, and whether a change helped --------------------

# A transfer run: 3 epochs training the head at 1e-3, then fine-tuning at 1e-4 (as float32
# stores it) while validation loss rises.
FINE_TUNING_WORSE = _rows(
    loss=[1.6, 1.2, 1.0, 0.9, 0.8, 0.7],
    val_loss=[1.5, 1.2, 1.05, 1.1, 1.15, 1.2],
    accuracy=[0.45, 0.58, 0.65, 0.68, 0.72, 0.75],
    val_accuracy=[0.47, 0.58, 0.63, 0.62, 0.62, 0.61],
    learning_rate=[1e-3] * 3 + [9.999999747378752e-05] * 3,
    phase=["train"] * 3 + ["fine_tune"] * 3,
)


def test_the_fine_tuning_switch_is_named_not_read_as_a_plateau_cut_that_helped() -> None:
    diagnosis = diagnose(FINE_TUNING_WORSE, planned_epochs=6)
    assert diagnosis.lr_reductions == [] and "lr_reduced" not in _kinds(diagnosis)
    finding = _finding(diagnosis, "fine_tuning")
    assert (finding.severity, finding.epoch, finding.helped) == ("info", 4, (False,))
    text = finding_text(finding)
    assert text.startswith("The fine-tuning phase started at epoch 4 at learning rate 1e-4")
    assert "did not help" in text
    texts = " ".join(finding_text(f) for f in diagnosis.findings)
    assert " helped" not in texts.replace("did not help", "")


def test_fine_tuning_that_reached_a_new_low_helped_and_its_jump_is_not_instability() -> None:
    rows = _rows(
        loss=[1.6, 1.2, 1.0, 0.9, 0.8, 0.7],
        val_loss=[1.5, 1.0, 1.6, 2.5, 0.9, 0.95],  # jumps at 3 and into the new phase at 4
        learning_rate=[1e-3] * 3 + [5e-4] * 3,
        phase=["train"] * 3 + ["fine_tune"] * 3,
    )
    diagnosis = diagnose(rows)
    assert not {"unstable", "lr_reduced"} & _kinds(diagnosis)
    finding = _finding(diagnosis, "fine_tuning")
    assert finding.helped == (True,)
    assert finding_text(finding) == (
        "The fine-tuning phase started at epoch 4 at learning rate 5e-4; validation loss "
        "reached a new low in it: fine-tuning helped."
    )


def test_a_cut_helped_only_when_validation_loss_reached_a_new_low_after_it() -> None:
    rows = _rows(
        loss=[1.5, 1.2, 1.0, 0.95, 0.9, 0.85, 0.8, 0.78, 0.76],
        val_loss=[1.4, 1.1, 1.0, 1.01, 1.0, 0.9, 0.92, 0.95, 0.93],
        learning_rate=[1e-3] * 5 + [2e-4] * 2 + [4e-5] * 2,
    )
    finding = _finding(diagnose(rows, planned_epochs=9), "lr_reduced")
    assert (finding.epochs, finding.helped) == ((6, 8), (True, False))
    assert finding_text(finding) == (
        "The learning rate was lowered at epochs 6, 8; validation loss reached a new low after "
        "the cut at epoch 6, not after the cut at epoch 8."
    )
    helped = _finding(diagnose(rows[:7], planned_epochs=7), "lr_reduced")
    assert finding_text(helped).endswith("after it: the smaller steps helped.")


def test_a_cut_that_did_not_help_says_so() -> None:
    rows = _rows(
        loss=[1.5, 1.2, 1.0, 0.95, 0.9],
        val_loss=[1.4, 1.1, 1.0, 1.05, 1.02],
        learning_rate=[1e-3] * 3 + [2e-4] * 2,
    )
    text = finding_text(_finding(diagnose(rows), "lr_reduced"))
    assert text.endswith("after it: the smaller steps did not help.")


def test_without_validation_or_while_running_a_cut_is_not_judged() -> None:
    rates = [1e-3] * 3 + [2e-4] * 2
    no_validation = _rows(loss=[1.5, 1.2, 1.0, 0.95, 0.9], val_loss=[None] * 5, learning_rate=rates)
    running = _rows(
        loss=[1.5, 1.2, 1.0, 0.95], val_loss=[1.4, 1.1, 1.0, 1.05], learning_rate=rates[:4]
    )
    for diagnosis in (diagnose(no_validation), diagnose(running, in_progress=True)):
        text = finding_text(_finding(diagnosis, "lr_reduced"))
        assert text == "The learning rate was lowered at epoch 4."
