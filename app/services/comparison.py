"""What the compare page shows, as typed facts: ids, statuses, numbers, kinds.

``build_comparison`` decides what is compared and what makes the comparison unfair; the web
(``app.web.presentation``) gives each experiment its colour and each fact its sentence, once,
for the page, GET /api/compare and the CSV alike.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, undefer
from typing_extensions import TypedDict

from app.core import crud
from app.core.crud import EpochRow
from app.core.models import INTEGER_MAX, Evaluation, Experiment, Status
from app.core.schemas import FieldError, SpecError
from app.core.time_to_accuracy import Reached, elapsed_seconds, time_to_accuracy
from app.services.diagnostics import Diagnosis, Predictions, diagnose
from app.services.errors import NotFound
from app.services.significance import BootstrapResult, McNemarResult, bootstrap_from_table, mcnemar

if TYPE_CHECKING:  # history_cache keeps this module's History
    from app.services.history_cache import HistoryCache

METRICS = ("precision", "recall", "f1-score")
SUMMARY_ROWS = ("macro avg", "weighted avg")
MAX_CURVE_POINTS = 200
ACTIVE = frozenset({Status.queued, Status.running})


class CurvePoint(TypedDict):
    """One epoch of a chart's curve (a dict: 200 points per experiment go to JSON as is)."""

    epoch: int
    phase: str
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    training_seconds: float  # inside epochs, up to and including this one


MetricValues = dict[str, float]
"""``precision``, ``recall``, ``f1-score`` and ``support`` of one report row (accuracy has
``f1-score`` and ``support`` only), as scikit-learn names them."""


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


@dataclass(frozen=True)
class History:
    """One experiment's epochs as a comparison reads them. A finished experiment's epochs
    never change, so the web process keeps its History between requests
    (``app.services.history_cache``): nothing that reads one may change it."""

    epochs: int
    seconds_per_epoch: float | None
    images_per_second: float | None
    curve: list[CurvePoint]
    diagnosis: Diagnosis
    time_to_accuracy: list[Reached]


def history(experiment: Experiment, epochs: Sequence[EpochRow]) -> History:
    # Summed over every epoch before thinning, so a thinned curve keeps the true times.
    elapsed = elapsed_seconds(epochs)
    return History(
        epochs=len(epochs),
        seconds_per_epoch=_mean([row.seconds for row in epochs]),
        images_per_second=_mean([row.images_per_second for row in epochs]),
        curve=[_curve(row, elapsed[row.epoch]) for row in downsample(epochs)],
        diagnosis=diagnostics(experiment, epochs, experiment.evaluation),
        time_to_accuracy=time_to_accuracy(epochs),
    )


@dataclass(frozen=True)
class Summary:
    """One compared experiment's headline figures."""

    id: int
    name: str
    model: str
    status: Status
    test_accuracy: float | None
    macro_f1: float | None
    parameters: int | None
    epochs: int
    training_seconds: float | None
    seconds_per_epoch: float | None
    images_per_second: float | None
    test_size: int | None
    test_time_augmentation: str | None
    time_to_accuracy: list[Reached]

    @property
    def imported(self) -> bool:
        return self.status is Status.imported


def summary(experiment: Experiment, history: History) -> Summary:
    return Summary(
        id=experiment.id,
        name=experiment.name,
        model=experiment.model,
        status=experiment.status,
        test_accuracy=experiment.test_accuracy,
        macro_f1=experiment.macro_f1,
        parameters=experiment.parameters,
        epochs=history.epochs,
        training_seconds=experiment.training_seconds,
        seconds_per_epoch=history.seconds_per_epoch,
        images_per_second=history.images_per_second,
        test_size=experiment.evaluation.test_size if experiment.evaluation else None,
        test_time_augmentation=(
            experiment.evaluation.test_time_augmentation if experiment.evaluation else None
        ),
        time_to_accuracy=history.time_to_accuracy,
    )


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


@dataclass(frozen=True)
class ReportRow:
    """One row of the merged report: each experiment's values by id, the ids best at each
    metric, and each non-baseline experiment's differences from the baseline."""

    row: str
    values: dict[int, MetricValues]
    best: dict[str, list[int]]
    delta: dict[int, MetricValues]


def per_class_table(experiments: Sequence[Experiment], baseline_id: int | None) -> list[ReportRow]:
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


def _metric_row(name: str, experiments: Sequence[Experiment], baseline_id: int | None) -> ReportRow:
    values: dict[int, MetricValues] = {}
    for experiment in experiments:
        assert experiment.evaluation is not None
        entry = experiment.evaluation.report.get(name)
        if isinstance(entry, dict):
            values[experiment.id] = {key: entry[key] for key in (*METRICS, "support")}
    best = {metric: _argmax({i: v[metric] for i, v in values.items()}) for metric in METRICS}
    return ReportRow(name, values, best, _deltas(values, baseline_id))


def _accuracy_row(experiments: Sequence[Experiment], baseline_id: int | None) -> ReportRow:
    values = {
        e.id: {"f1-score": e.evaluation.accuracy, "support": float(e.evaluation.test_size)}
        for e in experiments
        if e.evaluation is not None
    }
    best = {"f1-score": _argmax({i: v["f1-score"] for i, v in values.items()})}
    return ReportRow("accuracy", values, best, _deltas(values, baseline_id))


def _argmax(values: dict[int, float]) -> list[int]:
    if not values:
        return []
    top = max(values.values())
    return [i for i, value in values.items() if value == top]


def _deltas(values: dict[int, MetricValues], baseline_id: int | None) -> dict[int, MetricValues]:
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


@dataclass(frozen=True)
class Hyperparameters:
    """Every setting's value by experiment id (``None`` where an experiment lacks it), and
    the settings whose values differ among trained runs."""

    table: dict[str, dict[int, Any]]
    differing: list[str]


def hyperparameters(experiments: Sequence[Experiment]) -> Hyperparameters:
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
    return Hyperparameters(table, differing)


class CaveatKind(enum.StrEnum):
    """What makes a comparison unfair, in the order the page warns of it."""

    test_sizes = "test_sizes"  # evaluated on test sets of different sizes
    test_images = "test_images"  # same size, different images (another dataset, an old run)
    imported = "imported"  # imported reports: which test images they used is unknown
    seeds = "seeds"  # trained runs with different seeds
    datasets = "datasets"  # trained runs on different datasets
    # trained runs evaluated with different test-time augmentation ("flip" against "none", say)
    test_time_augmentation = "test_time_augmentation"
    unfinished = "unfinished"  # still queued or running: the numbers will change


@dataclass(frozen=True)
class Caveat:
    """One reason the comparison is unfair and whom it concerns: ``values`` maps each
    experiment id concerned, in the order given, to its differing value (a test-set size, a
    seed, a dataset), or to ``None`` where only who matters."""

    kind: CaveatKind
    values: dict[int, Any]


def caveats(experiments: Sequence[Experiment]) -> list[Caveat]:
    """What makes a comparison unfair, said at the top of the page."""
    found: list[Caveat] = []
    evaluated = [e for e in experiments if e.evaluation is not None]
    sizes = {e.id: e.evaluation.test_size for e in evaluated if e.evaluation is not None}
    if len(set(sizes.values())) > 1:
        found.append(Caveat(CaveatKind.test_sizes, dict(sizes)))
    prints = {e.evaluation.test_set_fingerprint for e in evaluated if e.evaluation is not None}
    if len(set(sizes.values())) == 1 and len(prints - {None}) > 1:
        found.append(Caveat(CaveatKind.test_images, {e.id: None for e in evaluated}))
    imported = {e.id: None for e in evaluated if e.status is Status.imported}
    if imported:
        found.append(Caveat(CaveatKind.imported, imported))
    trained = [e for e in experiments if e.status is not Status.imported]
    for key, kind in (("seed", CaveatKind.seeds), ("dataset", CaveatKind.datasets)):
        values = {e.id: _setting(e, key) for e in trained}
        if len({repr(v) for v in values.values()}) > 1:
            found.append(Caveat(kind, values))
    # An imported report's augmentation is unknown; it is warned of as imported already.
    augmentation = {
        e.id: e.evaluation.test_time_augmentation
        for e in evaluated
        if e.evaluation is not None and e.status is not Status.imported
    }
    if len(set(augmentation.values())) > 1:
        found.append(Caveat(CaveatKind.test_time_augmentation, augmentation))
    unfinished = {e.id: None for e in experiments if e.status in ACTIVE}
    if unfinished:
        found.append(Caveat(CaveatKind.unfinished, unfinished))
    return found


def _setting(experiment: Experiment, key: str) -> Any:
    if key == "dataset":
        return experiment.spec.get("dataset")
    return experiment.spec.get("hyperparameters", {}).get(key)


def _correct(
    experiment: Experiment, labels: npt.NDArray[Any] | None
) -> npt.NDArray[np.bool_] | None:
    """Right/wrong per test image, as one numpy comparison (10,000 images per experiment)."""
    evaluation = experiment.evaluation
    if evaluation is None or evaluation.predictions is None or labels is None:
        return None
    predictions = np.asarray(evaluation.predictions)
    return predictions == labels if predictions.shape == labels.shape else None


class Untested(enum.StrEnum):
    """Why a run could not be tested against the baseline, in the order the page says it."""

    unevaluated = "unevaluated"  # one of the two has no evaluation yet
    baseline_without_predictions = "baseline_without_predictions"  # nothing to pair with
    imported = "imported"  # an imported report: a classification report, no per-image results
    without_predictions = "without_predictions"  # a trained run that kept no per-image results
    other_images = "other_images"  # scored on other test images than the baseline


@dataclass(frozen=True)
class Pairing:
    """Experiment ``b`` against the baseline ``a``: McNemar's test and the bootstrap interval
    of the accuracy difference when both were scored on the same test images with per-image
    predictions kept; otherwise neither, ``untested`` says why, and ``unevaluated`` lists which
    of the two have no evaluation yet."""

    a: int
    b: int
    mcnemar: McNemarResult | None = None
    bootstrap: BootstrapResult | None = None
    unevaluated: tuple[int, ...] = ()
    untested: Untested | None = None


def _has_predictions(experiment: Experiment) -> bool:
    evaluation = experiment.evaluation
    return (
        evaluation is not None
        and evaluation.predictions is not None
        and evaluation.test_set_fingerprint is not None
    )


def _untested(baseline: Experiment, other: Experiment) -> Untested:
    """Why ``other`` could not be paired with ``baseline``: the first reason that applies."""
    if baseline.evaluation is None or other.evaluation is None:
        return Untested.unevaluated
    if not _has_predictions(baseline) or baseline.evaluation.labels is None:
        return Untested.baseline_without_predictions
    if other.status is Status.imported:
        return Untested.imported
    if not _has_predictions(other):
        return Untested.without_predictions
    return Untested.other_images


def default_baseline(experiments: Sequence[Experiment]) -> Experiment:
    """The run the others are measured against unless the user picks one: among runs with
    per-image predictions (only those can be paired in a significance test), the one scored
    on the test images most of the others share, so that most pairs can be tested, then the
    most accurate; failing predictions, the most accurate run; on a tie, the first given."""
    fingerprints = Counter(
        e.evaluation.test_set_fingerprint
        for e in experiments
        if e.evaluation is not None and _has_predictions(e)
    )

    def pairable(e: Experiment) -> int:
        if e.evaluation is None or not _has_predictions(e):
            return 0
        return fingerprints[e.evaluation.test_set_fingerprint]

    return max(
        experiments,
        key=lambda e: (
            _has_predictions(e),
            pairable(e),
            e.test_accuracy is not None,
            e.test_accuracy or 0.0,
        ),
    )


def significance(experiments: Sequence[Experiment], baseline: Experiment) -> list[Pairing]:
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
        same = other.evaluation is not None and other.evaluation.test_set_fingerprint == base_print
        other_correct = _correct(other, labels) if same else None
        if base_correct is None or other_correct is None or base_print is None:
            unevaluated = tuple(e.id for e in (baseline, other) if e.evaluation is None)
            why = _untested(baseline, other)
            results.append(Pairing(baseline.id, other.id, unevaluated=unevaluated, untested=why))
            continue
        test = mcnemar(base_correct, other_correct)
        results.append(Pairing(baseline.id, other.id, test, bootstrap_from_table(test)))
    return results


class Run(Protocol):
    """What diagnostics read of an experiment: an ORM row, or the live stream's narrow read."""

    @property
    def id(self) -> int: ...

    @property
    def status(self) -> Status: ...

    @property
    def total_epochs(self) -> int: ...


class Scored(Protocol):
    """What diagnostics read of an evaluation (an ORM row or ``EvaluationPublic``): the
    confusion matrix, whose columns are the predictions."""

    @property
    def classes(self) -> Sequence[Any]: ...

    @property
    def confusion_matrix(self) -> Sequence[Sequence[Any]] | None: ...


def diagnostics(experiment: Run, epochs: Sequence[Any], evaluation: Scored | None) -> Diagnosis:
    """The run's curves read as its status allows: a queued or running one is not done.
    ``epochs``: ORM rows or public epoch models (see ``diagnose``); ``evaluation``, once there
    is one, shows a run that collapsed to one class."""
    predictions = None
    if evaluation is not None:
        predictions = Predictions.from_confusion_matrix(
            evaluation.classes, evaluation.confusion_matrix
        )
    return diagnose(
        epochs,
        planned_epochs=experiment.total_epochs or None,
        in_progress=experiment.status in ACTIVE,
        predictions=predictions,
    )


def _curve(row: EpochRow, training_seconds: float) -> CurvePoint:
    return CurvePoint(
        epoch=row.epoch, phase=row.phase, loss=row.loss, accuracy=row.accuracy,
        val_loss=row.val_loss, val_accuracy=row.val_accuracy, learning_rate=row.learning_rate,
        training_seconds=training_seconds,
    )  # fmt: skip


@dataclass(frozen=True)
class ConfusionMatrix:
    classes: list[str]
    matrix: list[list[int]]


@dataclass(frozen=True)
class Comparison:
    """Everything the compare page draws, as facts; ``experiments`` in the order the user
    gave them, ``histories`` (curves and diagnoses) and ``confusion_matrices`` by id."""

    baseline_id: int
    experiments: list[Summary]
    caveats: list[Caveat]
    per_class: list[ReportRow]
    hyperparameters: Hyperparameters
    significance: list[Pairing]
    histories: dict[int, History]
    confusion_matrices: dict[int, ConfusionMatrix]


def build_comparison(
    experiments: Sequence[Experiment],
    histories: Mapping[int, History],
    baseline_id: int | None = None,
) -> Comparison:
    """Everything the compare page draws; ``experiments`` in the order the user gave them.
    Without a ``baseline_id`` among them, the baseline is ``default_baseline``'s."""
    if baseline_id is None or baseline_id not in {e.id for e in experiments}:
        baseline_id = default_baseline(experiments).id
    baseline = next(e for e in experiments if e.id == baseline_id)
    return Comparison(
        baseline_id=baseline_id,
        experiments=[summary(e, histories[e.id]) for e in experiments],
        caveats=caveats(experiments),
        per_class=per_class_table(experiments, baseline_id),
        hyperparameters=hyperparameters(experiments),
        significance=significance(experiments, baseline),
        histories={e.id: histories[e.id] for e in experiments},
        confusion_matrices={
            e.id: ConfusionMatrix(e.evaluation.classes, e.evaluation.confusion_matrix)
            for e in experiments
            if e.evaluation is not None and e.evaluation.confusion_matrix is not None
        },
    )


# --- loading what is compared (the API, the page and its CSV call these) ------------------------

MAX_COMPARED = 12


def _ids_error(message: str) -> SpecError:
    return SpecError([FieldError(field="ids", message=message)])


def parse_ids(ids: str, *, limit: int = MAX_COMPARED, baseline: int | None = None) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: two to ``limit`` distinct ids, in the order given (seed groups
    take more ids than single runs, see ``app.services.seed_groups``). Raises ``SpecError``
    (422) naming ``ids``, or ``baseline`` when one is given that is not among them: the API
    refuses it, where the compare page (which passes none here) falls back to the default."""
    parts = [part.strip() for part in ids.split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise _ids_error(f"write experiment ids as 1,2,3 (got {ids[:100]!r})")
    if any(len(part) > 10 or not 1 <= int(part) <= INTEGER_MAX for part in parts):
        raise _ids_error(f"experiment ids are 1 to {INTEGER_MAX}")
    parsed = [int(part) for part in parts]
    unique = list(dict.fromkeys(parsed))
    if not 2 <= len(unique) <= limit:
        message = f"compare 2 to {limit} different experiments (got {len(unique)})"
        if len(unique) > limit == MAX_COMPARED:
            message += "; group=seed compares more, as seed groups"
        raise _ids_error(message)
    if baseline is not None and baseline not in unique:
        compared = ", ".join(map(str, unique))
        message = f"{baseline} is not compared; give one of the compared ids ({compared})"
        raise SpecError([FieldError(field="baseline", message=message)])
    return unique


def load_for_comparison(session: Session, ids: list[int]) -> list[Experiment]:
    """With each evaluation's predictions, in the same query (one row each: a join costs
    less than a second query); labels load for the baseline only, when read. Raises
    ``NotFound`` naming the ids that do not exist."""
    rows = session.scalars(
        select(Experiment)
        .where(Experiment.id.in_(ids))
        .options(joinedload(Experiment.evaluation).options(undefer(Evaluation.predictions)))
    ).all()
    found = {row.id: row for row in rows}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFound(f"no experiment with id {', '.join(missing)}")
    return [found[i] for i in ids]


def load_comparison(
    session: Session, histories: HistoryCache, ids: list[int], baseline: int | None
) -> tuple[list[Experiment], Comparison]:
    """The experiments in the order given, and what the compare page and API show of them.
    Epochs are read only for experiments whose history is not already kept."""
    experiments = load_for_comparison(session, ids)
    return experiments, build_comparison(
        experiments, load_histories(session, histories, experiments), baseline
    )


def load_histories(
    session: Session, histories: HistoryCache, experiments: Sequence[Experiment]
) -> dict[int, History]:
    """Each experiment's History by id; epochs are read, in one query, only for experiments
    whose history is not already kept."""
    kept = {e.id: h for e in experiments if (h := histories.get(e)) is not None}
    missing = [e for e in experiments if e.id not in kept]
    if missing:
        epochs = crud.list_epochs_of(session=session, experiment_ids=[e.id for e in missing])
        for experiment in missing:
            kept[experiment.id] = history(experiment, epochs[experiment.id])
            histories.put(experiment, kept[experiment.id])
    return kept
