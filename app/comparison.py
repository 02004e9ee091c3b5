"""What the compare page shows, as plain data: the page and GET /api/compare share it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Protocol

import numpy as np

from app.crud import EpochRow
from app.diagnostics import diagnose
from app.models import Experiment, Status
from app.significance import bootstrap_from_table, describe, mcnemar

# Plotly's default palette: experiment i keeps colour i on every chart of the page.
COLORS = (
    "#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a",
    "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52",
)  # fmt: skip
METRICS = ("precision", "recall", "f1-score")
SUMMARY_ROWS = ("macro avg", "weighted avg")
MAX_CURVE_POINTS = 200


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


@dataclass(frozen=True)
class History:
    """One experiment's epochs as a comparison reads them. A finished experiment's epochs
    never change, so the web process keeps its History between requests
    (``app.history_cache``): nothing that reads one may change it."""

    epochs: int
    seconds_per_epoch: float | None
    images_per_second: float | None
    curve: list[dict[str, Any]]
    diagnostics: dict[str, Any]


def history(experiment: Experiment, epochs: Sequence[EpochRow]) -> History:
    return History(
        epochs=len(epochs),
        seconds_per_epoch=_mean([row.seconds for row in epochs]),
        images_per_second=_mean([row.images_per_second for row in epochs]),
        curve=[_curve(row) for row in downsample(epochs)],
        diagnostics=diagnostics(experiment, epochs),
    )


def summary(experiment: Experiment, history: History, color: str) -> dict[str, Any]:
    return {
        "id": experiment.id,
        "name": experiment.name,
        "model": experiment.model,
        "status": experiment.status,
        "color": color,
        "test_accuracy": experiment.test_accuracy,
        "macro_f1": experiment.macro_f1,
        "parameters": experiment.parameters,
        "epochs": history.epochs,
        "training_seconds": experiment.duration_seconds,
        "seconds_per_epoch": history.seconds_per_epoch,
        "images_per_second": history.images_per_second,
        "test_size": experiment.evaluation.test_size if experiment.evaluation else None,
    }


def downsample(epochs: Sequence[EpochRow], limit: int = MAX_CURVE_POINTS) -> list[EpochRow]:
    """Evenly thinned for charts, always keeping the first, best and last epochs."""
    if len(epochs) <= limit:
        return list(epochs)
    step = len(epochs) / (limit - 2)
    keep = {round(i * step) for i in range(limit - 2)} | {0, len(epochs) - 1}
    with_loss = [i for i, row in enumerate(epochs) if row.val_loss is not None]
    if with_loss:
        keep.add(min(with_loss, key=lambda i: epochs[i].val_loss or 0.0))
    return [epochs[i] for i in sorted(keep) if i < len(epochs)]


def per_class_table(
    experiments: Sequence[Experiment], baseline_id: int | None
) -> list[dict[str, Any]]:
    """One row per class (then accuracy and the averages): every experiment's precision,
    recall and F1 side by side, the best marked, and deltas against the baseline."""
    evaluated = [e for e in experiments if e.evaluation is not None]
    classes: list[str] = []
    for experiment in evaluated:
        assert experiment.evaluation is not None
        classes += [c for c in experiment.evaluation.classes if c not in classes]
    rows = [_metric_row(name, evaluated, baseline_id) for name in (*classes, *SUMMARY_ROWS)]
    rows.insert(len(classes), _accuracy_row(evaluated, baseline_id))
    return rows


def _metric_row(name: str, experiments: Sequence[Experiment], baseline_id: int | None) -> dict:
    values: dict[int, dict[str, float]] = {}
    for experiment in experiments:
        assert experiment.evaluation is not None
        entry = experiment.evaluation.report.get(name)
        if isinstance(entry, dict):
            values[experiment.id] = {key: entry[key] for key in (*METRICS, "support")}
    best = {metric: _argmax({i: v[metric] for i, v in values.items()}) for metric in METRICS}
    return {"row": name, "values": values, "best": best, "delta": _deltas(values, baseline_id)}


def _accuracy_row(experiments: Sequence[Experiment], baseline_id: int | None) -> dict:
    values = {
        e.id: {"f1-score": e.evaluation.accuracy, "support": float(e.evaluation.test_size)}
        for e in experiments
        if e.evaluation is not None
    }
    best = {"f1-score": _argmax({i: v["f1-score"] for i, v in values.items()})}
    return {
        "row": "accuracy",
        "values": values,
        "best": best,
        "delta": _deltas(values, baseline_id),
    }


def _argmax(values: dict[int, float]) -> list[int]:
    if not values:
        return []
    top = max(values.values())
    return [i for i, value in values.items() if value == top]


def _deltas(values: dict[int, dict[str, float]], baseline_id: int | None) -> dict:
    base = values.get(baseline_id) if baseline_id is not None else None
    if base is None:
        return {}
    return {
        i: {k: v[k] - base[k] for k in v if k != "support" and k in base}
        for i, v in values.items()
        if i != baseline_id
    }


def _flat_hyperparameters(experiment: Experiment) -> dict[str, Any]:
    return {"model": experiment.model, **experiment.spec.get("hyperparameters", {})}


def hyperparameters(experiments: Sequence[Experiment]) -> dict[str, Any]:
    """All values, and the keys whose values differ (shown by default) among trained runs:
    an imported report has no settings, which is not a difference."""
    flat = {e.id: _flat_hyperparameters(e) for e in experiments}
    keys = sorted({key for values in flat.values() for key in values})
    table = {key: {i: values.get(key) for i, values in flat.items()} for key in keys}
    trained = {e.id for e in experiments if e.status != Status.imported}
    differing = [
        key
        for key, by_id in table.items()
        if len({repr(v) for i, v in by_id.items() if i in trained}) > 1
    ]
    return {"all": table, "differing": differing}


def warnings(experiments: Sequence[Experiment]) -> list[str]:
    """What makes a comparison unfair, said at the top of the page."""
    found: list[str] = []
    evaluated = [e for e in experiments if e.evaluation is not None]
    sizes = {e.id: e.evaluation.test_size for e in evaluated if e.evaluation is not None}
    if len(set(sizes.values())) > 1:
        found.append(f"Different test-set sizes: {_listing(evaluated, sizes)}.")
    prints = {e.evaluation.test_set_fingerprint for e in evaluated if e.evaluation is not None}
    if len(set(sizes.values())) == 1 and len(prints - {None}) > 1:
        found.append("Same test-set size but different test images (another subset or seed).")
    imported = [e.name for e in evaluated if e.status == Status.imported]
    if imported:
        found.append(
            f"Imported reports ({', '.join(imported)}) carry no per-image predictions: which "
            "test images they used cannot be checked."
        )
    trained = [e for e in experiments if e.status != Status.imported]
    for key, label in (("seed", "seeds"), ("dataset", "datasets")):
        values = {e.id: _setting(e, key) for e in trained}
        if len({repr(v) for v in values.values()}) > 1:
            found.append(f"Different {label}: {_listing(trained, values)}.")
    unfinished = [e.name for e in experiments if e.status in (Status.queued, Status.running)]
    if unfinished:
        found.append(f"Still training: {', '.join(unfinished)}; their numbers will change.")
    return found


def _setting(experiment: Experiment, key: str) -> Any:
    if key == "dataset":
        return experiment.spec.get("dataset")
    return experiment.spec.get("hyperparameters", {}).get(key)


def _listing(experiments: Sequence[Experiment], values: dict[int, Any]) -> str:
    return "; ".join(f"{e.name}: {values[e.id]}" for e in experiments)


def _correct(experiment: Experiment, labels: np.ndarray | None) -> np.ndarray | None:
    """Right/wrong per test image, as one numpy comparison (10,000 images per experiment)."""
    evaluation = experiment.evaluation
    if evaluation is None or evaluation.predictions is None or labels is None:
        return None
    predictions = np.asarray(evaluation.predictions)
    return predictions == labels if predictions.shape == labels.shape else None


def significance(experiments: Sequence[Experiment], baseline: Experiment) -> list[dict[str, Any]]:
    """Each experiment against the baseline, when both were scored on the same test images.
    Equal fingerprints mean equal labels, so only the baseline's labels are read."""
    results = []
    evaluation = baseline.evaluation
    base_print = evaluation.test_set_fingerprint if evaluation else None
    labels = None
    if evaluation is not None and base_print is not None and evaluation.labels is not None:
        labels = np.asarray(evaluation.labels)
    base_correct = _correct(baseline, labels)
    for other in experiments:
        if other.id == baseline.id:
            continue
        pair: dict[str, Any] = {"a": baseline.id, "b": other.id}
        same = other.evaluation is not None and other.evaluation.test_set_fingerprint == base_print
        other_correct = _correct(other, labels) if same else None
        if base_correct is None or other_correct is None or base_print is None:
            pair["text"] = _no_pairing(baseline, other)
            results.append(pair)
            continue
        test = mcnemar(base_correct, other_correct)
        interval = bootstrap_from_table(test)
        pair |= {
            "mcnemar": {
                "p_value": test.p_value, "statistic": test.statistic, "method": test.method,
                "only_a_correct": test.only_a_correct, "only_b_correct": test.only_b_correct,
                "n": test.n,
            },
            "bootstrap": {
                "difference": interval.difference, "low": interval.low, "high": interval.high,
                "confidence": interval.confidence,
            },
            "text": describe(baseline.name, other.name, test, interval),
        }  # fmt: skip
        results.append(pair)
    return results


def _no_pairing(baseline: Experiment, other: Experiment) -> str:
    unevaluated = [e.name for e in (baseline, other) if e.evaluation is None]
    if unevaluated:
        verb = "have" if len(unevaluated) > 1 else "has"
        return (
            f"{' and '.join(unevaluated)} {verb} no evaluation yet, so no paired test can be run."
        )
    return (
        f"{other.name} and {baseline.name} were not scored on the same test images with "
        "per-image predictions kept, so no paired test can be run."
    )


class Run(Protocol):
    """What diagnostics read of an experiment: an ORM row, or the live stream's narrow read."""

    @property
    def id(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def total_epochs(self) -> int: ...


def diagnostics(experiment: Run, epochs: Sequence[Any]) -> dict[str, Any]:
    diagnosis = diagnose(
        epochs,
        planned_epochs=experiment.total_epochs or None,
        in_progress=experiment.status in (Status.queued, Status.running),
    )
    return {
        "verdict": diagnosis.verdict,
        "best_epoch": diagnosis.best_epoch,
        "best_val_accuracy": diagnosis.best_val_accuracy,
        "phase_boundary": diagnosis.phase_boundary,
        "lr_reductions": diagnosis.lr_reductions,
        "early_stop_epoch": len(epochs)
        if any(f.kind == "early_stopped" for f in diagnosis.findings)
        else None,
        "generalization_gap": [[epoch, gap] for epoch, gap in diagnosis.generalization_gap],
        "findings": [
            {"kind": f.kind, "severity": f.severity, "epoch": f.epoch, "message": f.message}
            for f in diagnosis.findings
        ],
    }


def _curve(row: EpochRow) -> dict[str, Any]:
    keys = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    return {key: getattr(row, key) for key in keys}


def build_comparison(
    experiments: Sequence[Experiment],
    histories: Mapping[int, History],
    baseline_id: int | None = None,
) -> dict[str, Any]:
    """Everything the compare page draws; ``experiments`` in the order the user gave them."""
    if baseline_id is None or baseline_id not in {e.id for e in experiments}:
        baseline_id = experiments[0].id
    baseline = next(e for e in experiments if e.id == baseline_id)
    colors = {e.id: COLORS[i % len(COLORS)] for i, e in enumerate(experiments)}
    return {
        "baseline_id": baseline_id,
        "experiments": [summary(e, histories[e.id], colors[e.id]) for e in experiments],
        "warnings": warnings(experiments),
        "per_class": per_class_table(experiments, baseline_id),
        "hyperparameters": hyperparameters(experiments),
        "significance": significance(experiments, baseline),
        "diagnostics": {e.id: histories[e.id].diagnostics for e in experiments},
        "curves": {e.id: histories[e.id].curve for e in experiments},
        "confusion_matrices": {
            e.id: {"classes": e.evaluation.classes, "matrix": e.evaluation.confusion_matrix}
            for e in experiments
            if e.evaluation is not None and e.evaluation.confusion_matrix is not None
        },
    }
