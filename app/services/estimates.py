"""Time before launch (#15): how long a spec will train on each kind of worker that is online.

A worker kind is a device string (``GPU: NVIDIA H200``, ``CPU (16 cores)``); workers with the
same one are taken to be alike. Each kind is measured by the epochs its finished runs
recorded, never by a benchmark of its own:

- **rate**: an epoch's training images per second times what one image costs that model at
  that image size (``app.core.costs.training_cost``) is the worker's multiply-accumulates per
  second; over the new spec's cost per image it is the spec's images per second. For runs of
  the same model this is plain scaling by pixels, ``(past size / size) ** 2``.
- **overhead**: an epoch's seconds over its training seconds (``fit images / images per
  second``) covers validation and the callbacks.

Runs of the same model come first (the ``RECENT_RUNS`` newest); without them, other models'
runs on that worker, scaled by the cost table. Each run's first epoch of a phase, which also
builds and traces the graph, is left out when the phase has more; the median of the rest,
each epoch weighted by the images it trained, stands for the worker. The weights matter: a
run of a few hundred images spends most of an epoch on fixed costs (building the datasets,
BatchNorm recalibration, callbacks), so its rate is low and its overhead high, and one such
run beside a full-size one would otherwise make a full-size estimate several times too long.
With no runs on a worker there is no figure, and the estimate says how to get one. Figures
are what a run takes when nothing stops it early; queueing, loading the data and the final
evaluation are not in them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.core import crud
from app.core.costs import trained_side, training_cost
from app.core.hyperparameters import (
    CIFAR10_TRAIN_IMAGES,
    FastCnnHyperparameters,
    TrainingHyperparameters,
    TransferHyperparameters,
)
from app.core.models import Experiment
from app.core.presets import PRESETS
from app.core.schemas import ExperimentSpec, SpecError, parse_spec
from app.services.workers import online as online_workers

RECENT_RUNS = 5
"""Runs a figure is measured from: recent enough to be the worker as it is today."""

HISTORY_LIMIT = 50
"""Finished runs read per worker kind when looking for runs of the model being launched."""

SMALL_RUNS_FACTOR = 10
"""Runs this many times smaller than the launch's training set get a caveat: their fixed
per-epoch costs are a large share of their time."""

CPU_HOURS_WARNING_SECONDS = 3600.0
"""Above this, a launch on CPU-only workers is worth a second thought."""

QUICK_PRESET = PRESETS["quick-custom-cnn"]

PHASE_WORDS = {"crops": " on crops", "train": "", "fine_tune": " fine-tuning"}
"""How the summary names each phase's epochs, after their time."""


class PhaseTime(BaseModel):
    """One stretch of epochs alike in cost: ``train``, after ``crops`` for a fast run that
    starts on crops, and ``fine_tune`` for a transfer model that has one."""

    phase: str
    epochs: int
    epoch_seconds: float


class DeviceTime(BaseModel):
    """The estimate on one kind of worker; no figures when nothing has run there yet."""

    device: str
    workers: int = Field(description="Online workers with this device.")
    has_gpu: bool
    basis: str = Field(description="What the figures come from, or how to get them.")
    epoch_seconds: float | None = Field(description="Seconds per epoch of the first phase.")
    total_seconds: float | None = Field(description="One run, every planned epoch.")
    sweep_seconds: float | None = Field(
        description="All trials, as many at once as max_parallel and these workers allow."
    )
    phases: list[PhaseTime]
    summary: str = Field(description="The figures in words, for the launch form.")


class TimeEstimatePublic(BaseModel):
    """How long a spec would train, per kind of online worker, before it is launched."""

    model: str
    planned_epochs: int
    train_images: int = Field(description="Images each epoch trains on (after validation).")
    trials: int
    devices: list[DeviceTime]
    note: str = Field(description="What the figures leave out, or why there are none.")
    warning: str | None = Field(
        description="Set when every online worker is CPU-only and the run would take more "
        "than an hour."
    )


@dataclass(frozen=True)
class _Sample:
    """One timed epoch: the worker's rate (multiply-accumulates per second) and overhead,
    and the images it trained on (its weight)."""

    rate: float
    overhead: float
    images: int


@dataclass(frozen=True)
class _Phase:
    name: str
    epochs: int
    frozen_base: bool
    side: int


def fit_images(hp: TrainingHyperparameters) -> int:
    """Images an epoch trains on: the subset, less the stratified validation split."""
    return max(round((hp.train_size or CIFAR10_TRAIN_IMAGES) * (1 - hp.validation_split)), 1)


def _phases(spec: ExperimentSpec) -> list[_Phase]:
    """As ``worker/training.py`` runs them: an ImageNet base is frozen for the first phase; a
    fast run's crop epochs come before its full-size ones."""
    hp = spec.hyperparameters
    if isinstance(hp, FastCnnHyperparameters) and hp.crop_epochs:
        return [
            _Phase("crops", hp.crop_epochs, frozen_base=False, side=hp.crop_size),
            _Phase("train", hp.epochs - hp.crop_epochs, frozen_base=False, side=hp.image_size),
        ]
    if not isinstance(hp, TransferHyperparameters):
        return [_Phase("train", hp.epochs, frozen_base=False, side=hp.image_size)]
    frozen = hp.weights == "imagenet"
    phases = [_Phase("train", hp.epochs, frozen_base=frozen, side=hp.image_size)]
    if hp.fine_tune:
        phases.append(
            _Phase("fine_tune", hp.fine_tune_epochs, frozen_base=False, side=hp.image_size)
        )
    return phases


def _samples(run: Experiment, spec: ExperimentSpec) -> list[_Sample]:
    """The run's timed epochs as samples, each phase's warm-up epoch left out if it has more.
    Epochs on crops and at full size cost differently, so each is priced at its own size."""
    hp = spec.hyperparameters
    frozen = {phase.name: phase.frozen_base for phase in _phases(spec)}
    by_phase: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for row in run.epochs:  # in epoch order
        if row.images_per_second and row.seconds:
            key = (row.phase, trained_side(hp, row.epoch))
            by_phase.setdefault(key, []).append((row.images_per_second, row.seconds))
    samples = []
    for (phase, side), timed in by_phase.items():
        cost = training_cost(spec.model, hp, frozen_base=frozen.get(phase, False), side=side)
        for images_per_second, seconds in timed[1:] or timed:
            overhead = seconds * images_per_second / fit_images(hp)
            samples.append(
                _Sample(
                    rate=images_per_second * cost,
                    overhead=max(overhead, 1.0),
                    images=fit_images(hp),
                )
            )
    return samples


@dataclass(frozen=True)
class _Measurement:
    samples: list[_Sample]
    runs: int
    models: list[str]
    same_model: bool


def _measure(runs: Sequence[Experiment], model: str) -> _Measurement:
    """Samples from the newest runs of ``model``, else from the newest runs of any model."""
    parsed: list[tuple[Experiment, ExperimentSpec]] = []
    for run in runs:
        try:
            parsed.append((run, parse_spec(run.spec)))
        except SpecError:
            continue  # a spec stored by an older version that no longer validates
    same = [pair for pair in parsed if pair[0].model == model][:RECENT_RUNS]
    chosen = same or parsed[:RECENT_RUNS]
    return _Measurement(
        samples=[sample for run, spec in chosen for sample in _samples(run, spec)],
        runs=len(chosen),
        models=sorted({run.model for run, _ in chosen}),
        same_model=bool(same),
    )


def weighted_median(values: Sequence[float], weights: Sequence[int]) -> float:
    """The value at half the total weight (the lower one on an exact tie): the median of the
    samples each repeated ``weight`` times, without repeating them."""
    pairs = sorted(zip(values, weights, strict=True))
    half = sum(weights) / 2
    running = 0
    for value, weight in pairs:
        running += weight
        if running >= half:
            return value
    raise ValueError("no samples")


def about(seconds: float) -> str:
    """A rough figure in rough words: 40 s, 12 min, 1.5 h, 6 h."""
    if seconds < 90:
        return f"{max(round(seconds), 1)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 10 else f"{round(hours)} h"


def _estimate_device(
    session: Session,
    spec: ExperimentSpec,
    device: str,
    workers: int,
    trials: int,
    max_parallel: int | None,
) -> DeviceTime:
    runs = crud.timed_runs(session=session, device=device, limit=HISTORY_LIMIT)
    measured = _measure(runs, spec.model)
    has_gpu = "GPU" in device.upper()  # describe_device: "GPU: <name>" or "CPU (n cores)"
    if not measured.samples:
        basis = (
            f"No estimate yet: nothing has finished on {device}. Launch the preset "
            f"“{QUICK_PRESET.title}” (a minute or two) to measure this worker."
        )
        return DeviceTime(
            device=device, workers=workers, has_gpu=has_gpu, basis=basis, epoch_seconds=None,
            total_seconds=None, sweep_seconds=None, phases=[], summary=basis,
        )  # fmt: skip
    weights = [s.images for s in measured.samples]
    rate = weighted_median([s.rate for s in measured.samples], weights)
    overhead = weighted_median([s.overhead for s in measured.samples], weights)
    hp = spec.hyperparameters
    seconds_per_cost = overhead / rate  # an epoch's seconds per multiply-accumulate trained
    phases = [
        PhaseTime(
            phase=phase.name,
            epochs=phase.epochs,
            epoch_seconds=fit_images(hp)
            * training_cost(spec.model, hp, frozen_base=phase.frozen_base, side=phase.side)
            * seconds_per_cost,
        )
        for phase in _phases(spec)
    ]
    total = sum(p.epochs * p.epoch_seconds for p in phases)
    counted = f"{measured.runs} past run{'' if measured.runs == 1 else 's'}"
    if measured.same_model:
        source = f"from {counted} of {spec.model}"
    else:
        source = f"scaled by cost per image from {counted} of {', '.join(measured.models)}"
    largest = max(weights)
    if largest * SMALL_RUNS_FACTOR < fit_images(hp):
        source += (
            f" of at most {largest:,} training images, so likely too long: small runs spend "
            "more of each epoch on fixed costs"
        )
    parallel = min(max_parallel or trials, workers, trials)
    sweep = total * math.ceil(trials / parallel) if trials > 1 else None
    per_epoch = ", then ".join(
        f"{about(p.epoch_seconds)} per epoch{PHASE_WORDS[p.phase]}" for p in phases if p.epochs
    )
    summary = f"{device}: about {per_epoch}, {about(total)} for "
    summary += f"{hp.planned_epochs} epoch{'' if hp.planned_epochs == 1 else 's'}"
    if sweep is not None:
        summary += f"; {about(sweep)} for the {trials} trials, {parallel} at a time"
    return DeviceTime(
        device=device, workers=workers, has_gpu=has_gpu, basis=f"{source} on {device}",
        epoch_seconds=phases[0].epoch_seconds, total_seconds=total, sweep_seconds=sweep,
        phases=phases, summary=f"{summary} ({source})",
    )  # fmt: skip


def estimate(
    session: Session, spec: ExperimentSpec, *, trials: int = 1, max_parallel: int | None = None
) -> TimeEstimatePublic:
    """The spec's time on each kind of online worker; ``trials`` > 1 for a sweep of this spec
    (its varied settings aside), at most ``max_parallel`` trials at once."""
    online = online_workers(session)
    kinds: dict[str, int] = {}
    for worker in online:
        kinds[worker.device] = kinds.get(worker.device, 0) + 1
    devices = [
        _estimate_device(session, spec, device, count, trials, max_parallel)
        for device, count in sorted(kinds.items())
    ]
    hp = spec.hyperparameters
    if not devices:
        note = "No worker is online: the run waits in the queue until one starts."
    else:
        note = "Time in the epochs, every planned epoch"
        note += "; early stopping may end it sooner." if hp.early_stopping else "."
        if trials > 1:
            note += " A sweep's figures are for the base settings; varied ones change them."
    return TimeEstimatePublic(
        model=spec.model, planned_epochs=hp.planned_epochs, train_images=fit_images(hp),
        trials=trials, devices=devices, note=note, warning=_cpu_warning(devices),
    )  # fmt: skip


def _cpu_warning(devices: list[DeviceTime]) -> str | None:
    """Hours on CPU-only workers: said before launch, with the ways to make it shorter."""
    if not devices or any(d.has_gpu for d in devices):
        return None
    figures = [d.sweep_seconds or d.total_seconds for d in devices]
    known = [f for f in figures if f is not None]
    if not known or min(known) <= CPU_HOURS_WARNING_SECONDS:
        return None
    where = "the CPU worker" if sum(d.workers for d in devices) == 1 else "the CPU workers"
    return (
        f"About {about(min(known))} on {where}: consider a quick preset, a smaller "
        "train_size, or a GPU worker."
    )
