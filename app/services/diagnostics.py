"""Pure functions: a run's epoch curves (and its evaluation's predictions) -> typed findings
(kinds, epochs, numbers).

The original study read its loss and accuracy curves by eye ("the model overfits from epoch N",
"more epochs would help"); this module applies the same reading to every run, so each
experiment page can say it and the compare page can sort by it. The words are the web's
(``app.web.presentation``): a finding here carries only what its sentence needs.

The rules, each a small function below (thresholds are the module constants):

- **collapsed** (error): the model learned nothing. Either the evaluation predicted one class
  for more than ``COLLAPSE_SHARE`` of the test images (the column sums of its confusion
  matrix; a short MobileNetV2 run whose BatchNorm statistics trailed its weights predicted
  "airplane" for all of them), or validation accuracy stayed within ``CHANCE_MARGIN`` of
  chance (1 / classes) at every epoch after epoch ``CHANCE_AFTER_EPOCH``. It subsumes
  underfitting, and a collapsed run is never called healthy nor told that more epochs would
  help.
- **overfitting** (warning): validation loss reached its minimum at epoch N with at least
  ``MIN_EPOCHS_AFTER_BEST`` epochs after it, training loss kept falling after N (by more than
  ``TRAIN_LOSS_FALL``, relative), and the curves moved apart: the final validation loss is
  ``VAL_LOSS_RISE`` above its minimum, or the accuracy gap widened by ``GAP_WIDENING`` since N,
  or the final gap exceeds ``LARGE_GAP``.
- **underfitting** (warning): final training accuracy below ``LOW_ACCURACY`` and either train
  and validation accuracy are close (gap below ``SMALL_GAP``, or no validation) or the
  training loss is still above ``HIGH_LOSS``.
- **unstable** (warning): validation loss rose by more than ``JUMP_RATIO`` from one epoch to
  the next more than once (the jump into a new phase does not count).
- **diverged** (warning): a loss became NaN or infinite.
- **still_improving** (info): validation loss was lowest at the last epoch and every planned
  epoch ran: more epochs would likely help.
- **early_stopped** (info): fewer epochs ran than were planned.
- **fine_tuning** (info): the phase changed (a transfer run's "train" then "fine_tune"): the
  learning rate at that epoch is the new phase's, not a plateau cut.
- **lr_reduced** (info): the learning rate dropped within a phase (a plateau cut, a schedule).
- **no_validation** (info): no validation loss, so over- and underfitting cannot be judged.
- **healthy** (info): validation data exist and none of the errors or warnings apply.

A change of learning rate (a cut, the start of fine-tuning) is said to have helped only when
validation loss reached a new low after it: its best from the change until the next change
below its best before the change. When it did not, the finding says so; without validation
loss it says nothing about help.

For a run still in progress pass ``in_progress=True``: "still improving" and "stopped early"
describe finished runs only; a change whose epochs are still running is not yet judged
not to have helped.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple

from sqlalchemy import Row

from app.core.cifar10 import CLASS_COUNT


class Severity(enum.StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


class FindingKind(enum.StrEnum):
    """The rules of the module docstring, one member each."""

    collapsed = "collapsed"
    overfitting = "overfitting"
    underfitting = "underfitting"
    unstable = "unstable"
    diverged = "diverged"
    still_improving = "still_improving"
    early_stopped = "early_stopped"
    fine_tuning = "fine_tuning"
    lr_reduced = "lr_reduced"
    no_validation = "no_validation"
    healthy = "healthy"


MIN_EPOCHS_AFTER_BEST = 2
TRAIN_LOSS_FALL = 0.01  # relative fall of training loss after the best epoch
VAL_LOSS_RISE = 0.05  # relative rise of the final validation loss over its minimum
GAP_WIDENING = 0.03  # accuracy points (as a fraction) the gap grew after the best epoch
LARGE_GAP = 0.10  # train accuracy - validation accuracy, as a fraction
SMALL_GAP = 0.05
LOW_ACCURACY = 0.60  # CIFAR-10 training accuracy below this is underfitting
HIGH_LOSS = 1.0  # cross-entropy; chance level for 10 classes is ln 10 = 2.30
JUMP_RATIO = 0.50  # an epoch-to-epoch validation loss rise of more than half
MIN_JUMPS = 2
COLLAPSE_SHARE = 0.50  # one class predicted for more than half of the test images
CHANCE_MARGIN = 0.02  # validation accuracy this close to 1 / classes is chance
CHANCE_AFTER_EPOCH = 2  # still at chance after this epoch: the run learned nothing
FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
HEADLINE_ORDER = (
    FindingKind.collapsed, FindingKind.diverged, FindingKind.overfitting, FindingKind.unstable,
    FindingKind.underfitting, FindingKind.healthy, FindingKind.no_validation,
)  # fmt: skip
"""Which finding a run's one-line verdict leads with: the error, else the worst warning, else
the all-clear."""


@dataclass(frozen=True)
class Finding:
    """One observation about a run's curves, with the numbers its sentence quotes: ``epochs``
    lists the jumps (unstable), the cuts (lr_reduced), the phase switch (fine_tuning) or the
    epochs at chance (collapsed); ``helped`` says, for each of a change's ``epochs``, whether
    validation loss reached a new low after it (``None``: cannot tell yet or at all).
    ``accuracy`` is the final training accuracy (underfitting) or the highest validation
    accuracy at chance (collapsed), ``chance`` that chance level, ``gap`` the final train -
    validation accuracy (underfitting, healthy), ``planned`` the planned epochs
    (early_stopped), ``label``, ``share`` and ``images`` the class predicted most, its share of
    the test images and their number (collapsed), ``learning_rate`` the new phase's
    (fine_tuning)."""

    kind: FindingKind
    severity: Severity
    epoch: int | None
    epochs: tuple[int, ...] = ()
    accuracy: float | None = None
    gap: float | None = None
    planned: int | None = None
    helped: tuple[bool | None, ...] = ()
    chance: float | None = None
    label: str | None = None
    share: float | None = None
    images: int | None = None
    learning_rate: float | None = None


@dataclass(frozen=True)
class Predictions:
    """How many test images the evaluation predicted as each class: the column sums of its
    confusion matrix (rows are true classes, columns predictions, as scikit-learn's)."""

    classes: tuple[str, ...]
    counts: tuple[int, ...]

    @classmethod
    def from_confusion_matrix(
        cls, classes: Sequence[Any], matrix: Sequence[Sequence[Any]] | None
    ) -> Predictions | None:
        """``None`` without a matrix (an imported report may have none)."""
        if not matrix:
            return None
        if any(len(row) != len(classes) for row in matrix) or len(matrix) != len(classes):
            raise ValueError(
                f"the confusion matrix must be {len(classes)} x {len(classes)}, one row and "
                "one column per class"
            )
        counts = tuple(int(sum(column)) for column in zip(*matrix, strict=True))
        return cls(tuple(str(name) for name in classes), counts)


@dataclass(frozen=True)
class Diagnosis:
    """Everything the curves say about a run; ``best_val_loss`` and ``best_val_accuracy`` are
    the validation figures at ``best_epoch``, the weights early stopping with
    restore_best_weights keeps. ``in_progress``: read while the run still trains."""

    generalization_gap: list[tuple[int, float]]
    best_epoch: int | None
    best_val_loss: float | None
    best_val_accuracy: float | None
    lr_reductions: list[int]
    phase_boundary: int | None
    findings: list[Finding]
    in_progress: bool = False

    @property
    def headline(self) -> Finding | None:
        """The finding the verdict leads with; ``None`` only when there are no epochs."""
        by_kind = {finding.kind: finding for finding in self.findings}
        return next((by_kind[kind] for kind in HEADLINE_ORDER if kind in by_kind), None)

    def has(self, kind: FindingKind) -> bool:
        return any(finding.kind == kind for finding in self.findings)


class _Epoch(NamedTuple):
    """One row, checked and converted; non-finite numbers become ``None`` here and are
    reported once, as divergence, instead of poisoning every comparison. A tuple: a compare
    page builds hundreds of them."""

    epoch: int
    phase: str | None
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None


def _values(row: Any) -> Mapping[Any, Any]:
    """Rows may be dicts (JSON, tests), database rows or objects (Pydantic models); this
    runs for every epoch of every compared experiment, so the common cases go first."""
    if isinstance(row, Row):
        return row._mapping
    if isinstance(row, Mapping):
        return row
    return {key: getattr(row, key, None) for key in ("epoch", "phase", *FIELDS)}


def _number(value: Any, key: str, epoch: int) -> float | None:
    """``None`` for a missing or non-finite value; a float of anything else numeric."""
    if type(value) is not float:  # the common case first, in one check
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError(f"epoch {epoch}: {key} must be a number or None, got {value!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"epoch {epoch}: {key} must be a number or None, got {value!r}"
            ) from None
    return value if math.isfinite(value) else None


def _epoch_number(value: Any, index: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"row {index}: epoch must be a whole number from 1 up (epochs are 1-based), "
            f"got {value!r}"
        )
    return value


def _rows(epochs: Sequence[Any]) -> tuple[list[_Epoch], bool]:
    """Checked rows in epoch order, and whether any number was NaN or infinite."""
    rows: list[_Epoch] = []
    non_finite = False
    for index, row in enumerate(epochs):
        values = _values(row)
        epoch = _epoch_number(values.get("epoch"), index)
        raw = [values.get(key) for key in FIELDS]
        numbers = [_number(value, key, epoch) for value, key in zip(raw, FIELDS, strict=True)]
        non_finite = non_finite or numbers.count(None) != raw.count(None)
        phase = values.get("phase")
        rows.append(_Epoch(epoch, None if phase is None else str(phase), *numbers))
    rows.sort(key=lambda r: r.epoch)
    for previous, row in pairwise(rows):
        if previous.epoch == row.epoch:
            raise ValueError(f"epoch {row.epoch} appears twice; each epoch needs exactly one row")
    return rows, non_finite


# --- measurements --------------------------------------------------------------------------


def _gap(row: _Epoch) -> float | None:
    if row.accuracy is None or row.val_accuracy is None:
        return None
    return row.accuracy - row.val_accuracy


def _generalization_gap(rows: Sequence[_Epoch]) -> list[tuple[int, float]]:
    return [(row.epoch, gap) for row in rows if (gap := _gap(row)) is not None]


def _best_row(rows: Sequence[_Epoch]) -> _Epoch | None:
    """Lowest validation loss; ``min`` keeps the first of equal values, so ties go earliest."""
    with_val = [row for row in rows if row.val_loss is not None]
    return min(with_val, key=lambda row: row.val_loss or 0.0) if with_val else None


def _lr_reductions(rows: Sequence[_Epoch], boundary: int | None) -> list[int]:
    """Cuts within a phase: the rate a new phase starts at (``boundary``) is that phase's, not
    a cut. A relative tolerance keeps float32 round-trips of one value from reading as a cut."""
    return [
        row.epoch
        for previous, row in pairwise(rows)
        if row.epoch != boundary
        and previous.learning_rate is not None
        and row.learning_rate is not None
        and row.learning_rate < previous.learning_rate * (1 - 1e-6)
    ]


def _phase_boundary(rows: Sequence[_Epoch]) -> int | None:
    first = rows[0].phase
    return next((row.epoch for row in rows if row.phase != first), None)


def _improved(rows: Sequence[_Epoch], start: int, end: int | None, running: bool) -> bool | None:
    """Whether validation loss from epoch ``start`` until ``end`` (exclusive; ``None``: the
    last epoch) got below its best before ``start``. ``None`` when either side has no
    validation loss, or when the epochs after the change are still running (``running``) and
    have not improved yet: a new low may still come."""
    before = [row.val_loss for row in rows if row.epoch < start and row.val_loss is not None]
    after = [
        row.val_loss
        for row in rows
        if row.epoch >= start and (end is None or row.epoch < end) and row.val_loss is not None
    ]
    if not before or not after:
        return None
    if min(after) < min(before):
        return True
    return None if running and end is None else False


def _dominant(predictions: Predictions | None) -> tuple[str, float, int] | None:
    """The class predicted for more than ``COLLAPSE_SHARE`` of the test images, its share and
    the number of images; ``None`` when no class dominates."""
    if predictions is None or sum(predictions.counts) == 0:
        return None
    images = sum(predictions.counts)
    top = max(range(len(predictions.counts)), key=lambda i: predictions.counts[i])
    share = predictions.counts[top] / images
    return (predictions.classes[top], share, images) if share > COLLAPSE_SHARE else None


def _at_chance(rows: Sequence[_Epoch], chance: float) -> list[_Epoch]:
    """When validation accuracy was within ``CHANCE_MARGIN`` of ``chance`` at every epoch
    after ``CHANCE_AFTER_EPOCH`` (and there is one), the epochs at chance up to the last, the
    earlier ones included where they were at chance too; else none. A small tolerance keeps
    0.12 - 0.10 in floats from reading as more than 0.02."""

    def at(row: _Epoch) -> bool:
        return abs((row.val_accuracy or 0.0) - chance) <= CHANCE_MARGIN + 1e-9

    with_val = [row for row in rows if row.val_accuracy is not None]
    late = [row for row in with_val if row.epoch > CHANCE_AFTER_EPOCH]
    if not late or not all(at(row) for row in late):
        return []
    missed = [row for row in with_val if row.epoch <= CHANCE_AFTER_EPOCH and not at(row)]
    start = missed[-1].epoch if missed else 0
    return [row for row in with_val if row.epoch > start]


# --- rules ---------------------------------------------------------------------------------


def _collapsed(rows: Sequence[_Epoch], predictions: Predictions | None) -> Finding | None:
    # Without an evaluation to name them, CIFAR-10's classes set the chance level.
    classes = len(predictions.classes) if predictions is not None else CLASS_COUNT
    chance = 1 / classes
    at_chance = _at_chance(rows, chance)
    dominant = _dominant(predictions)
    if dominant is None and not at_chance:
        return None
    label, share, images = dominant if dominant is not None else (None, None, None)
    return Finding(
        FindingKind.collapsed,
        Severity.error,
        at_chance[0].epoch if at_chance else None,
        epochs=tuple(row.epoch for row in at_chance),
        accuracy=max((row.val_accuracy or 0.0) for row in at_chance) if at_chance else None,
        chance=chance if at_chance else None,
        label=label,
        share=share,
        images=images,
    )


def _overfitting(rows: Sequence[_Epoch], best: _Epoch | None) -> Finding | None:
    if best is None or best.val_loss is None or best.loss is None:
        return None
    later = [row for row in rows if row.epoch > best.epoch and row.val_loss is not None]
    if len(later) < MIN_EPOCHS_AFTER_BEST:
        return None
    last = rows[-1]
    if last.loss is None or last.loss >= best.loss * (1 - TRAIN_LOSS_FALL):
        return None
    final_val_loss = later[-1].val_loss or best.val_loss
    best_gap, final_gap = _gap(best), _gap(last)
    apart = final_val_loss > best.val_loss * (1 + VAL_LOSS_RISE) or (
        best_gap is not None
        and final_gap is not None
        and (final_gap - best_gap > GAP_WIDENING or final_gap > LARGE_GAP)
    )
    if not apart:
        return None
    return Finding(FindingKind.overfitting, Severity.warning, best.epoch)


def _underfitting(last: _Epoch) -> Finding | None:
    if last.accuracy is None or last.accuracy >= LOW_ACCURACY:
        return None
    gap = _gap(last)
    close = gap is None or gap < SMALL_GAP
    loss_high = last.loss is not None and last.loss > HIGH_LOSS
    if not (close or loss_high):
        return None
    return Finding(
        FindingKind.underfitting, Severity.warning, last.epoch, accuracy=last.accuracy, gap=gap
    )


def _unstable(rows: Sequence[_Epoch], boundary: int | None) -> Finding | None:
    with_val = [row for row in rows if row.val_loss is not None]
    jumps = [
        row.epoch
        for previous, row in pairwise(with_val)
        if row.epoch != boundary
        and (previous.val_loss or 0.0) > 0
        and (row.val_loss or 0.0) > (previous.val_loss or 0.0) * (1 + JUMP_RATIO)
    ]
    if len(jumps) < MIN_JUMPS:
        return None
    return Finding(FindingKind.unstable, Severity.warning, jumps[0], epochs=tuple(jumps))


def _diverged(non_finite: bool) -> Finding | None:
    if not non_finite:
        return None
    return Finding(FindingKind.diverged, Severity.warning, None)


def _still_improving(
    rows: Sequence[_Epoch], best: _Epoch | None, planned: int | None
) -> Finding | None:
    with_val = [row for row in rows if row.val_loss is not None]
    if best is None or len(with_val) < 2 or best.epoch != with_val[-1].epoch:
        return None
    if planned is not None and rows[-1].epoch < planned:
        return None
    return Finding(FindingKind.still_improving, Severity.info, best.epoch)


def _early_stopped(rows: Sequence[_Epoch], planned: int | None) -> Finding | None:
    last = rows[-1].epoch
    if planned is None or last >= planned:
        return None
    return Finding(FindingKind.early_stopped, Severity.info, last, planned=planned)


def _changes(reductions: Sequence[int], boundary: int | None) -> list[int]:
    """Every epoch the learning rate changed at: the cuts and the phase switch, in order."""
    return sorted({*reductions, *([] if boundary is None else [boundary])})


def _fine_tuning(rows: Sequence[_Epoch], boundary: int | None, in_progress: bool) -> Finding | None:
    """The whole new phase is judged, cuts within it included."""
    if boundary is None:
        return None
    rate = next(row.learning_rate for row in rows if row.epoch == boundary)
    helped = _improved(rows, boundary, None, in_progress)
    return Finding(
        FindingKind.fine_tuning, Severity.info, boundary, epochs=(boundary,), helped=(helped,),
        learning_rate=rate,
    )  # fmt: skip


def _lr_reduced(
    rows: Sequence[_Epoch], reductions: Sequence[int], boundary: int | None, in_progress: bool
) -> Finding | None:
    """Each cut is judged on the epochs until the next change (a cut or the phase switch)."""
    if not reductions:
        return None
    changes = _changes(reductions, boundary)
    following = dict(zip(changes, [*changes[1:], None], strict=True))
    helped = tuple(_improved(rows, cut, following[cut], in_progress) for cut in reductions)
    return Finding(
        FindingKind.lr_reduced, Severity.info, reductions[0], epochs=tuple(reductions),
        helped=helped,
    )  # fmt: skip


def _no_validation(best: _Epoch | None) -> Finding | None:
    if best is not None:
        return None
    return Finding(FindingKind.no_validation, Severity.info, None)


def _healthy(last: _Epoch) -> Finding:
    return Finding(FindingKind.healthy, Severity.info, None, gap=_gap(last))


# --- the diagnosis -------------------------------------------------------------------------


def _findings(
    rows: Sequence[_Epoch],
    best: _Epoch | None,
    non_finite: bool,
    planned: int | None,
    in_progress: bool,
    predictions: Predictions | None,
) -> list[Finding]:
    """The error first, then warnings, worst first; then the informational notes.
    Underfitting is not claimed beside overfitting (the two readings contradict each other) nor
    beside a collapse (which says more); a collapsed run's falling loss promises nothing, so it
    is not told that more epochs would help."""
    boundary = _phase_boundary(rows)
    collapsed = _collapsed(rows, predictions)
    overfitting = _overfitting(rows, best)
    candidates = [
        collapsed,
        _diverged(non_finite),
        overfitting,
        _unstable(rows, boundary),
        None if overfitting or collapsed else _underfitting(rows[-1]),
    ]
    if best is not None and not any(candidates):
        candidates.append(_healthy(rows[-1]))
    if not in_progress:
        still_improving = None if collapsed else _still_improving(rows, best, planned)
        candidates += [still_improving, _early_stopped(rows, planned)]
    candidates += [
        _fine_tuning(rows, boundary, in_progress),
        _lr_reduced(rows, _lr_reductions(rows, boundary), boundary, in_progress),
        _no_validation(best),
    ]
    return [finding for finding in candidates if finding is not None]


def diagnose(
    epochs: Sequence[Any],
    *,
    planned_epochs: int | None = None,
    in_progress: bool = False,
    predictions: Predictions | None = None,
) -> Diagnosis:
    """Read a run's epoch rows (mappings or objects with ``epoch``, ``phase``, ``loss``,
    ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``; numbers may be ``None``)
    and apply the rules in the module docstring. ``planned_epochs`` is the run's total over all
    phases; ``in_progress`` silences the rules that only make sense once a run has ended;
    ``predictions``, the evaluation's, once there is one (a collapse shows there first)."""
    if planned_epochs is not None and planned_epochs < 1:
        raise ValueError(f"planned_epochs must be at least 1 or None, got {planned_epochs}")
    rows, non_finite = _rows(epochs)
    if not rows:
        return Diagnosis([], None, None, None, [], None, [], in_progress)
    best = _best_row(rows)
    boundary = _phase_boundary(rows)
    return Diagnosis(
        generalization_gap=_generalization_gap(rows),
        best_epoch=None if best is None else best.epoch,
        best_val_loss=None if best is None else best.val_loss,
        best_val_accuracy=None if best is None else best.val_accuracy,
        lr_reductions=_lr_reductions(rows, boundary),
        phase_boundary=boundary,
        findings=_findings(rows, best, non_finite, planned_epochs, in_progress, predictions),
        in_progress=in_progress,
    )
