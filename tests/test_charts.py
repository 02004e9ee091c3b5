"""Figures and report rows from known inputs: values land where the pages expect them."""

from __future__ import annotations

import json
from typing import Any

from app.charts import confusion_matrix_figure, curves_figure, report_rows
from app.schemas import EpochMetricPublic

EPOCHS: list[dict[str, Any]] = [
    {"epoch": 1, "loss": 2.0, "accuracy": 0.3, "val_loss": 2.2, "val_accuracy": 0.25},
    {"epoch": 2, "loss": 1.5, "accuracy": 0.5, "val_loss": 1.7, "val_accuracy": 0.45},
    {"epoch": 3, "loss": 1.1, "accuracy": 0.6, "val_loss": None, "val_accuracy": None},
]


def _metric(row: dict[str, Any]) -> EpochMetricPublic:
    return EpochMetricPublic.model_validate(
        {"phase": "train", "learning_rate": 1e-3, "seconds": 1.0, "images_per_second": 9.0, **row}
    )


def test_accuracy_curves_put_train_first_and_validation_second() -> None:
    figure = curves_figure(EPOCHS, "accuracy")
    train, validation = figure["data"]
    assert (train["name"], validation["name"]) == ("train", "validation")
    assert train["x"] == validation["x"] == [1, 2, 3]
    assert train["y"] == [0.3, 0.5, 0.6]
    assert validation["y"] == [0.25, 0.45, None]  # a gap, not a zero
    assert figure["layout"]["xaxis"]["title"]["text"] == "Epoch"
    assert figure["layout"]["yaxis"]["title"]["text"] == "Accuracy"


def test_loss_curves_accept_public_models_and_are_json() -> None:
    figure = curves_figure([_metric(row) for row in EPOCHS], "loss", total_epochs=20)
    train, validation = figure["data"]
    assert train["y"] == [2.0, 1.5, 1.1]
    assert validation["y"] == [2.2, 1.7, None]
    assert figure["layout"]["yaxis"]["title"]["text"] == "Loss"
    assert figure["layout"]["xaxis"]["range"] == [0.75, 20.25]  # the whole run, filled live
    assert figure["layout"]["xaxis"]["dtick"] == 2  # whole epochs only
    json.dumps(figure)


def test_no_epochs_yet_gives_empty_traces_to_extend() -> None:
    figure = curves_figure([], "accuracy")
    assert [trace["x"] for trace in figure["data"]] == [[], []]
    assert [trace["y"] for trace in figure["data"]] == [[], []]


def test_confusion_matrix_rows_are_true_classes_top_down() -> None:
    classes = ["cat", "dog", "frog"]
    matrix = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]
    figure = confusion_matrix_figure(classes, matrix)
    (heatmap,) = figure["data"]
    assert heatmap["type"] == "heatmap"
    assert heatmap["z"] == matrix  # z[row=true][column=predicted]
    assert heatmap["x"] == heatmap["y"] == classes
    assert heatmap["text"][1] == ["2", "7", "1"]
    assert "%{text}" in heatmap["texttemplate"]
    layout = figure["layout"]
    assert layout["xaxis"]["title"]["text"] == "Predicted"
    assert layout["yaxis"]["title"]["text"] == "True"
    assert layout["yaxis"]["autorange"] == "reversed"  # row 0 ("cat") on top
    json.dumps(figure)


def _report() -> dict:
    return {
        "dog": {"precision": 0.7, "recall": 0.7, "f1-score": 0.7, "support": 10.0},
        "cat": {"precision": 0.71, "recall": 0.83, "f1-score": 0.77, "support": 6.0},
        "accuracy": 0.75,
        "macro avg": {"precision": 0.705, "recall": 0.765, "f1-score": 0.735, "support": 16.0},
        "weighted avg": {"precision": 0.70, "recall": 0.75, "f1-score": 0.72, "support": 16.0},
    }


def test_report_rows_follow_sklearn_text_order() -> None:
    rows = report_rows(_report(), ["cat", "dog"])
    assert [row["label"] for row in rows] == ["cat", "dog", "accuracy", "macro avg", "weighted avg"]
    assert [row["kind"] for row in rows] == ["class", "class", "accuracy", "average", "average"]
    cat = rows[0]
    assert (cat["precision"], cat["recall"], cat["f1_score"], cat["support"]) == (
        0.71,
        0.83,
        0.77,
        6,
    )
    accuracy = rows[2]
    assert (accuracy["precision"], accuracy["recall"]) == (None, None)  # blank, like sklearn
    assert (accuracy["f1_score"], accuracy["support"]) == (0.75, 16)


def test_report_rows_without_classes_keep_the_report_order() -> None:
    labels = [row["label"] for row in report_rows(_report())]
    assert labels == ["dog", "cat", "accuracy", "macro avg", "weighted avg"]
