"""Small builders for tests: tiny CIFAR-10 archives and experiments in the database."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core import crud
from app.core.cifar10 import CLASS_COUNT
from app.core.models import Experiment, Status, utcnow
from app.core.schemas import parse_spec


def learnable_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """Each class gets its own colour and stripe, plus noise, so a CNN learns it in one epoch."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), 32, 32, 3), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index, :, :, label % 3] += 120
        images[index, (label * 3) : (label * 3) + 3, :, :] = 250
    return images


def write_official_cifar10(root: Path, *, train_per_class: int, test_per_class: int) -> Path:
    """The official python format (cifar-10-python.tar.gz), tiny; returns the archive path."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    y_train = np.repeat(np.arange(CLASS_COUNT), train_per_class)
    y_test = np.repeat(np.arange(CLASS_COUNT), test_per_class)
    x_train, x_test = learnable_images(y_train, 1), learnable_images(y_test, 2)
    for number, part in enumerate(np.array_split(np.arange(len(y_train)), 5), start=1):
        _write_batch(folder / f"data_batch_{number}", x_train[part], y_train[part])
    _write_batch(folder / "test_batch", x_test, y_test)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # channel-first rows
    with path.open("wb") as file:
        pickle.dump({b"data": rows, b"labels": labels.tolist()}, file)


TINY_RUN = {"train_size": 200, "test_size": 50, "batch_size": 50, "filters": 8}
"""Hyperparameters for a run that real workers train in seconds, a few epochs at a time."""


def spec_data(model: str = "custom_cnn", **hyperparameters: Any) -> dict[str, Any]:
    return {
        "name": "tiny cnn",
        "model": model,
        "tags": ["test"],
        "hyperparameters": {"epochs": 2, "train_size": 200, "test_size": 100, **hyperparameters},
    }


def sweep_data(**changes: Any) -> dict[str, Any]:
    """A tiny sweep: 2 learning rates x 3 seeds of ``spec_data``'s CNN."""
    return {
        "name": "lr sweep",
        "model": "custom_cnn",
        "hyperparameters": {"epochs": 2, "train_size": 200, "test_size": 100},
        "grid": {"learning_rate": [0.001, 0.003]},
        "seeds": [0, 1, 2],
        **changes,
    }


def claim(session: Session, experiment_id: int) -> crud.Lease:
    """Start a queued experiment as a worker does: its rows are written under this lease."""
    lease = crud.claim_experiment(
        session=session, experiment_id=experiment_id, worker_host="test (pid 1)", device="CPU"
    )
    assert lease is not None, f"experiment {experiment_id} is not queued"
    return lease


def make_experiment(session: Session, **hyperparameters: Any) -> Experiment:
    experiment = crud.create_experiment(
        session=session, spec=parse_spec(spec_data(**hyperparameters))
    )
    session.commit()
    return experiment


def end_experiment(
    session: Session, experiment_id: int, status: Status, error: str | None = None
) -> None:
    """Put a run in an end state the way a worker or a reaper leaves it (a finish time, an
    error), for tests that start from one; the caller commits."""
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id)
        .values(status=status, finished_at=utcnow(), error=error)
    )


def failed_experiment(session: Session) -> Experiment:
    """A queued experiment ended as failed before it started: one retry can run again."""
    experiment = make_experiment(session)
    end_experiment(session, experiment.id, Status.failed)
    session.commit()
    return experiment


CLASSES = [f"class{i}" for i in range(CLASS_COUNT)]


def make_evaluated(
    session: Session,
    predictions: list[int],
    labels: list[int],
    *,
    fingerprint: str | None = "same",
    epochs: list[dict[str, float]] | None = None,
    test_time_augmentation: str = "none",
    **hyperparameters: Any,
) -> Experiment:
    """A succeeded experiment whose evaluation comes from these per-image predictions, made
    with ``test_time_augmentation`` (which the worker records beside the evaluation)."""
    from sklearn.metrics import classification_report, confusion_matrix

    experiment = make_experiment(session, **hyperparameters)
    lease = claim(session, experiment.id)
    for number, values in enumerate(epochs or [], start=1):
        crud.record_epoch(session=session, lease=lease, epoch=number, values=values)
    report = classification_report(
        labels, predictions, labels=list(range(CLASS_COUNT)), target_names=CLASSES,
        output_dict=True, zero_division=0,
    )  # fmt: skip
    report = {
        k: {m: float(x) for m, x in v.items()} if isinstance(v, dict) else float(v)
        for k, v in report.items()
    }
    matrix = confusion_matrix(labels, predictions, labels=list(range(CLASS_COUNT))).tolist()
    per_image = None
    if fingerprint is not None:
        per_image = crud.PerImageResults(
            fingerprint=fingerprint, labels=labels, predictions=predictions,
            confidences=[0.5 + (i % 5) / 10 for i in range(len(labels))],
        )  # fmt: skip
    crud.save_evaluation(
        session=session, lease=lease, classes=CLASSES, confusion_matrix=matrix,
        report=report, per_image=per_image,
    )  # fmt: skip
    session.commit()
    session.refresh(experiment)
    assert experiment.evaluation is not None
    experiment.evaluation.test_time_augmentation = test_time_augmentation
    session.commit()
    return experiment


CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def finished_experiment(session: Session, name: str = "finished cnn") -> Experiment:
    """An experiment as a worker leaves it: claimed, two epochs (10 s and 20 s), evaluated."""
    experiment = make_experiment(session)
    experiment.name = name
    experiment.spec = {**experiment.spec, "name": name}
    lease = crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="gpu-1", device="CPU:0"
    )
    assert lease is not None
    crud.set_model_info(
        session=session,
        lease=lease,
        parameters=550570,
        trainable_parameters=550000,
        layers=[
            {"name": "conv2d", "type": "Conv2D", "parameters": 896, "trainable": True},
            {"name": "dense", "type": "Dense", "parameters": 549674, "trainable": False},
        ],
    )
    for epoch, (accuracy, val_accuracy) in enumerate([(0.31, 0.28), (0.52, 0.47)], start=1):
        values = {"accuracy": accuracy, "val_accuracy": val_accuracy, "loss": 2.0 / epoch}
        values.update(val_loss=2.1 / epoch, seconds=10.0 * epoch)
        crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
    crud.save_evaluation(
        session=session,
        lease=lease,
        classes=CIFAR10_CLASSES,
        confusion_matrix=[
            [7 if i == j else 1 if j == (i + 1) % 10 else 0 for j in range(10)] for i in range(10)
        ],
        report=cifar10_report(),
    )
    session.commit()
    session.refresh(experiment)
    return experiment


def cifar10_report() -> dict:
    row = {"precision": 0.7, "recall": 0.875, "f1-score": 0.7778, "support": 8.0}
    average = {"precision": 0.7, "recall": 0.875, "f1-score": 0.7778, "support": 80.0}
    return {
        **{name: row for name in CIFAR10_CLASSES},
        "accuracy": 0.875,
        "macro avg": average,
        "weighted avg": average,
    }


def timed_run(
    session: Session,
    *,
    device: str,
    images_per_second: list[float],
    model: str = "custom_cnn",
    phase: str = "train",
    overhead: float = 1.25,
    **hyperparameters: Any,
) -> Experiment:
    """A succeeded run on ``device`` whose epochs trained at these images per second, each
    epoch taking ``overhead`` times its training time (validation and callbacks)."""
    spec = parse_spec(spec_data(model, **hyperparameters))
    experiment = crud.create_experiment(session=session, spec=spec)
    session.commit()
    lease = crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="test (pid 1)", device=device
    )
    assert lease is not None
    hp = spec.hyperparameters
    fit_images = (hp.train_size or 50_000) * (1 - hp.validation_split)
    for epoch, speed in enumerate(images_per_second, start=1):
        values = {"images_per_second": speed, "seconds": fit_images / speed * overhead}
        crud.record_epoch(
            session=session, lease=lease, epoch=epoch, values={**values, "phase": phase}
        )
    crud.save_evaluation(
        session=session, lease=lease, classes=CIFAR10_CLASSES, confusion_matrix=None,
        report=cifar10_report(),
    )  # fmt: skip
    session.commit()
    return experiment


def online_worker(session: Session, name: str, device: str) -> None:
    """A worker that has just said it is alive."""
    crud.see_worker(session=session, name=name, hostname="test", pid=1, device=device)
    session.commit()
