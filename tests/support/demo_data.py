"""A realistic data folder for looking at every page: a dozen finished runs of several models
with curves, confusion matrices and per-image predictions, two imported study reports, a
run still training, a queued one and a small sweep. The browser walkthrough
(tests/e2e/test_walkthrough.py) draws every page from it; written with crud, as a worker
and the import form would leave the rows, so no broker or worker is needed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from app.core.schemas import parse_spec
from app.core.sweeps import expand, parse_sweep
from app.services import importing
from tests.support.factories import CIFAR10_CLASSES
from tests.support.seed_reports import seed_report

TEST_IMAGES_PER_CLASS = 50
FINGERPRINT = "demo-cifar10-test"
"""Every demo run saw the same test images, so compare pairs them image by image."""

# name, model, test accuracy, epochs, changed hyperparameters, tags
FINISHED_RUNS: list[tuple[str, str, float, int, dict[str, Any], list[str]]] = [
    ("cnn baseline", "custom_cnn", 0.71, 8, {}, ["baseline"]),
    ("cnn baseline seed 1", "custom_cnn", 0.70, 8, {"seed": 1}, ["baseline"]),
    ("cnn batch norm", "custom_cnn", 0.78, 8, {"batch_norm": True}, ["bn"]),
    ("cnn flip + translate", "custom_cnn", 0.80, 10, {"augment_flip": True}, ["augment"]),
    ("cnn lr 0.003", "custom_cnn", 0.66, 6, {"learning_rate": 0.003}, []),
    ("residual net", "residual_cnn", 0.84, 12, {}, ["resnet"]),
    ("residual net wide", "residual_cnn", 0.86, 12, {"width": 48}, ["resnet", "wide"]),
    ("airbench-style fast cnn", "fast_cnn", 0.91, 10, {}, ["fast"]),
    ("EfficientNetB0 transfer", "efficientnet_b0", 0.88, 5, {}, ["transfer"]),
    ("MobileNetV2 transfer", "mobilenet_v2", 0.83, 5, {}, ["transfer"]),
    ("ResNet50V2 transfer", "resnet50v2", 0.87, 4, {}, ["transfer"]),
    ("cnn label smoothing 0.1 with a long name to wrap", "custom_cnn", 0.73, 8,
     {"label_smoothing": 0.1}, ["smoothing"]),
]  # fmt: skip
IMPORTED_REPORTS = (
    ("study: custom CNN", "custom-cnn", "custom_cnn"),
    ("study: EfficientNetB2 fine-tuned", "efficientnetb2-fine-tuned", "efficientnet_b2"),
)


@dataclass
class DemoData:
    finished: list[int] = field(default_factory=list)
    imported: list[int] = field(default_factory=list)
    longest_names: int = 0
    """An import whose name, model and setting run to their limits without a space: pages
    must still fit a phone."""
    running: int = 0
    queued: int = 0
    sweep: int = 0
    sweep_trials: list[int] = field(default_factory=list)
    """The sweep's finished trials: two learning rates, two seeds each."""


def _predictions(accuracy: float, rng: random.Random) -> tuple[list[int], list[int], list[float]]:
    labels = [label for label in range(10) for _ in range(TEST_IMAGES_PER_CLASS)]
    predictions = [
        label if rng.random() < accuracy else (label + rng.randint(1, 9)) % 10 for label in labels
    ]
    confidences = [round(0.4 + 0.6 * rng.random(), 3) for _ in labels]
    return labels, predictions, confidences


def _report(labels: list[int], predictions: list[int]) -> tuple[dict[str, Any], list[list[int]]]:
    from sklearn.metrics import classification_report, confusion_matrix

    report = classification_report(
        labels, predictions, labels=list(range(10)), target_names=CIFAR10_CLASSES,
        output_dict=True, zero_division=0,
    )  # fmt: skip
    report = {
        k: {m: float(x) for m, x in v.items()} if isinstance(v, dict) else float(v)
        for k, v in report.items()
    }
    matrix = confusion_matrix(labels, predictions, labels=list(range(10))).tolist()
    return report, matrix


def _epoch(epoch: int, epochs: int, accuracy: float, rng: random.Random) -> dict[str, Any]:
    """A plausible curve rising toward the final accuracy."""
    reached = accuracy * (1 - math.exp(-3 * epoch / epochs))
    noise = rng.uniform(-0.01, 0.01)
    return {
        "accuracy": min(reached + 0.04, 0.99), "val_accuracy": reached + noise,
        "loss": 2.3 * (1 - reached) + 0.1, "val_loss": 2.3 * (1 - reached) + 0.15 + noise,
        "learning_rate": 0.001, "seconds": 30.0 + rng.uniform(0, 5),
        "images_per_second": 1200.0 + rng.uniform(-50, 50),
    }  # fmt: skip


def _spec(name: str, model: str, epochs: int, tags: list[str], **changes: Any) -> Any:
    hyperparameters = {"epochs": epochs, "train_size": 5000, "test_size": 500, **changes}
    return parse_spec(
        {"name": name, "model": model, "tags": tags, "hyperparameters": hyperparameters}
    )


def _claim(session: Session, experiment: Experiment) -> crud.Lease:
    lease = crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="demo-gpu (pid 4242)",
        device="GPU:0", worker_name="demo-gpu",
    )  # fmt: skip
    assert lease is not None
    return lease


def _finished(session: Session, run: tuple[Any, ...], rng: random.Random) -> int:
    name, model, accuracy, epochs, changes, tags = run
    experiment = crud.create_experiment(
        session=session, spec=_spec(name, model, epochs, tags, **changes)
    )
    session.commit()
    lease = _claim(session, experiment)
    crud.set_model_info(
        session=session, lease=lease, parameters=rng.randint(300_000, 25_000_000),
        trainable_parameters=300_000, layers=[
            {"name": "conv2d", "type": "Conv2D", "parameters": 896, "trainable": True},
            {"name": "dense", "type": "Dense", "parameters": 1290, "trainable": True},
        ],
    )  # fmt: skip
    for epoch in range(1, epochs + 1):
        values = _epoch(epoch, epochs, accuracy, rng)
        crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
    labels, predictions, confidences = _predictions(accuracy, rng)
    report, matrix = _report(labels, predictions)
    per_image = crud.PerImageResults(
        fingerprint=FINGERPRINT, labels=labels, predictions=predictions, confidences=confidences
    )
    crud.save_evaluation(
        session=session, lease=lease, classes=CIFAR10_CLASSES, confusion_matrix=matrix,
        report=report, per_image=per_image,
    )  # fmt: skip
    session.commit()
    return experiment.id


def seed_demo(session: Session, *, seed: int = 16) -> DemoData:
    """Fill the database behind ``session``; the same ``seed`` gives the same numbers."""
    rng = random.Random(seed)
    demo = DemoData()
    demo.finished = [_finished(session, run, rng) for run in FINISHED_RUNS]
    for name, report, model in IMPORTED_REPORTS:
        data = {"name": name, "report_text": seed_report(report), "tags": ["study"], "model": model}
        demo.imported.append(importing.import_report(session, data, owner_id=None).id)
    longest = {"name": "n" * 200, "report_text": seed_report(IMPORTED_REPORTS[0][1]),
               "model": "m" * 64, "hyperparameters": {"s" * 64: "v" * 200}}  # fmt: skip
    demo.longest_names = importing.import_report(session, longest, owner_id=None).id
    running = crud.create_experiment(
        session=session, spec=_spec("cnn running now", "custom_cnn", 20, ["live"])
    )
    session.commit()
    lease = _claim(session, running)
    for epoch in (1, 2, 3):
        crud.record_epoch(
            session=session, lease=lease, epoch=epoch, values=_epoch(epoch, 20, 0.8, rng)
        )
    session.commit()
    demo.running = running.id
    queued = crud.create_experiment(session=session, spec=_spec("cnn waiting", "custom_cnn", 5, []))
    session.commit()
    demo.queued = queued.id
    sweep_spec = parse_sweep({
        "name": "learning rate sweep", "model": "custom_cnn",
        "hyperparameters": {"epochs": 3, "train_size": 2000, "test_size": 500},
        "grid": {"learning_rate": [0.0003, 0.001, 0.003]}, "seeds": [0, 1],
    })  # fmt: skip
    sweep, trials = crud.create_sweep(
        session=session, spec=sweep_spec, trials=expand(sweep_spec), owner_id=None
    )
    session.commit()
    for number, trial in enumerate(trials[:4]):
        lease = _claim(session, trial)
        accuracy = 0.55 + 0.04 * number
        for epoch in (1, 2, 3):
            values = _epoch(epoch, 3, accuracy, rng)
            crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
        labels, predictions, confidences = _predictions(accuracy, rng)
        report, matrix = _report(labels, predictions)
        per_image = crud.PerImageResults(FINGERPRINT, labels, predictions, confidences)
        crud.save_evaluation(
            session=session, lease=lease, classes=CIFAR10_CLASSES, confusion_matrix=matrix,
            report=report, per_image=per_image,
        )  # fmt: skip
        session.commit()
        demo.sweep_trials.append(trial.id)
    demo.sweep = sweep.id
    return demo
