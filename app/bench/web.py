"""`cifarlab bench web`: the dashboard under load, on SQLite and on PostgreSQL.

``fill`` writes a realistic database quickly (bulk inserts): experiments of a few models with
specs validated by ``parse_spec``, per-epoch curves, evaluations with a confusion matrix, a
scikit-learn-shaped report and per-image predictions; optionally one sweep (``sweep_trials``:
a row in ``sweeps`` and its trials, their drawn hyperparameters in their specs, ten seeds
each, some pruned) whose page and seed groups are measured too. ``run`` serves the real app
with uvicorn on loopback, sends concurrent readers at each endpoint while a separate process
records epochs as a worker does, then checks that no epoch row was lost and that nothing met
"database is locked". ``report`` prints the figures, the last line one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import queue
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from app.core.db import make_engine
from app.core.models import EpochMetric, Evaluation, Experiment, Status, Sweep, utcnow
from app.core.schemas import ExperimentSpec, parse_spec
from app.core.sweeps import SweepSpec, Trial, expand, parse_sweep
from app.embedded_redis import free_port, redis_url, start_redis
from app.migrate import upgrade

logger = logging.getLogger(__name__)

DATABASES = ("sqlite", "postgresql")
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
TEST_IMAGES = 10_000
TRAIN_IMAGES = 40_000  # CIFAR-10's 50,000 less the default 20 % validation split
# How much harder (negative) or easier each class is than the model's mean accuracy, and the
# class each one is most often mistaken for: cats for dogs, trucks for cars, ships for planes.
CLASS_OFFSETS = np.array([0.02, 0.05, -0.06, -0.12, -0.03, -0.07, 0.03, 0.02, 0.04, 0.04])
MISTAKEN_FOR = np.array([8, 9, 4, 5, 7, 3, 2, 4, 0, 1])
FINGERPRINT = "cifarlabbench0000000000000000000"  # one test set: every pair can be tested
RUNNING_PLANNED_EPOCHS = 500  # running experiments are long, so the writer never runs out
STARTED_ATTEMPT = 1  # every started experiment is on its first attempt: the writer's lease
COMPARED = 8
SWEEP_SEEDS = 10  # each configuration of the bench's sweep runs with ten seeds
GROUPS_COMPARED = 2  # compare with group=seed: two configurations' seed groups
MIN_SWEEP_TRIALS = GROUPS_COMPARED * SWEEP_SEEDS
EVALUATION_BATCH = 50  # evaluation rows per INSERT: per-image results are 60 KB each
EPOCH_BATCH = 1000  # experiments whose epoch rows go in one INSERT: 50,000 rows at 50 epochs
EPOCH_METRICS = EpochMetric.metadata.tables[EpochMetric.__tablename__]


# --- the experiments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A model as the bench launches it: a base spec, what varies, and how it trains."""

    model: str
    label: str
    hyperparameters: dict[str, Any]
    varied: dict[str, tuple[Any, ...]]
    parameters: int
    seconds_per_epoch: float
    val_accuracy: float  # typical final validation accuracy
    layers: tuple[str, ...]  # top-level layer types, as the worker records them
    fine_tune: bool = False


_TRANSFER_LAYERS = (
    "InputLayer", "Resizing", "Functional", "GlobalAveragePooling2D", "Dense", "Dropout",
    "Dense", "Dense",
)  # fmt: skip
FAMILIES = (
    Family(
        "custom_cnn", "cnn", {},
        {"learning_rate": (1e-3, 5e-4, 2e-3), "batch_size": (64, 128, 256),
         "dropout_rate": (0.25, 0.3, 0.5), "batch_norm": (False, True)},
        550_570, 95.0, 0.80,
        ("InputLayer", "Rescaling", *("Conv2D", "Activation", "Conv2D", "Activation",
         "MaxPooling2D", "Dropout") * 3, "Flatten", "Dense", "Dropout", "Dense"),
    ),
    Family(
        "residual_cnn", "resnet", {},
        {"learning_rate": (1e-3, 2e-3), "width": (16, 32, 64), "label_smoothing": (0.0, 0.1)},
        1_198_538, 210.0, 0.90,
        ("InputLayer", "Rescaling", *("Conv2D", "BatchNormalization", "Activation", "Add") * 6,
         "GlobalAveragePooling2D", "Dropout", "Dense"),
    ),
    Family(
        "efficientnet_b2", "effnet-b2", {"image_size": 128},
        {"learning_rate": (1e-3, 3e-4), "head_dropout_rate": (0.2, 0.3), "batch_size": (64, 128)},
        8_181_035, 420.0, 0.92, _TRANSFER_LAYERS, fine_tune=True,
    ),
    Family(
        "mobilenet_v2", "mobilenet", {"image_size": 96},
        {"learning_rate": (1e-3, 5e-4), "batch_size": (64, 128)},
        2_627_658, 150.0, 0.86, _TRANSFER_LAYERS,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Filled:
    """What ``fill`` wrote; ``compare_ids`` are the succeeded experiments with per-image
    predictions, which the compare benchmark draws from."""

    experiment_ids: list[int]
    running_ids: list[int]
    compare_ids: list[int]
    epoch_rows: int
    evaluations: int
    seconds: float
    sweep_id: int | None = None
    # The sweep's trials by configuration (each one id per seed), the most succeeded first.
    seed_groups: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class _Evaluated:
    """``predictions`` and ``confidences``: None for an evaluation stored without per-image
    results (10,000 experiments' would take gigabytes of memory while filling)."""

    predictions: npt.NDArray[np.int64] | None
    confidences: npt.NDArray[np.float64] | None
    matrix: list[list[int]]
    report: dict[str, Any]


@dataclass(frozen=True)
class _Planned:
    row: dict[str, Any]
    curves: dict[str, list[Any]]
    evaluation: _Evaluated | None


def shared_test_labels(seed: int = 0) -> npt.NDArray[np.int64]:
    """The shared test set: 1,000 images of each class, in a seeded order."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(CLASSES)), 1000))


def _statuses(count: int, running: int, rng: np.random.Generator) -> list[Status]:
    """Mostly succeeded, some failed or cancelled; the newest are running, then queued."""
    queued = count // 100
    older = count - queued - running
    draws = rng.random(older)
    finished = [
        Status.failed if d < 0.05 else Status.cancelled if d < 0.08 else Status.succeeded
        for d in draws
    ]
    return finished + [Status.running] * running + [Status.queued] * queued


def _spec(index: int, family: Family, planned: int, rng: np.random.Generator) -> ExperimentSpec:
    hyperparameters = dict(family.hyperparameters)
    for key, options in family.varied.items():
        hyperparameters[key] = options[int(rng.integers(len(options)))]
    hyperparameters["seed"] = index % 5
    if family.fine_tune and planned >= 2:
        first = max(1, planned // 5)
        hyperparameters |= {"epochs": first, "fine_tune": True, "fine_tune_epochs": planned - first}
    else:
        hyperparameters["epochs"] = planned
    name = (
        f"{family.label} lr={hyperparameters['learning_rate']:g} "
        f"bs={hyperparameters.get('batch_size', 128)} #{index + 1}"
    )
    tags = ["bench", family.label, *(["baseline"] if index % 10 == 0 else [])]
    return parse_spec(
        {"name": name, "model": family.model, "tags": tags, "hyperparameters": hyperparameters}
    )


def _layers(family: Family) -> list[dict[str, Any]]:
    weighted = [kind for kind in family.layers if kind in ("Conv2D", "Dense", "Functional")]
    share = family.parameters // max(1, len(weighted))
    counts: dict[str, int] = {}
    layers = []
    for kind in family.layers:
        counts[kind] = counts.get(kind, 0) + 1
        layers.append({
            "name": f"{kind.lower()}_{counts[kind]}", "type": kind,
            "parameters": share if kind in weighted else 0, "trainable": kind != "Functional",
        })  # fmt: skip
    return layers


def _curves(
    rng: np.random.Generator, family: Family, count: int, planned: int, spec: ExperimentSpec
) -> dict[str, list[Any]]:
    """Per-epoch metrics shaped like real training: fast rise, plateau, validation loss that
    turns up once the model overfits, learning-rate halvings on plateaus."""
    t = np.arange(1, count + 1, dtype=float)
    pace = max(planned, 2) / rng.uniform(4.0, 8.0)
    top = float(np.clip(family.val_accuracy + rng.normal(0, 0.02), 0.5, 0.97))
    train_top = min(0.995, top + rng.uniform(0.04, 0.1))
    accuracy = train_top - (train_top - 0.3) * np.exp(-t / pace) + rng.normal(0, 0.004, count)
    val_accuracy = top - (top - 0.35) * np.exp(-t / pace) + rng.normal(0, 0.006, count)
    accuracy, val_accuracy = np.clip(accuracy, 0.05, 0.999), np.clip(val_accuracy, 0.05, 0.999)
    turn = pace * rng.uniform(2.0, 3.5)
    overfit = np.maximum(0.0, t - turn)
    loss = -np.log(accuracy) * 1.1 + np.abs(rng.normal(0, 0.01, count))
    val_loss = -np.log(val_accuracy) * 1.2 + 0.012 * overfit + np.abs(rng.normal(0, 0.01, count))
    hp = spec.hyperparameters
    learning_rate = hp.learning_rate * 0.5 ** (overfit // max(2.0, pace / 2))
    boundary = hp.epochs if getattr(hp, "fine_tune", False) else count
    learning_rate[boundary:] = getattr(hp, "fine_tune_learning_rate", hp.learning_rate)
    seconds = family.seconds_per_epoch * rng.uniform(0.9, 1.1, count)
    seconds[:1] *= 1.6  # the first epoch pays for tracing
    return {
        "epoch": [int(e) for e in t],
        "phase": ["train" if e <= boundary else "fine_tune" for e in t],
        "loss": loss.tolist(),
        "accuracy": accuracy.tolist(),
        "val_loss": val_loss.tolist(),
        "val_accuracy": val_accuracy.tolist(),
        "learning_rate": learning_rate.tolist(),
        "seconds": seconds.tolist(),
        "images_per_second": (TRAIN_IMAGES / seconds).tolist(),
    }


def classification_report(matrix: npt.NDArray[np.int64]) -> dict[str, Any]:
    """scikit-learn's ``classification_report(output_dict=True)``, from a confusion matrix."""
    hits = np.diag(matrix).astype(float)
    support, predicted = matrix.sum(axis=1).astype(float), matrix.sum(axis=0).astype(float)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    columns = {"precision": precision, "recall": recall, "f1-score": f1}
    report: dict[str, Any] = {
        name: {**{key: float(values[i]) for key, values in columns.items()},
               "support": float(support[i])}
        for i, name in enumerate(CLASSES)
    }  # fmt: skip
    report["accuracy"] = float(hits.sum() / support.sum())
    for average, weights in (("macro avg", None), ("weighted avg", support)):
        report[average] = {
            **{key: float(np.average(values, weights=weights)) for key, values in columns.items()},
            "support": float(support.sum()),
        }
    return report


def _evaluate(
    rng: np.random.Generator, labels: npt.NDArray[np.int64], accuracy: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per-image predictions and confidences for a model of about this accuracy: confident
    when right, less so when wrong."""
    per_class = np.clip(accuracy + CLASS_OFFSETS + rng.normal(0, 0.015, len(CLASSES)), 0.2, 0.995)
    correct = rng.random(len(labels)) < per_class[labels]
    anywhere = (labels + rng.integers(1, len(CLASSES), len(labels))) % len(CLASSES)
    wrong = np.where(rng.random(len(labels)) < 0.45, MISTAKEN_FOR[labels], anywhere)
    predictions = np.where(correct, labels, wrong)
    spread = rng.random(len(labels))
    confidences = np.where(correct, 1 - 0.6 * spread**3, 0.2 + 0.6 * spread).round(4)
    return predictions, confidences


def _plan(
    index: int,
    count: int,
    status: Status,
    epochs: int,
    labels: npt.NDArray[np.int64],
    rng: np.random.Generator,
    *,
    per_image: bool = True,
) -> _Planned:
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    planned = RUNNING_PLANNED_EPOCHS if status == Status.running else epochs
    spec = _spec(index, family, planned, rng)
    created = utcnow() - timedelta(minutes=40 * (count - index))
    return _planned(index, status, epochs, labels, rng, family, spec, created, per_image=per_image)


def _planned(
    index: int,
    status: Status,
    epochs: int,
    labels: npt.NDArray[np.int64],
    rng: np.random.Generator,
    family: Family,
    spec: ExperimentSpec,
    created: datetime,
    *,
    sweep_id: int | None = None,
    per_image: bool = True,
) -> _Planned:
    """One experiment's row, curves and evaluation (with per-image results if
    ``per_image``): ``status`` says how far it got."""
    planned = spec.hyperparameters.planned_epochs
    done = {
        Status.succeeded: epochs,
        Status.running: epochs // 2,
        Status.queued: 0,
    }.get(status, int(rng.integers(1, max(2, epochs))))
    now = utcnow()
    started = None if status == Status.queued else created + timedelta(minutes=3)
    curves = _curves(rng, family, done, planned, spec)
    finished = None
    if status.finished and started is not None:
        finished = started + timedelta(seconds=sum(curves["seconds"]) + 30)
    row = {
        "name": spec.name, "model": spec.model, "tags": list(spec.tags),
        "spec": spec.model_dump(mode="json"), "status": status.value,
        "error": "ResourceExhaustedError: OOM when allocating tensor" if status == Status.failed
        else None,
        "notes": "", "created_at": created, "started_at": started, "finished_at": finished,
        "heartbeat_at": now if status == Status.running else finished,
        "worker_host": None if started is None else f"gpu-{index % 4}",
        "worker_name": None if started is None else f"cifarlab@gpu-{index % 4}",
        "attempts": 0 if started is None else STARTED_ATTEMPT,
        "device": None if started is None else "GPU 0: NVIDIA A100-SXM4-40GB",
        "current_epoch": done, "epoch_progress": 1.0 if done else 0.0,
        "training_seconds": sum(curves["seconds"]) if done else None,
        "total_epochs": spec.hyperparameters.planned_epochs,
        "parameters": None if started is None else family.parameters,
        "trainable_parameters": None if started is None else family.parameters,
        "model_layers": None if started is None else _layers(family),
        "test_accuracy": None, "macro_f1": None, "owner_id": None, "sweep_id": sweep_id,
        "stop_reason": f"pruned at epoch {done} because its val_accuracy was below the median "
        "of the trials that reached that epoch" if status == Status.pruned else None,
    }  # fmt: skip
    if status != Status.succeeded:
        return _Planned(row=row, curves=curves, evaluation=None)
    target = max(curves["val_accuracy"]) - abs(float(rng.normal(0, 0.01)))
    predictions, confidences = _evaluate(rng, labels, target)
    cells = labels * len(CLASSES) + predictions  # row: true class, column: predicted
    matrix = np.bincount(cells, minlength=len(CLASSES) ** 2).reshape(len(CLASSES), -1)
    report = classification_report(matrix)
    row["test_accuracy"] = report["accuracy"]
    row["macro_f1"] = report["macro avg"]["f1-score"]
    evaluation = _Evaluated(
        predictions if per_image else None,
        confidences if per_image else None,
        matrix.tolist(),
        report,
    )
    return _Planned(row=row, curves=curves, evaluation=evaluation)


def bench_sweep(trials: int, epochs: int) -> SweepSpec:
    """The bench's sweep of the custom CNN: ``trials // SWEEP_SEEDS`` random configurations
    (a log-uniform learning rate, a dropout rate, a batch size), each with ten seeds, median
    pruning; validated as any sweep is."""
    if trials < MIN_SWEEP_TRIALS:
        raise ValueError(f"a bench sweep needs at least {MIN_SWEEP_TRIALS} trials")
    return parse_sweep({
        "name": f"bench lr sweep ({trials} trials)", "model": "custom_cnn", "tags": ["bench"],
        "hyperparameters": {"epochs": epochs},
        "random": {
            "learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2},
            "dropout_rate": {"distribution": "uniform", "low": 0.1, "high": 0.6},
            "batch_size": {"distribution": "choice", "values": [64, 128, 256]},
        },
        "trials": trials // SWEEP_SEEDS, "seeds": SWEEP_SEEDS, "max_parallel": 8,
        "pruning": {"rule": "median", "metric": "val_accuracy", "warmup_epochs": 5},
    })  # fmt: skip


def _trial_statuses(count: int, rng: np.random.Generator) -> list[Status]:
    """A finished sweep: mostly succeeded, an eighth pruned early, a few failed."""
    draws = rng.random(count)
    return [
        Status.failed if d < 0.03 else Status.pruned if d < 0.15 else Status.succeeded
        for d in draws
    ]


def _insert_sweep(session: Session, spec: SweepSpec, created: datetime) -> int:
    sweep = {
        "name": spec.name, "model": spec.model, "spec": spec.model_dump(mode="json"),
        "max_parallel": spec.max_parallel, "created_at": created, "owner_id": None,
    }  # fmt: skip
    return int(session.scalars(insert(Sweep).returning(Sweep.id), [sweep]).one())


def _seed_groups(
    trials: Sequence[Trial], ids: Sequence[int], statuses: Sequence[Status]
) -> list[list[int]]:
    """Trial ids by configuration (the point less its seed), those with the most succeeded
    seeds first: what compare with group=seed groups."""
    groups: dict[str, list[tuple[int, Status]]] = {}
    for trial, experiment_id, status in zip(trials, ids, statuses, strict=True):
        key = repr(sorted((k, v) for k, v in trial.point.items() if k != "seed"))
        groups.setdefault(key, []).append((experiment_id, status))
    ranked = sorted(
        groups.values(), key=lambda members: -sum(s == Status.succeeded for _, s in members)
    )
    return [[experiment_id for experiment_id, _ in members] for members in ranked]


def fill(
    session: Session,
    experiments: int = 1000,
    epochs: int = 50,
    seed: int = 0,
    *,
    running: int | None = None,
    per_image: int | None = None,
    sweep_trials: int = 0,
) -> Filled:
    """Insert ``experiments`` experiments (succeeded ones with ``epochs`` epochs each and an
    evaluation; per-image results for the newest ``per_image`` of them, all by default) with
    bulk INSERTs; ``sweep_trials`` of them are one sweep's trials (``bench_sweep``), each
    evaluated one with per-image results. The caller commits."""
    regular = experiments - sweep_trials
    if regular < 2 or epochs < 1:
        raise ValueError("fill needs at least 2 experiments besides the sweep, of 1+ epochs")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    running = min(4, max(1, regular // 20)) if running is None else running
    labels = shared_test_labels(seed)
    statuses = _statuses(regular, running, rng)
    succeeded = [i for i, status in enumerate(statuses) if status == Status.succeeded]
    keep = len(succeeded) if per_image is None else min(per_image, len(succeeded))
    detailed = set(succeeded[len(succeeded) - keep :])
    plans = [
        _plan(i, regular, s, epochs, labels, rng, per_image=i in detailed)
        for i, s in enumerate(statuses)
    ]
    sweep_id, trials, trial_statuses = None, [], []
    if sweep_trials:
        spec = bench_sweep(sweep_trials, epochs)
        trials = expand(spec)
        # Launched as one, three weeks before the newest experiment, a minute for them all.
        launched = utcnow() - timedelta(days=21)
        sweep_id = _insert_sweep(session, spec, launched)
        trial_statuses = _trial_statuses(len(trials), rng)
        plans += [
            _planned(
                regular + n, status, epochs, labels, rng, FAMILIES[0], trial.spec,
                launched + timedelta(milliseconds=50 * n), sweep_id=sweep_id,
            )
            for n, (trial, status) in enumerate(zip(trials, trial_statuses, strict=True))
        ]  # fmt: skip
    ids = list(
        session.scalars(
            insert(Experiment).returning(Experiment.id, sort_by_parameter_order=True),
            [plan.row for plan in plans],
        )
    )
    epoch_rows = 0
    for start in range(0, len(plans), EPOCH_BATCH):
        rows = [
            {"experiment_id": experiment_id, **dict(zip(plan.curves, values, strict=True))}
            for experiment_id, plan in zip(
                ids[start : start + EPOCH_BATCH], plans[start : start + EPOCH_BATCH], strict=True
            )
            for values in zip(*plan.curves.values(), strict=True)
        ]
        if rows:
            session.execute(insert(EPOCH_METRICS), rows)
        epoch_rows += len(rows)
    evaluated = [(i, plan) for i, plan in zip(ids, plans, strict=True) if plan.evaluation]
    with_per_image = {i for i, plan in evaluated if plan.evaluation.predictions is not None}  # type: ignore[union-attr]
    for start in range(0, len(evaluated), EVALUATION_BATCH):
        batch = evaluated[start : start + EVALUATION_BATCH]
        rows = [_evaluation_row(i, plan, labels) for i, plan in batch]
        session.execute(insert(Evaluation), rows)
    session.flush()
    filled = Filled(
        experiment_ids=ids,
        running_ids=[i for i, s in zip(ids, statuses, strict=False) if s == Status.running],
        compare_ids=[i for i in ids[:regular] if i in with_per_image],
        epoch_rows=epoch_rows,
        evaluations=len(evaluated),
        seconds=time.perf_counter() - started,
        sweep_id=sweep_id,
        seed_groups=_seed_groups(trials, ids[regular:], trial_statuses) if trials else [],
    )
    logger.info(
        "filled %s experiments, %s epochs, %s evaluations in %.1f s",
        experiments, filled.epoch_rows, filled.evaluations, filled.seconds,
    )  # fmt: skip
    return filled


def _evaluation_row(
    experiment_id: int, plan: _Planned, labels: npt.NDArray[np.int64]
) -> dict[str, Any]:
    """``labels``: the shared test set's, stored with the per-image results if planned."""
    evaluation = plan.evaluation
    if evaluation is None:
        raise ValueError(f"experiment {experiment_id} was not planned with an evaluation")
    per_image = evaluation.predictions is not None
    return {
        "experiment_id": experiment_id,
        "accuracy": evaluation.report["accuracy"],
        "classes": list(CLASSES),
        "confusion_matrix": evaluation.matrix,
        "report": evaluation.report,
        "test_size": TEST_IMAGES,
        "created_at": plan.row["finished_at"],
        "test_set_fingerprint": FINGERPRINT if per_image else None,
        "labels": labels if per_image else None,
        "predictions": evaluation.predictions,
        "confidences": evaluation.confidences,
    }


def count_rows(session: Session) -> dict[str, int]:
    return {
        "experiments": session.scalar(select(func.count()).select_from(Experiment)) or 0,
        "epoch_metrics": session.scalar(select(func.count()).select_from(EpochMetric)) or 0,
        "evaluations": session.scalar(select(func.count()).select_from(Evaluation)) or 0,
        "with_per_image": session.scalar(
            select(func.count()).select_from(Evaluation).where(
                Evaluation.test_set_fingerprint.is_not(None)
            )
        ) or 0,
    }  # fmt: skip


# --- a worker recording epochs while people read -----------------------------------------------


def epoch_values(experiment_id: int, epoch: int) -> dict[str, Any]:
    """Plausible numbers for an epoch the writer records."""
    accuracy = 0.9 - 0.6 * math.exp(-epoch / 20)
    return {
        "phase": "train", "loss": -math.log(accuracy), "accuracy": accuracy,
        "val_loss": -math.log(accuracy - 0.05) + 0.001 * epoch, "val_accuracy": accuracy - 0.05,
        "learning_rate": 1e-3, "seconds": 95.0 + experiment_id % 7, "images_per_second": 420.0,
    }  # fmt: skip


def record_epochs(
    database_url: str,
    last_epochs: dict[int, int],
    interval_seconds: float,
    events: tuple[Any, Any],
    results: Any,
) -> None:
    """A worker process: in each round, for each running experiment, a progress write and then
    the next epoch's row, each in its own transaction, as the training callback does. Sets
    ``events[0]`` after the first round, stops once ``events[1]`` is set, then puts
    {"last_epochs", "written", "errors"} on ``results``."""
    ready, stop = events
    os.environ["CIFARLAB_DATABASE_URL"] = database_url
    from app.core import crud
    from app.core.db import session_scope

    last = dict(last_epochs)
    errors: list[str] = []
    written = 0
    while not stop.is_set():
        for experiment_id in last:
            epoch = last[experiment_id] + 1
            lease = crud.Lease(experiment_id=experiment_id, attempt=STARTED_ATTEMPT)
            try:
                with session_scope() as session:
                    crud.record_progress(
                        session=session, lease=lease, epoch=epoch, epoch_progress=0.5
                    )
                with session_scope() as session:
                    crud.record_epoch(
                        session=session, lease=lease, epoch=epoch,
                        values=epoch_values(experiment_id, epoch),
                    )  # fmt: skip
            except Exception as exc:  # counted and reported: the bench's verdict needs them all
                errors.append(f"experiment {experiment_id} epoch {epoch}: {exc!r}"[:500])
                continue
            last[experiment_id] = epoch
            written += 1
        ready.set()
        stop.wait(interval_seconds)
    results.put({"last_epochs": last, "written": written, "errors": errors})


@dataclass
class WriterRun:
    """What the writer reported once stopped: {"last_epochs", "written", "errors"}."""

    outcome: dict[str, Any] = field(default_factory=dict)


@contextmanager
def writer(
    database_url: str, start_epochs: dict[int, int], interval_seconds: float
) -> Iterator[WriterRun]:
    """``record_epochs`` in a spawned process (like a Celery pool process, nothing inherited)
    for the duration of the block, which starts once the writer has written its first round."""
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(
        target=record_epochs,
        args=(database_url, start_epochs, interval_seconds, (ready, stop), results),
        name="cifarlab-bench-writer",
    )
    process.start()
    run = WriterRun()
    try:
        deadline = time.monotonic() + 120
        while not ready.wait(0.2) and process.is_alive() and time.monotonic() < deadline:
            pass
        yield run
    finally:
        stop.set()
        run.outcome = _writer_outcome(process, results) or {
            "last_epochs": start_epochs, "written": 0,
            "errors": [f"the writer process ended ({process.exitcode}) without reporting"],
        }  # fmt: skip
        process.join(timeout=30)


def _writer_outcome(process: Any, results: Any) -> dict[str, Any] | None:
    while True:
        try:
            return dict(results.get(timeout=0.5))
        except queue.Empty:
            if not process.is_alive():
                return None


def last_epochs(session: Session, experiment_ids: Sequence[int]) -> dict[int, int]:
    rows = session.execute(
        select(EpochMetric.experiment_id, func.max(EpochMetric.epoch))
        .where(EpochMetric.experiment_id.in_(experiment_ids))
        .group_by(EpochMetric.experiment_id)
    ).all()
    found = {int(experiment_id): int(epoch) for experiment_id, epoch in rows}
    return {i: found.get(i, 0) for i in experiment_ids}


def check_epochs(session: Session, run: WriterRun) -> dict[str, Any]:
    """Every epoch the writer committed is there, once, numbered without gaps from 1."""
    expected = {int(i): int(e) for i, e in run.outcome["last_epochs"].items()}
    rows = session.execute(
        select(EpochMetric.experiment_id, EpochMetric.epoch).where(
            EpochMetric.experiment_id.in_(expected)
        )
    ).all()
    present: dict[int, list[int]] = {i: [] for i in expected}
    for experiment_id, epoch in rows:
        present[int(experiment_id)].append(int(epoch))
    lost = sum(len(set(range(1, last + 1)) - set(present[i])) for i, last in expected.items())
    unexpected = sum(
        len([e for e in present[i] if e > last]) + len(present[i]) - len(set(present[i]))
        for i, last in expected.items()
    )
    errors = list(run.outcome["errors"])
    return {
        "experiments": len(expected),
        "epochs_written": int(run.outcome["written"]),
        "lost_rows": lost,
        "unexpected_rows": unexpected,
        "errors": len(errors),
        "database_locked": sum("database is locked" in e for e in errors),
        "error_samples": errors[:3],
    }


# --- the server ---------------------------------------------------------------------------------


def server_environment(data_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CIFARLAB_")}
    environment.update(
        CIFARLAB_DATA_DIR=str(data_dir),
        CIFARLAB_DATABASE_URL=database_url,
        CIFARLAB_REDIS_URL=redis_url,
        # The bench's running experiments have no real worker: keep the reaper off them.
        CIFARLAB_HEARTBEAT_TIMEOUT_SECONDS=str(7 * 24 * 3600),
    )
    return environment


@dataclass(frozen=True)
class Served:
    port: int
    pid: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> dict[int, float] | None:
        """CPU time used so far by the server and each process it started, by pid; None
        without Linux's /proc. On a shared machine this says more than latency about the
        server's own cost."""
        try:
            stats = {self.pid: Path(f"/proc/{self.pid}/stat").read_text()}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        stat = (entry / "stat").read_text()
                        if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                            stats[int(entry.name)] = stat
        except OSError:
            return None
        fields = {pid: stat.rsplit(")", 1)[1].split() for pid, stat in stats.items()}
        ticks = os.sysconf("SC_CLK_TCK")
        return {pid: (int(f[11]) + int(f[12])) / ticks for pid, f in fields.items()}


def cpu_figures(
    server: Served, before: dict[int, float], after: dict[int, float], requests: int
) -> dict[str, Any]:
    """CPU per request, and with several processes each one's share of it, busiest first:
    how evenly the kernel spread the readers' connections."""
    used = {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}
    total = sum(used.values())
    figures: dict[str, Any] = {"server_cpu_ms": round(1000 * total / requests, 2)}
    serving = [seconds for pid, seconds in used.items() if pid != server.pid]
    if len(serving) > 1 and total > 0:
        figures["process_cpu_shares"] = sorted((round(s / total, 2) for s in serving), reverse=True)
    return figures


@contextmanager
def serve(
    environment: dict[str, str], processes: int, log_path: Path, timeout_seconds: float = 90
) -> Iterator[Served]:
    """The web server on loopback, as ``cifarlab web`` runs it, once /api/health answers."""
    from app.web_server import command  # what `cifarlab web` runs

    port = free_port()
    argv = command("127.0.0.1", port, processes)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    served = Served(port=port, pid=process.pid)
    try:
        _wait_healthy(served.base_url, process, timeout_seconds)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with code {process.returncode}")
        try:
            if httpx.get(f"{base_url}/api/health", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"uvicorn did not answer /api/health within {timeout_seconds:.0f} s")


# --- the readers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    goal_p95_ms: float
    path: Callable[[random.Random], str]
    # Served by a part of cifarlab this version may lack: a 404 there is "not available".
    optional: bool = False


SORTED_BY = "hp.learning_rate"  # the list sorted by a hyperparameter column


def endpoints(filled: Filled) -> tuple[Endpoint, ...]:
    """What people open most: the list (plain and sorted by a hyperparameter), an
    experiment, its metrics, a comparison of eight; with a sweep, its page and API and a
    comparison of two of its configurations as seed groups."""
    ids, pool = list(filled.experiment_ids), list(filled.compare_ids)
    if len(pool) < 2:
        raise ValueError("the compare benchmark needs two or more evaluated experiments")

    def compared(prefix: str) -> Callable[[random.Random], str]:
        def path(rng: random.Random) -> str:
            chosen = rng.sample(pool, min(COMPARED, len(pool)))
            return f"{prefix}?ids=" + ",".join(str(i) for i in chosen)

        return path

    chosen = (
        Endpoint("list_page", 100, lambda rng: "/"),
        Endpoint("list_api", 100, lambda rng: "/api/experiments"),
        Endpoint("list_sorted_page", 100, lambda rng: f"/?sort={SORTED_BY}&order=asc"),
        Endpoint("list_sorted_api", 100, lambda rng: f"/api/experiments?sort={SORTED_BY}"),
        Endpoint("experiment_page", 100, lambda rng: f"/experiments/{rng.choice(ids)}"),
        Endpoint("metrics_api", 100, lambda rng: f"/api/experiments/{rng.choice(ids)}/metrics"),
        Endpoint("compare_page", 300, compared("/compare")),
        Endpoint("compare_api", 300, compared("/api/compare")),
    )
    if filled.sweep_id is None:
        return chosen
    # Two configurations' seed groups, drawn from those with the most succeeded seeds.
    best = filled.seed_groups[: max(GROUPS_COMPARED, len(filled.seed_groups) // 4)]

    def grouped(prefix: str) -> Callable[[random.Random], str]:
        def path(rng: random.Random) -> str:
            members = [i for group in rng.sample(best, GROUPS_COMPARED) for i in group]
            return f"{prefix}?ids=" + ",".join(str(i) for i in members) + "&group=seed"

        return path

    sweep = filled.sweep_id
    return (
        *chosen,
        Endpoint("sweep_page", 300, lambda rng: f"/sweeps/{sweep}", optional=True),
        Endpoint("sweep_api", 300, lambda rng: f"/api/sweeps/{sweep}", optional=True),
        Endpoint("compare_groups_page", 300, grouped("/compare"), optional=True),
        Endpoint("compare_groups_api", 300, grouped("/api/compare"), optional=True),
    )


def refusal(base_url: str, endpoint: Endpoint) -> int | None:
    """None when this version serves the endpoint; else the status its probe answered. An
    optional one answering 404 (its route is not in this build) or another 4xx (compare
    refusing more than 12 runs, before seed groups) is left out and reported as not
    available; a 5xx is measured, and fails the run as any error does."""
    if not endpoint.optional:
        return None
    status = httpx.get(base_url + endpoint.path(random.Random(0)), timeout=120).status_code
    return status if 400 <= status < 500 else None


@dataclass
class _Outcome:
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Connection:
    """One reader's keep-alive HTTP/1.1 connection, and its session cookie as a browser would
    send it back. Deliberately minimal: httpx spends about 2 ms of CPU per request, which on a
    two-core machine is taken from the server under test; this spends about 0.2 ms."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.cookie = ""

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str) -> tuple[int, bytes]:
        cookie = f"Cookie: {self.cookie}\r\n" if self.cookie else ""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}\r\n".encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = dict(line.split(":", 1) for line in head[1:] if ":" in line)
        headers = {key.lower(): value.strip() for key, value in headers.items()}
        if "set-cookie" in headers:
            self.cookie = headers["set-cookie"].split(";", 1)[0]
        if "content-length" in headers:
            return status, await self.reader.readexactly(int(headers["content-length"]))
        chunks = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            chunks.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readexactly(2)
        return status, b"".join(chunks)

    def close(self) -> None:
        self.writer.close()


async def _drive(port: int, paths: list[str], clients: int) -> _Outcome:
    """``clients`` readers, each on its own connection, each sending its next request as soon
    as the last one has been answered."""
    outcome = _Outcome()
    pending = list(reversed(paths))

    async def reader() -> None:
        connection = await Connection.open(port)
        try:
            while pending:
                path = pending.pop()
                started = time.perf_counter()
                try:
                    status, body = await connection.get(path)
                except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                    outcome.latencies.append(time.perf_counter() - started)
                    outcome.errors.append(f"GET {path}: {exc!r}"[:300])
                    connection.close()
                    connection = await Connection.open(port)
                    continue
                outcome.latencies.append(time.perf_counter() - started)
                outcome.sizes.append(len(body))
                if status != 200:
                    text = body[:200].decode("utf-8", "replace")
                    outcome.errors.append(f"GET {path}: {status} {text}")
        finally:
            connection.close()

    await asyncio.gather(*(reader() for _ in range(clients)))
    return outcome


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value that ``fraction`` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def _load(
    server: Served, endpoint: Endpoint, clients: int, requests: int, rng: random.Random
) -> dict[str, Any]:
    """Warm up, then measure; the server's CPU time is read around the measured part only."""
    warmup = [endpoint.path(rng) for _ in range(clients)]
    paths = [endpoint.path(rng) for _ in range(requests)]
    await _drive(server.port, warmup, clients)
    started = time.perf_counter()
    outcome = await _drive(server.port, paths, clients)
    wall = time.perf_counter() - started
    latencies = outcome.latencies
    return {
        "requests": len(latencies),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "p95_ms": round(1000 * percentile(latencies, 0.95), 1),
        "max_ms": round(1000 * max(latencies), 1),
        "requests_per_s": round(len(latencies) / wall, 1),
        "kb": round(sum(outcome.sizes) / max(1, len(outcome.sizes)) / 1024, 1),
        "errors": len(outcome.errors),
        "error_samples": outcome.errors[:3],
        "goal_p95_ms": endpoint.goal_p95_ms,
    }


def measure(
    server: Served, chosen: Sequence[Endpoint], clients: int, requests: int, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Each endpoint in turn: a warm-up round, then ``requests`` requests from ``clients``
    concurrent readers; with the server's CPU time per request and the machine's load."""
    rng = random.Random(seed)
    figures = {}
    for endpoint in chosen:
        load = os.getloadavg()[0]
        before = server.cpu_seconds()
        figures[endpoint.name] = asyncio.run(_load(server, endpoint, clients, requests, rng))
        after = server.cpu_seconds()
        if before is not None and after is not None:
            figures[endpoint.name] |= cpu_figures(server, before, after, requests)
        figures[endpoint.name]["load_average"] = round(load, 2)
        logger.info("%s: %s", endpoint.name, figures[endpoint.name])
    return figures


def check_static(base_url: str, experiment_id: int) -> dict[str, Any]:
    """plotly.js comes once, cacheable and revalidated by ETag, never inlined into a page."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        page = client.get(f"/experiments/{experiment_id}").text
        script = client.get("/static/vendor/plotly.min.js")
        etag = script.headers.get("etag")
        again = client.get("/static/vendor/plotly.min.js", headers={"If-None-Match": etag or ""})
    return {
        "plotly_js_kb": round(len(script.content) / 1024),
        "cache_control": script.headers.get("cache-control"),
        "etag": etag,
        "revalidated_304": again.status_code == 304,
        "referenced_by_page": "/static/vendor/plotly.min.js" in page,
        "inlined_in_page": len(script.content) > 0 and script.text[:2000] in page,
    }


# --- one database, one server --------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    experiments: int = 1000
    epochs: int = 50
    clients: int = 20
    requests: int = 200
    databases: tuple[str, ...] = DATABASES
    processes: tuple[int, ...] = (1,)
    data_dir: Path | None = None
    seed: int = 0
    writer_interval_seconds: float = 0.5
    sweep_trials: int = 0  # trials of one sweep among the experiments; 0: no sweep
    per_image: int | None = None  # experiments with per-image results (None: every one)


class Skipped(Exception):
    """This database cannot be benchmarked here; the message says why."""


def _server_log_problems(log_path: Path, offset: int) -> dict[str, int]:
    text = log_path.read_bytes()[offset:].decode("utf-8", "replace")
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "database_locked": text.count("database is locked"),
    }


def bench_server(
    database_url: str,
    data_dir: Path,
    engine: Engine,
    filled: Filled,
    processes: int,
    options: Options,
    redis_url: str,
) -> dict[str, Any]:
    """Serve with ``processes`` web processes; read every endpoint while a worker records epochs."""
    log_path = data_dir / "uvicorn.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    with Session(engine) as session:
        start = last_epochs(session, filled.running_ids)
    environment = server_environment(data_dir, database_url, redis_url)
    with serve(environment, processes, log_path) as server:
        static = check_static(server.base_url, filled.experiment_ids[0])
        refused = {e.name: refusal(server.base_url, e) for e in endpoints(filled)}
        chosen = [e for e in endpoints(filled) if refused[e.name] is None]
        with writer(database_url, start, options.writer_interval_seconds) as run:
            figures = measure(server, chosen, options.clients, options.requests, options.seed)
    with Session(engine) as session:
        recording = check_epochs(session, run)
    return {
        "processes": processes,
        "endpoints": figures,
        "not_available": {name: status for name, status in refused.items() if status},
        "recording": recording,
        "server_log": _server_log_problems(log_path, offset),
        "static": static,
    }


@contextmanager
def _sqlite(directory: Path) -> Iterator[str]:
    database = directory / "cifarlab.db"
    for stale in (database, database.with_name("cifarlab.db-wal"),
                  database.with_name("cifarlab.db-shm")):  # fmt: skip
        stale.unlink(missing_ok=True)
    yield f"sqlite:///{database}"


@contextmanager
def _postgres() -> Iterator[str]:
    try:
        from app.bench import postgres as helpers
    except ImportError as exc:  # psycopg missing: the [postgres] extra is not installed
        raise Skipped(f"cannot start PostgreSQL: {exc}") from None
    bin_dir = helpers.find_bin_dir()
    if bin_dir is None:
        raise Skipped("PostgreSQL server binaries not installed (Debian: postgresql)")
    try:
        server, process = helpers.start_postgres(bin_dir)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        raise Skipped(f"PostgreSQL from {bin_dir} did not start: {exc}") from None
    try:
        yield server.create_database("cifarlab_bench")
    finally:
        helpers.stop_postgres(server, process)


def settle(engine: Engine) -> None:
    """Write the fill out to disk before measuring, so that the kernel's writeback of a fresh
    130 MB database cannot overlap the measured requests on a two-core machine."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            connection.exec_driver_sql("CHECKPOINT")
    os.sync()


def bench_database(database: str, options: Options, root: Path, redis_url: str) -> dict[str, Any]:
    """Fill a fresh database, then measure it served by each process count in turn."""
    directory = root / f"bench-web-{database}"
    directory.mkdir(parents=True, exist_ok=True)
    opened = _sqlite(directory) if database == "sqlite" else _postgres()
    try:
        with opened as database_url:
            upgrade(database_url)
            engine = make_engine(database_url)
            try:
                with Session(engine) as session:
                    filled = fill(
                        session, options.experiments, options.epochs, options.seed,
                        per_image=options.per_image, sweep_trials=options.sweep_trials,
                    )  # fmt: skip
                    session.commit()
                    rows = count_rows(session)
                settle(engine)
                runs = [
                    bench_server(database_url, directory, engine, filled, processes, options,
                                 redis_url)
                    for processes in options.processes
                ]  # fmt: skip
            finally:
                engine.dispose()
    except Skipped as exc:
        logger.warning("%s skipped: %s", database, exc)
        return {"status": "skipped", "reason": str(exc)}
    return {
        "status": "measured",
        "fill_seconds": round(filled.seconds, 2),
        "rows": rows,
        "compare_pool": len(filled.compare_ids),
        "sweep": None
        if filled.sweep_id is None
        else {
            "id": filled.sweep_id,
            "trials": options.sweep_trials,
            "configurations": len(filled.seed_groups),
        },
        "running_experiments": len(filled.running_ids),
        "runs": runs,
    }


# --- all of it -------------------------------------------------------------------------------


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """Each endpoint's p95 against its goal, for every database and process count measured;
    ``correct`` says that no request failed, no epoch was lost and nothing was locked."""
    checked, correct = [], True
    for database in DATABASES:
        entry = results.get(database, {})
        for run in entry.get("runs", []):
            for name, figures in run["endpoints"].items():
                checked.append({
                    "database": database, "processes": run["processes"], "endpoint": name,
                    "p95_ms": figures["p95_ms"], "goal_p95_ms": figures["goal_p95_ms"],
                    "met": figures["p95_ms"] < figures["goal_p95_ms"],
                })  # fmt: skip
                correct &= figures["errors"] == 0
            recording = run["recording"]
            correct &= recording["lost_rows"] == 0 and recording["unexpected_rows"] == 0
            correct &= recording["errors"] == 0
            correct &= run["server_log"]["tracebacks"] == 0
            correct &= run["server_log"]["database_locked"] == 0
    missed = [f"{c['database']}/{c['processes']}p/{c['endpoint']}" for c in checked if not c["met"]]
    return {
        "met": bool(checked) and not missed,
        "correct": correct,
        "missed": missed,
        "checked": checked,
    }


def run(options: Options) -> dict[str, Any]:
    """The whole benchmark; returns every figure (``report`` prints them)."""
    root = options.data_dir or Path(tempfile.mkdtemp(prefix="cifarlab-bench-web-"))
    root.mkdir(parents=True, exist_ok=True)
    redis_port = free_port()
    redis = start_redis(root, redis_port)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    try:
        for database in options.databases:
            results[database] = bench_database(database, options, root, redis_url(root, redis_port))
    finally:
        redis.terminate()
        redis.wait(timeout=30)
        if options.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    for database in DATABASES:
        results.setdefault(database, {"status": "skipped", "reason": "not requested"})
    return {
        "benchmark": "web",
        "experiments": options.experiments,
        "epochs": options.epochs,
        "sweep_trials": options.sweep_trials,
        "clients": options.clients,
        "requests_per_endpoint": options.requests,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        },
        **results,
        "goals": goals(results),
    }


def _table(run: dict[str, Any]) -> list[str]:
    lines = [
        f"  {run['processes']} process(es)   p50 ms   p95 ms   max ms    req/s  errors      KB  "
        "cpu ms/req  goal p95"
    ]
    for name, f in run["endpoints"].items():
        mark = "ok" if f["p95_ms"] < f["goal_p95_ms"] else "MISSED"
        cpu = f"{f['server_cpu_ms']:>10.1f}" if "server_cpu_ms" in f else f"{'-':>10}"
        lines.append(
            f"  {name:<16}{f['p50_ms']:>8.1f} {f['p95_ms']:>8.1f} {f['max_ms']:>8.1f} "
            f"{f['requests_per_s']:>8.1f} {f['errors']:>7} {f['kb']:>7.1f}  {cpu}  "
            f"<{f['goal_p95_ms']:.0f} {mark}"
        )
    if run.get("not_available"):
        missing = ", ".join(f"{name} ({status})" for name, status in run["not_available"].items())
        lines.append(f"  not available in this version: {missing}")
    r, log, static = run["recording"], run["server_log"], run["static"]
    lines.append(
        f"  recording: {r['epochs_written']} epochs into {r['experiments']} running experiments, "
        f"{r['lost_rows']} lost, {r['errors']} errors ({r['database_locked']} locked); server "
        f"log: {log['tracebacks']} tracebacks, {log['database_locked']} locked"
    )
    lines.append(
        f"  plotly.js: {static['plotly_js_kb']} KB, Cache-Control {static['cache_control']!r}, "
        f"ETag {'yes' if static['etag'] else 'no'}, 304 on revalidation "
        f"{'yes' if static['revalidated_304'] else 'no'}, inlined in pages "
        f"{'yes' if static['inlined_in_page'] else 'no'}"
    )
    return lines


def _sweep_words(figures: dict[str, Any]) -> str:
    trials = figures.get("sweep_trials") or 0
    return f" (one sweep of {trials:,} trials among them)" if trials else ""


def report(figures: dict[str, Any]) -> str:
    """The table for people; the CLI prints it, then the figures as one JSON line."""
    machine = figures["machine"]
    lines = [
        f"cifarlab bench web: {figures['experiments']:,} experiments x {figures['epochs']} "
        f"epochs{_sweep_words(figures)}, {figures['clients']} clients, "
        f"{figures['requests_per_endpoint']} requests per endpoint",
        f"{machine['cpus']} CPUs; load average before {machine['load_average_before']}, after "
        f"{machine['load_average_after']}",
    ]
    for database in DATABASES:
        entry = figures[database]
        if entry["status"] != "measured":
            lines.append(f"{database}: skipped ({entry['reason']})")
            continue
        rows = entry["rows"]
        lines.append(
            f"{database}: filled in {entry['fill_seconds']:.1f} s ({rows['experiments']:,} "
            f"experiments, {rows['epoch_metrics']:,} epochs, {rows['evaluations']:,} "
            f"evaluations, {rows['with_per_image']:,} with per-image results)"
        )
        for run in entry["runs"]:
            lines += _table(run)
    verdict = figures["goals"]
    lines.append(
        f"goals {'met' if verdict['met'] else 'missed: ' + ', '.join(verdict['missed'])}; "
        f"correctness {'ok' if verdict['correct'] else 'FAILED'}"
    )
    return "\n".join(lines)
