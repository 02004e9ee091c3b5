"""Words and colours for what the services found: a diagnosis's findings and verdict, a paired
test's result, a comparison's caveats, each experiment's colour.

``app.services.diagnostics``, ``significance`` and ``comparison`` return facts (kinds, epochs,
numbers); this module turns them into the sentences the pages show and GET /api/compare
returns, once, as the typed view models below (``ComparisonPublic`` is that route's
documented response). The compare page, its live poll and its CSV all read one
``ComparisonPublic``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.hyperparameters import TEST_TIME_MEANINGS
from app.core.models import Status
from app.core.schemas import TimeToAccuracyPublic
from app.services.comparison import (
    Caveat,
    CaveatKind,
    Comparison,
    CurvePoint,
    MetricValues,
    Pairing,
    Summary,
    Untested,
)
from app.services.diagnostics import (
    CHANCE_MARGIN,
    SMALL_GAP,
    Diagnosis,
    Finding,
    FindingKind,
    Severity,
)
from app.services.significance import BootstrapResult, McNemarResult
from app.web.charts import experiment_color

# --- a diagnosis in words ------------------------------------------------------------------


def _epochs(epochs: tuple[int, ...]) -> str:
    return ", ".join(str(epoch) for epoch in epochs)


def _epoch_span(epochs: tuple[int, ...]) -> str:
    """Says "at epoch 3" or "at every epoch from 3 to 8"."""
    if len(epochs) == 1:
        return f"at epoch {epochs[0]}"
    return f"at every epoch from {epochs[0]} to {epochs[-1]}"


def _rate(rate: float) -> str:
    """0.01, 3e-3, 2.5e-4, 1e-4: as a learning rate is written, float32 noise rounded away."""
    rounded = float(f"{rate:.3g}")
    if rounded >= 0.01:
        return f"{rounded:g}"
    mantissa, exponent = f"{rounded:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _share(share: float | None) -> str:
    """Rounded down to a tenth of a percent, so only all of the images read as 100%."""
    return f"{math.floor((share or 0.0) * 1000 + 1e-9) / 10:g}%"


def _collapsed_text(finding: Finding) -> str:
    parts = []
    if finding.label is not None:
        parts.append(
            f"The model predicted '{finding.label}' for {_share(finding.share)} of the "
            f"{finding.images} test images: it collapsed to one class"
        )
    if finding.chance is not None:
        parts.append(
            f"validation accuracy stayed within {CHANCE_MARGIN * 100:.0f} points of chance "
            f"({finding.chance:.0%}) {_epoch_span(finding.epochs)}, at most "
            f"{finding.accuracy or 0.0:.1%}: the model learned nothing"
        )
    said = ", and ".join(parts)
    return (
        f"{said[0].upper()}{said[1:]}. Check that the inputs are scaled as the model expects "
        "(a pretrained model has its own preprocessing), lower the learning rate, or use a "
        "larger batch size with batch normalization."
    )


def _cuts(epochs: list[int]) -> str:
    return ("the cuts at epochs " if len(epochs) > 1 else "the cut at epoch ") + _epochs(
        tuple(epochs)
    )


def _lr_reduced_text(finding: Finding) -> str:
    """Helped only where validation loss reached a new low after the cut; without
    validation loss, nothing about help."""
    cuts = finding.epochs
    if len(cuts) > 3:
        where = f"at {len(cuts)} epochs, from epoch {cuts[0]} (a schedule)"
    else:
        where = "at epoch" + ("s " if len(cuts) > 1 else " ") + _epochs(cuts)
    text = f"The learning rate was lowered {where}"
    helped = [cut for cut, yes in zip(cuts, finding.helped, strict=True) if yes]
    missed = [cut for cut, yes in zip(cuts, finding.helped, strict=True) if yes is False]
    if not helped and not missed:
        return f"{text}."
    if not missed:
        after = "it" if len(cuts) == 1 else "each" if len(helped) == len(cuts) else _cuts(helped)
        return f"{text}; validation loss reached a new low after {after}: the smaller steps helped."
    if not helped:
        return (
            f"{text}; validation loss did not get below its earlier best after "
            + ("it" if len(cuts) == 1 else "any of them")
            + ": the smaller steps did not help."
        )
    if len(cuts) > 3:
        return f"{text}; validation loss reached a new low after {len(helped)} of them."
    return (
        f"{text}; validation loss reached a new low after {_cuts(helped)}, "
        f"not after {_cuts(missed)}."
    )


def _fine_tuning_text(finding: Finding) -> str:
    rate = finding.learning_rate
    text = f"The fine-tuning phase started at epoch {finding.epoch}" + (
        "" if rate is None else f" at learning rate {_rate(rate)}"
    )
    match finding.helped:
        case (True,):
            return f"{text}; validation loss reached a new low in it: fine-tuning helped."
        case (False,):
            return (
                f"{text}; validation loss did not get below its best from before: "
                "fine-tuning did not help."
            )
    return f"{text}."


def finding_text(finding: Finding) -> str:
    """One finding, worded for a person deciding what to try next."""
    n = finding.epoch
    match finding.kind:
        case FindingKind.collapsed:
            return _collapsed_text(finding)
        case FindingKind.overfitting:
            return (
                f"Validation loss stopped improving at epoch {n} while training loss kept "
                f"falling: the model is overfitting from epoch {n}. More data augmentation, "
                f"dropout or weight decay, or early stopping at epoch {n} would help."
            )
        case FindingKind.underfitting:
            close = finding.gap is not None and finding.gap < SMALL_GAP
            return (
                f"Training accuracy ended at {finding.accuracy or 0.0:.1%}, "
                + ("about the same as validation" if close else "still low")
                + ": the model is underfitting. Train longer, raise the learning rate, use a "
                "larger model or start from pretrained weights."
            )
        case FindingKind.unstable:
            return (
                f"Validation loss jumped by more than half at epochs {_epochs(finding.epochs)}: "
                "training is unstable. A lower learning rate or a larger batch size would help."
            )
        case FindingKind.diverged:
            return (
                "A loss or metric became NaN or infinite: training diverged. Lower the learning "
                "rate, and check the inputs are scaled as the model expects."
            )
        case FindingKind.still_improving:
            return (
                f"Validation loss was still falling at the last epoch ({n}): "
                "more epochs would likely help."
            )
        case FindingKind.early_stopped:
            return (
                f"Training stopped after epoch {n} of the {finding.planned} planned: "
                "it ended early."
            )
        case FindingKind.fine_tuning:
            return _fine_tuning_text(finding)
        case FindingKind.lr_reduced:
            return _lr_reduced_text(finding)
        case FindingKind.no_validation:
            return (
                "There is no validation loss, so overfitting and underfitting cannot be judged; "
                "set a validation split to see them."
            )
        case FindingKind.healthy:
            gap = finding.gap
            side = "above" if gap is not None and gap >= 0 else "below"
            gap_text = (
                ""
                if gap is None
                else f", train accuracy {abs(gap) * 100:.1f} points {side} validation"
            )
            return f"Training and validation curves look healthy{gap_text}."


HEADLINES = {
    FindingKind.collapsed: "The model learned nothing: validation accuracy stayed at chance.",
    FindingKind.diverged: "Training diverged (a loss became NaN or infinite).",
    FindingKind.overfitting: "The model overfits from epoch {epoch}: validation loss stopped "
    "improving while training loss kept falling.",
    FindingKind.unstable: "Training is unstable: validation loss jumped more than once.",
    FindingKind.underfitting: "The model underfits: training accuracy stayed low.",
    FindingKind.healthy: "Training looks healthy.",
    FindingKind.no_validation: "Without validation metrics the curves cannot be judged.",
}


def _headline(finding: Finding) -> str:
    if finding.kind == FindingKind.collapsed and finding.label is not None:
        return (
            f"The model collapsed: it predicted '{finding.label}' for "
            f"{_share(finding.share)} of the test images."
        )
    return HEADLINES[finding.kind].format(epoch=finding.epoch)


def verdict_text(diagnosis: Diagnosis) -> str:
    """The run in one or two sentences: its headline finding, then either that more epochs
    would help or its best epoch. A run still training reads "So far: ..."."""
    top = diagnosis.headline
    if top is None:
        return "No epochs yet."
    first = _headline(top)
    if diagnosis.has(FindingKind.still_improving) and top.kind != FindingKind.overfitting:
        text = f"{first} Validation loss was still falling at the end: more epochs would help."
    elif diagnosis.best_epoch is None:
        text = first
    else:
        accuracy = diagnosis.best_val_accuracy
        shown = "" if accuracy is None else f", validation accuracy {accuracy:.1%}"
        text = (
            f"{first} Best epoch: {diagnosis.best_epoch} "
            f"(validation loss {diagnosis.best_val_loss:.3f}{shown})."
        )
    return f"So far: {text[0].lower()}{text[1:]}" if diagnosis.in_progress else text


class FindingPublic(BaseModel):
    kind: FindingKind
    severity: Severity
    epoch: int | None
    message: str


class DiagnosisPublic(BaseModel):
    """A run's curves read in words, with the epochs the charts mark."""

    verdict: str
    best_epoch: int | None
    best_val_accuracy: float | None
    phase_boundary: int | None
    lr_reductions: list[int]
    early_stop_epoch: int | None = Field(description="The last epoch, when training ended early")
    generalization_gap: list[tuple[int, float]] = Field(
        description="[epoch, train accuracy - validation accuracy] pairs"
    )
    findings: list[FindingPublic]


def diagnosis_public(diagnosis: Diagnosis, epochs: int) -> DiagnosisPublic:
    """``epochs``: how many the run has recorded (where an early stop is marked)."""
    return DiagnosisPublic(
        verdict=verdict_text(diagnosis),
        best_epoch=diagnosis.best_epoch,
        best_val_accuracy=diagnosis.best_val_accuracy,
        phase_boundary=diagnosis.phase_boundary,
        lr_reductions=diagnosis.lr_reductions,
        early_stop_epoch=epochs if diagnosis.has(FindingKind.early_stopped) else None,
        generalization_gap=diagnosis.generalization_gap,
        findings=[
            FindingPublic(kind=f.kind, severity=f.severity, epoch=f.epoch, message=finding_text(f))
            for f in diagnosis.findings
        ],
    )


# --- a paired test in words ---------------------------------------------------------------

VERY_SMALL_P = 0.001
SMALLEST_SHOWN_P = 0.0001


def _format_p(p_value: float) -> str:
    """Two significant figures, never scientific notation: "p = 0.047", "p = 0.0003"."""
    if p_value < SMALLEST_SHOWN_P:
        return f"p < {SMALLEST_SHOWN_P:g}"
    decimals = max(2, 1 - math.floor(math.log10(p_value)))
    text = f"{p_value:.{decimals}f}".rstrip("0").rstrip(".")
    return f"p = {text}"


def _difference_sentence(name_a: str, name_b: str, n: int, result: BootstrapResult) -> str:
    """Said from the leader's side, so the interval reads in the same direction as the claim."""
    points = result.difference * 100
    low, high = result.low * 100, result.high * 100
    if points < 0:
        name_a, name_b, points, low, high = name_b, name_a, -points, -high, -low
    ci = f"{result.confidence:.0%} CI {low:.1f} to {high:.1f} points"
    if low <= 0 <= high:
        ci += ", which includes no difference"
    images = f"on the same {n:,} test images"
    if points == 0:
        return f"{name_a} and {name_b} are equally accurate {images} ({ci})."
    size = f"{points:.1f} points" if points >= 0.05 else "less than 0.1 points"
    return f"{name_b} is {size} more accurate than {name_a} {images} ({ci})."


def _test_sentence(p_value: float, alpha: float, ci_includes_zero: bool) -> str:
    verdict = (
        "the difference is very unlikely to be chance"
        if p_value < min(alpha, VERY_SMALL_P)
        else "the difference is unlikely to be chance"
        if p_value < alpha
        else "this difference could well be chance"
    )
    if (p_value < alpha) == ci_includes_zero:
        verdict += "; the test and the interval disagree, so treat it as borderline"
    return f"McNemar's test: {_format_p(p_value)}; {verdict}."


def describe(
    name_a: str,
    name_b: str,
    mcnemar: McNemarResult,
    bootstrap: BootstrapResult,
    alpha: float = 0.05,
) -> str:
    """Two sentences for the compare page: how big the difference is, with its interval, and
    whether McNemar's test says it could be chance at level ``alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha}")
    expected = (mcnemar.only_b_correct - mcnemar.only_a_correct) / mcnemar.n
    if not math.isclose(bootstrap.difference, expected, abs_tol=1e-9):
        raise ValueError(
            "the McNemar and bootstrap results describe different data: the bootstrap "
            f"difference is {bootstrap.difference:.4f}, the McNemar table gives {expected:.4f}"
        )
    includes_zero = bootstrap.low <= 0 <= bootstrap.high
    return " ".join(
        [
            _difference_sentence(name_a, name_b, mcnemar.n, bootstrap),
            _test_sentence(mcnemar.p_value, alpha, includes_zero),
        ]
    )


# --- a comparison in words -----------------------------------------------------------------


def _listing(caveat: Caveat, names: Mapping[int, str]) -> str:
    return "; ".join(f"{names[i]}: {value}" for i, value in caveat.values.items())


def caveat_text(caveat: Caveat, names: Mapping[int, str]) -> str:
    """One warning at the top of the compare page; ``names`` by experiment id."""
    who = ", ".join(names[i] for i in caveat.values)
    match caveat.kind:
        case CaveatKind.test_sizes:
            return f"Different test-set sizes: {_listing(caveat, names)}."
        case CaveatKind.test_images:
            return (
                "Same test-set size but different test images (another dataset, or an older "
                "run whose test subset followed its seed)."
            )
        case CaveatKind.imported:
            return (
                f"Imported reports ({who}) carry no per-image predictions: which test images "
                "they used cannot be checked."
            )
        case CaveatKind.seeds | CaveatKind.datasets:
            return f"Different {caveat.kind.value}: {_listing(caveat, names)}."
        case CaveatKind.test_time_augmentation:
            return (
                f"Different test-time augmentation: {_listing(caveat, names)}. Their test "
                "accuracies are not measured alike ("
                + "; ".join(f"{name}: {text}" for name, text in TEST_TIME_MEANINGS.items())
                + ")."
            )
        case CaveatKind.unfinished:
            return f"Still training: {who}; their numbers will change."


UNTESTED_REASONS = {
    Untested.unevaluated: "no evaluation yet",
    Untested.baseline_without_predictions: "the baseline has no per-image predictions",
    Untested.imported: "imported reports carry no per-image predictions",
    Untested.without_predictions: "no per-image predictions were kept",
    Untested.other_images: "not scored on the same test images as the baseline",
}


def pairing_text(pairing: Pairing, names: Mapping[int, str]) -> str:
    """What the paired test says, or why none could run."""
    if pairing.mcnemar is not None and pairing.bootstrap is not None:
        return describe(names[pairing.a], names[pairing.b], pairing.mcnemar, pairing.bootstrap)
    if pairing.unevaluated:
        verb = "have" if len(pairing.unevaluated) > 1 else "has"
        listed = " and ".join(names[i] for i in pairing.unevaluated)
        return f"{listed} {verb} no evaluation yet, so no paired test can be run."
    why = UNTESTED_REASONS[pairing.untested or Untested.other_images]
    return f"No paired test of {names[pairing.b]} against {names[pairing.a]}: {why}."


def untested_text(untested: Mapping[int, Untested], names: Mapping[int, str]) -> str:
    """The one line for every run the baseline could not be tested against, grouped by
    reason: "No paired test for X, Y: imported reports carry no per-image predictions." """
    by_reason: dict[Untested, list[str]] = {}
    for experiment_id, reason in untested.items():
        by_reason.setdefault(reason, []).append(names[experiment_id])
    parts = [
        f"{', '.join(by_reason[reason])}: {UNTESTED_REASONS[reason]}"
        for reason in Untested
        if reason in by_reason
    ]
    return f"No paired test for {'; '.join(parts)}." if parts else ""


class SummaryPublic(BaseModel):
    """One compared experiment's headline figures, and its colour on every chart."""

    id: int
    name: str
    model: str
    status: Status
    color: str
    test_accuracy: float | None
    macro_f1: float | None
    parameters: int | None
    epochs: int
    training_seconds: float | None = Field(description="Time inside epochs, the sum of theirs")
    seconds_per_epoch: float | None
    images_per_second: float | None
    test_size: int | None
    test_time_augmentation: str | None = Field(
        description='How the test set was predicted: "none", "flip" or "flip_translate"; '
        "null before evaluation"
    )
    time_to_accuracy: list[TimeToAccuracyPublic]

    @property
    def imported(self) -> bool:
        return self.status is Status.imported


class ReportRowPublic(BaseModel):
    """A row of the merged report (a class, ``accuracy``, an average), by experiment id."""

    row: str
    values: dict[int, MetricValues]
    best: dict[str, list[int]] = Field(description="Per metric, the ids with the best value")
    delta: dict[int, MetricValues] = Field(description="Differences from the baseline")


class HyperparametersPublic(BaseModel):
    all: dict[str, dict[int, Any]] = Field(description="Each setting's value by experiment id")
    differing: list[str] = Field(description="Settings that differ among trained experiments")


class McNemarPublic(BaseModel):
    """The figures of ``McNemarResult`` the page and the API show, read from it by name."""

    model_config = ConfigDict(from_attributes=True)

    p_value: float
    statistic: float
    method: Literal["exact", "chi2"]
    only_a_correct: int
    only_b_correct: int
    n: int


class BootstrapPublic(BaseModel):
    """The accuracy difference b - a and its bootstrap confidence interval, as fractions."""

    model_config = ConfigDict(from_attributes=True)

    difference: float
    low: float
    high: float
    confidence: float


def _absent(value: object) -> bool:
    return value is None


class PairingPublic(BaseModel):
    """Experiment ``b`` against the baseline ``a``; ``mcnemar`` and ``bootstrap`` are left
    out when the two were not scored on the same test images."""

    a: int
    b: int
    mcnemar: McNemarPublic | None = Field(default=None, exclude_if=_absent)
    bootstrap: BootstrapPublic | None = Field(default=None, exclude_if=_absent)
    untested: Untested | None = Field(
        default=None, exclude_if=_absent, description="Why no paired test ran, when none did"
    )
    text: str


class ConfusionMatrixPublic(BaseModel):
    classes: list[str]
    matrix: list[list[int]]


class ComparisonPublic(BaseModel):
    """What the compare page shows: summaries, per-class table with best and deltas,
    hyperparameters, fair-comparison warnings, significance, diagnostics, curves and
    confusion matrices; experiments in the order given, the rest keyed by experiment id."""

    baseline_id: int
    experiments: list[SummaryPublic]
    warnings: list[str]
    per_class: list[ReportRowPublic]
    hyperparameters: HyperparametersPublic
    significance: list[PairingPublic]
    diagnostics: dict[int, DiagnosisPublic]
    curves: dict[int, list[CurvePoint]]
    confusion_matrices: dict[int, ConfusionMatrixPublic]


def _summary(summary: Summary, color: str) -> SummaryPublic:
    return SummaryPublic(**dataclasses.asdict(summary), color=color)


def _pairing(pairing: Pairing, names: Mapping[int, str]) -> PairingPublic:
    test, interval = pairing.mcnemar, pairing.bootstrap
    return PairingPublic(
        a=pairing.a,
        b=pairing.b,
        mcnemar=None if test is None else McNemarPublic.model_validate(test),
        bootstrap=None if interval is None else BootstrapPublic.model_validate(interval),
        untested=pairing.untested,
        text=pairing_text(pairing, names),
    )  # fmt: skip


def comparison_public(comparison: Comparison) -> ComparisonPublic:
    """The comparison with its colours and sentences: what the page, the API and the CSV show.
    Its parts are built (and checked) one by one; the whole is assembled unchecked, since
    checking 200 curve points per experiment again, already typed, cost milliseconds."""
    names = {s.id: s.name for s in comparison.experiments}
    histories = comparison.histories
    return ComparisonPublic.model_construct(
        baseline_id=comparison.baseline_id,
        experiments=[_summary(s, experiment_color(s.id)) for s in comparison.experiments],
        warnings=[caveat_text(caveat, names) for caveat in comparison.caveats],
        per_class=[
            ReportRowPublic(row=r.row, values=r.values, best=r.best, delta=r.delta)
            for r in comparison.per_class
        ],
        hyperparameters=HyperparametersPublic(
            all=comparison.hyperparameters.table, differing=comparison.hyperparameters.differing
        ),
        significance=[_pairing(pairing, names) for pairing in comparison.significance],
        diagnostics={i: diagnosis_public(h.diagnosis, h.epochs) for i, h in histories.items()},
        curves={i: h.curve for i, h in histories.items()},
        confusion_matrices={
            i: ConfusionMatrixPublic(classes=m.classes, matrix=m.matrix)
            for i, m in comparison.confusion_matrices.items()
        },
    )
