"""Figures and report rows from known inputs: values land where the pages expect them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.schemas import EpochMetricPublic
from app.web.charts import (
    A_BETTER_COLOR,
    B_BETTER_COLOR,
    LIVE_TRACES,
    PALETTE,
    boundary_marks,
    class_rows,
    comparison_confusion_figures,
    comparison_curves_figure,
    comparison_gap_figure,
    confusion_matrix_figure,
    curves_figure,
    difference_figure,
    experiment_color,
    fine_tune_start,
    gap_figure,
    learning_rate_figure,
    per_class_f1_figure,
    plot_text,
    report_rows,
    row_normalized,
    with_boundary,
    with_export_name,
)

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


def test_each_trace_plots_the_epoch_field_the_live_page_extends_it_with() -> None:
    rows = [_metric(row) for row in EPOCHS]
    figures = {
        "accuracy": curves_figure(rows, "accuracy"),
        "loss": curves_figure(rows, "loss"),
        "learning_rate": learning_rate_figure(rows, total_epochs=None),
    }
    assert figures.keys() == LIVE_TRACES.keys()
    for chart, keys in LIVE_TRACES.items():
        traces = figures[chart]["data"]
        assert [trace["y"] for trace in traces] == [
            [getattr(row, key) for row in rows] for key in keys
        ]


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


# --- phases and learning rate ------------------------------------------------------------------


def _phases(phases: list[str], rates: list[float] | None = None) -> list[EpochMetricPublic]:
    rates = rates or [1e-3] * len(phases)
    return [
        _metric({"epoch": n, "phase": phase, "learning_rate": rate, "loss": 1.0, "accuracy": 0.5,
                 "val_loss": 1.1, "val_accuracy": 0.4})
        for n, (phase, rate) in enumerate(zip(phases, rates, strict=True), start=1)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("phases", "start"),
    [
        (["train", "train", "fine_tune", "fine_tune"], 3),
        (["train", "train"], None),
        (["fine_tune", "fine_tune"], None),  # fine-tuning from the first epoch: no boundary
        ([], None),
    ],
)
def test_fine_tune_start_is_the_first_fine_tuning_epoch_after_another_phase(
    phases: list[str], start: int | None
) -> None:
    assert fine_tune_start(_phases(phases)) == start


def test_boundary_sits_between_the_two_phases_on_every_chart() -> None:
    marks = boundary_marks(4)
    assert marks["shape"]["x0"] == marks["shape"]["x1"] == 3.5
    assert (marks["shape"]["yref"], marks["shape"]["line"]["dash"]) == ("paper", "dash")
    assert (marks["annotation"]["x"], marks["annotation"]["text"]) == (3.5, "fine-tuning")
    figure = with_boundary(curves_figure([], "loss"), 4)
    assert [shape["x0"] for shape in figure["layout"]["shapes"]] == [3.5]
    labels = [a["text"] for a in figure["layout"]["annotations"]]
    assert labels[-1] == "fine-tuning" and len(labels) == 2  # after the waiting note
    assert "shapes" not in with_boundary(curves_figure([], "loss"), None)["layout"]


def test_learning_rate_figure_is_one_stepped_trace_on_a_log_axis() -> None:
    figure = learning_rate_figure(_phases(["train"] * 3, [1e-3, 1e-3, 1e-4]), total_epochs=5)
    (trace,) = figure["data"]
    assert (trace["x"], trace["y"]) == ([1, 2, 3], [1e-3, 1e-3, 1e-4])
    assert trace["line"]["shape"] == "hvh"
    layout = figure["layout"]
    assert (layout["yaxis"]["type"], layout["title"]["text"]) == ("log", "Learning rate")
    assert layout["xaxis"]["range"] == [0.75, 5.25]
    assert learning_rate_figure([], None)["layout"]["yaxis"]["range"] == [-5, -1]


# --- diagnostics and export --------------------------------------------------------------------


def test_gap_figure_plots_the_gap_and_marks_the_best_epoch() -> None:
    figure = gap_figure([[1, -0.05], [2, 0.02], [3, 0.12]], best_epoch=2, total_epochs=4)
    (trace,) = figure["data"]
    assert (trace["x"], trace["y"]) == ([1, 2, 3], [-0.05, 0.02, 0.12])
    layout = figure["layout"]
    assert layout["yaxis"]["zeroline"] is True and layout["yaxis"]["tickformat"] == "~%"
    assert [(s["x0"], s["line"]["dash"]) for s in layout["shapes"]] == [(2, "dot")]
    assert [a["text"] for a in layout["annotations"]] == ["lowest val loss"]
    empty = gap_figure([], None)
    assert empty["data"][0]["x"] == [] and "shapes" not in empty["layout"]
    json.dumps(figure)


def test_user_text_is_escaped_for_plotly_and_charts_are_named_for_export() -> None:
    assert plot_text("<b>cnn</b> & co") == "&lt;b&gt;cnn&lt;/b&gt; &amp; co"
    figure = with_export_name({"data": [], "layout": {}}, "cifarlab-compare-1-2-accuracy")
    options = figure["config"]["toImageButtonOptions"]
    assert (options["filename"], options["format"]) == ("cifarlab-compare-1-2-accuracy", "png")


# --- confusion matrices ------------------------------------------------------------------------


def test_rows_normalise_to_shares_of_the_true_class() -> None:
    assert row_normalized([[3, 1], [0, 0], [2, 2]]) == [[0.75, 0.25], [0.0, 0.0], [0.5, 0.5]]


def test_a_normalised_matrix_keeps_counts_for_hover_and_shows_shares() -> None:
    figure = confusion_matrix_figure(["<i>cat</i>", "dog"], [[3, 1], [0, 2]], normalized=True)
    (heatmap,) = figure["data"]
    assert heatmap["z"] == [[0.75, 0.25], [0.0, 1.0]]
    assert heatmap["customdata"] == [[3, 1], [0, 2]]
    assert heatmap["text"] == [["0.75", "0.25"], ["", "1.00"]]  # zero shares left blank
    assert (heatmap["zmin"], heatmap["zmax"]) == (0, 1)
    assert heatmap["x"] == ["&lt;i&gt;cat&lt;/i&gt;", "dog"]
    counts = confusion_matrix_figure(["cat", "dog"], [[3, 1], [1, 1]], zmax=40)["data"][0]
    assert (counts["z"], counts["zmax"]) == ([[3, 1], [1, 1]], 40)


def test_difference_colours_mean_a_better_on_and_off_the_diagonal() -> None:
    """A gets cats right 8 times to B's 5 (diagonal: A better) and calls a cat a dog 2 times
    to B's 5 (off the diagonal: A better too): both cells are positive, the blue end. B gets
    dogs right 10 times to A's 9 and never calls one a cat: both negative, the red end."""
    first, second = [[8, 2], [1, 9]], [[5, 5], [0, 10]]
    figure = difference_figure(["cat", "dog"], first, second, names=("A<1>", "B"), normalized=False)
    (heatmap,) = figure["data"]
    assert heatmap["z"] == [[3, 3], [-1, -1]]
    assert heatmap["colorscale"][-1][1] == A_BETTER_COLOR  # positive: blue
    assert heatmap["colorscale"][0][1] == B_BETTER_COLOR  # negative: red
    assert heatmap["colorbar"]["ticktext"] == ["B better", "same", "A better"]
    assert (heatmap["zmin"], heatmap["zmid"], heatmap["zmax"]) == (-3, 0, 3)
    assert heatmap["text"] == [["+3", "+3"], ["-1", "-1"]]
    assert heatmap["customdata"][1][0] == [1.0, 0.0, "B better by 1"]
    assert heatmap["customdata"][0][0] == [8.0, 5.0, "A better by 3"]
    assert figure["layout"]["title"]["text"] == "A: A&lt;1&gt; · B: B"
    (caption,) = figure["layout"]["annotations"]
    assert "blue: A better" in caption["text"] and "red: B better" in caption["text"]
    shares = difference_figure(["cat", "dog"], first, second, names=("A", "B"), normalized=True)
    cells = [value for row in shares["data"][0]["z"] for value in row]
    assert cells == pytest.approx([0.3, 0.3, -0.1, -0.1])
    same = difference_figure(["cat", "dog"], first, first, names=("A", "B"), normalized=False)
    assert same["data"][0]["text"] == [["", ""], ["", ""]]  # no difference: blank
    assert same["data"][0]["zmax"] == 1  # never a zero-width scale


# --- the compare page's figures ----------------------------------------------------------------


def _comparison() -> dict[str, Any]:
    """ComparisonPublic.model_dump() for a two-phase run (id 1) and an imported report (2)."""
    curves = [
        {"epoch": n, "phase": "train" if n < 3 else "fine_tune", "loss": 2.0 / n,
         "accuracy": 0.2 * n, "val_loss": [2.1, 1.2, 0.9, 1.0][n - 1],
         "val_accuracy": [0.3, 0.5, 0.6, 0.55][n - 1], "learning_rate": 1e-3,
         "training_seconds": 30.0 * n}
        for n in range(1, 5)
    ]  # fmt: skip
    report = {"f1-score": 0.5, "precision": 0.5, "recall": 0.5, "support": 10.0}
    return {
        "baseline_id": 1,
        "experiments": [
            {"id": 1, "name": "<b>run</b>", "color": "#636efa", "status": "succeeded"},
            {"id": 2, "name": "study", "color": "#ef553b", "status": "imported"},
        ],
        "curves": {1: curves, 2: []},
        "diagnostics": {
            1: {
                "best_epoch": 3,
                "lr_reductions": [3],
                "early_stop_epoch": 4,
                "phase_boundary": 3,
                "generalization_gap": [[1, -0.1], [2, -0.1]],
            },
            2: {
                "best_epoch": None,
                "lr_reductions": [],
                "early_stop_epoch": None,
                "phase_boundary": None,
                "generalization_gap": [],
            },
        },  # fmt: skip
        "per_class": [
            {"row": "cat", "values": {1: report, 2: {**report, "f1-score": 0.9}}},
            {"row": "dog", "values": {2: report}},
            {"row": "accuracy", "values": {1: {"f1-score": 0.7}, 2: {"f1-score": 0.8}}},
            {"row": "macro avg", "values": {1: report, 2: report}},
        ],
        "confusion_matrices": {
            1: {"classes": ["cat", "dog"], "matrix": [[8, 2], [1, 9]]},
            2: {"classes": ["cat", "dog"], "matrix": [[800, 200], [100, 900]]},
        },
    }


def _traces(figure: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [trace for trace in figure["data"] if trace["meta"]["kind"] == kind]


def test_compared_curves_keep_each_experiments_colour_and_mark_its_events() -> None:
    figure = comparison_curves_figure(_comparison(), "accuracy")
    (train,) = _traces(figure, "train")
    (validation,) = _traces(figure, "validation")
    assert train["y"] == [0.2, 0.4, 0.6000000000000001, 0.8]
    assert validation["y"] == [0.3, 0.5, 0.6, 0.55]
    assert train["line"]["color"] == validation["line"]["color"] == "#636efa"
    assert (train["line"]["dash"], validation["line"]["dash"]) == ("dot", "solid")
    assert train["name"] == "&lt;b&gt;run&lt;/b&gt;" and train["meta"]["experiment"] == 1
    (marks,) = _traces(figure, "mark")
    assert list(zip(marks["x"], marks["marker"]["symbol"], strict=True)) == [
        (3, "star"), (4, "x"), (3, "triangle-down"),
    ]  # fmt: skip
    assert marks["y"] == [0.6, 0.55, 0.6]  # on the validation curve
    (phase,) = _traces(figure, "phase")
    assert (phase["x"], phase["yaxis"]) == ([2.5, 2.5], "y2")
    assert figure["layout"]["xaxis"]["dtick"] == 1
    loss = comparison_curves_figure(_comparison(), "loss")
    assert _traces(loss, "validation")[0]["y"] == [2.1, 1.2, 0.9, 1.0]
    assert "tickformat" not in loss["layout"]["yaxis"]
    json.dumps(figure)


def test_without_any_curves_the_charts_say_they_are_waiting() -> None:
    comparison = _comparison()
    comparison["curves"] = {1: [], 2: []}
    figure = comparison_curves_figure(comparison, "loss")
    assert figure["data"] == []
    assert figure["layout"]["annotations"][0]["text"].startswith("Waiting")


def test_compared_gap_has_one_line_per_experiment_with_epochs() -> None:
    figure = comparison_gap_figure(_comparison())
    (line,) = figure["data"]
    assert (line["x"], line["y"], line["line"]["color"]) == ([1, 2], [-0.1, -0.1], "#636efa")


def test_f1_bars_group_the_classes_one_colour_per_experiment() -> None:
    assert [row["row"] for row in class_rows(_comparison()["per_class"])] == ["cat", "dog"]
    figure = per_class_f1_figure(_comparison())
    first, second = figure["data"]
    assert first["x"] == second["x"] == ["cat", "dog"]
    assert (first["y"], second["y"]) == ([0.5, None], [0.9, 0.5])
    assert (first["marker"]["color"], second["marker"]["color"]) == ("#636efa", "#ef553b")
    assert figure["layout"]["barmode"] == "group"


def test_compared_matrices_share_one_colour_scale() -> None:
    figures = comparison_confusion_figures(_comparison())
    assert set(figures) == {1, 2}
    counts = [figures[i]["counts"]["data"][0] for i in (1, 2)]
    assert [heatmap["zmax"] for heatmap in counts] == [900, 900]
    shares = [figures[i]["normalized"]["data"][0] for i in (1, 2)]
    assert [heatmap["zmax"] for heatmap in shares] == [1, 1]
    assert shares[1]["z"][0] == [0.8, 0.2]
    title = figures[1]["counts"]["layout"]["title"]
    assert (title["text"], title["font"]["color"]) == ("&lt;b&gt;run&lt;/b&gt;", "#636efa")


def test_curves_carry_each_points_epoch_and_training_minutes_for_the_controls() -> None:
    """Epochs of 30 s, unknown and 90 s: minutes 0.5, 0.5 (nothing added) and 2.0. The
    loss chart may go on a log axis, the accuracy chart not; both may be smoothed."""
    rows = [
        _metric({**row, "seconds": s}) for row, s in zip(EPOCHS, [30.0, None, 90.0], strict=True)
    ]
    loss = curves_figure(rows, "loss")
    for trace in loss["data"]:
        assert trace["customdata"] == [[1, 0.5], [2, 0.5], [3, 2.0]]
    assert [trace["meta"]["kind"] for trace in loss["data"]] == ["train", "validation"]
    controls = loss["layout"]["meta"]["curveControls"]
    assert (controls["smooth"], controls["logY"], controls["time"]) == (True, True, True)
    accuracy = curves_figure(rows, "accuracy")
    assert accuracy["layout"]["meta"]["curveControls"]["logY"] is False
    rate = learning_rate_figure(rows, None)
    assert rate["data"][0]["customdata"] == [[1, 0.5], [2, 0.5], [3, 2.0]]
    assert rate["layout"]["meta"]["curveControls"]["smooth"] is False


def test_compared_curves_name_their_runs_in_a_legend_and_carry_minutes() -> None:
    figure = comparison_curves_figure(_comparison(), "loss")
    assert figure["layout"]["showlegend"] is True
    shown = [trace for trace in figure["data"] if trace["showlegend"]]
    assert [trace["name"] for trace in shown] == ["&lt;b&gt;run&lt;/b&gt;"]  # one per run
    assert {trace["legendgroup"] for trace in figure["data"]} == {"1"}
    (validation,) = _traces(figure, "validation")
    assert validation["customdata"] == [[1, 0.5], [2, 1.0], [3, 1.5], [4, 2.0]]
    assert "%{fullData.name}" in validation["hovertemplate"]
    assert "min" in validation["hovertemplate"]
    (phase,) = _traces(figure, "phase")
    assert phase["customdata"] == [[2.5, 1.0], [2.5, 1.0]]  # where epoch 2 ended
    (marks,) = _traces(figure, "mark")
    assert marks["customdata"] == [[3, 1.5], [4, 2.0], [3, 1.5]]
    assert figure["layout"]["meta"]["curveControls"]["logY"] is True
    accuracy = comparison_curves_figure(_comparison(), "accuracy")
    assert accuracy["layout"]["meta"]["curveControls"]["logY"] is False


def test_experiment_colour_depends_on_its_id_only() -> None:
    assert experiment_color(7) == experiment_color(7) == PALETTE[7]
    assert experiment_color(17) == PALETTE[7]
    assert len({experiment_color(i) for i in range(1, 11)}) == 10
