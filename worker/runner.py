"""One experiment from data to stored evaluation; the task around it only records the outcome."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from app import crud
from app.config import Settings
from app.db import session_scope
from app.schemas import ExperimentSpec
from worker.data import (
    CLASS_NAMES,
    Cifar10,
    load_cifar10,
    make_dataset,
    stratified_indices,
    stratified_split,
)
from worker.evaluation import evaluate_predictions
from worker.training import TrainingData, build_model, fit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    cancelled: bool


def describe_device() -> str:
    """The GPU's name when TensorFlow sees one, else the CPU, for the experiment page."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    return f"CPU ({os.cpu_count()} cores)"


def worker_host() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


def prepare_data(spec: ExperimentSpec, dataset: Cifar10) -> tuple[TrainingData, Cifar10]:
    """Seeded, stratified subsets and split, so small runs are real, smaller experiments."""
    hp = spec.hyperparameters
    train_idx = stratified_indices(dataset.y_train, hp.train_size, seed=hp.seed)
    test_idx = stratified_indices(dataset.y_test, hp.test_size, seed=hp.seed)
    fit_idx, val_idx = stratified_split(
        dataset.y_train[train_idx], hp.validation_split, seed=hp.seed
    )
    x, y = dataset.x_train[train_idx], dataset.y_train[train_idx]
    training = TrainingData(
        x_train=x[fit_idx], y_train=y[fit_idx], x_val=x[val_idx], y_val=y[val_idx]
    )
    test = Cifar10(
        x_train=x[:0],
        y_train=y[:0],
        x_test=dataset.x_test[test_idx],
        y_test=dataset.y_test[test_idx],
    )
    return training, test


def run_experiment(*, experiment_id: int, spec: ExperimentSpec, settings: Settings) -> RunOutcome:
    hp = spec.hyperparameters
    keras.utils.set_random_seed(hp.seed)
    dataset = load_cifar10(source=settings.cifar10_path, cache_dir=settings.dataset_cache_dir)
    training, test = prepare_data(spec, dataset)
    model = build_model(spec)
    with session_scope() as session:
        crud.set_parameters(
            session=session, experiment_id=experiment_id, parameters=int(model.count_params())
        )
    recorder = fit(experiment_id=experiment_id, model=model, spec=spec, data=training)
    if recorder.cancelled:
        return RunOutcome(cancelled=True)
    probabilities = model.predict(
        make_dataset(
            test.x_test,
            test.y_test,
            batch_size=hp.batch_size,
            image_size=hp.image_size,
            shuffle=False,
            seed=hp.seed,
        ),
        verbose=0,
    )
    result = evaluate_predictions(test.y_test, np.asarray(probabilities), CLASS_NAMES)
    save_model(model, model_path(settings, experiment_id))
    with session_scope() as session:
        crud.save_evaluation(
            session=session,
            experiment_id=experiment_id,
            classes=result.classes,
            confusion_matrix=result.confusion_matrix,
            report=result.report,
        )
    return RunOutcome(cancelled=False)


def model_path(settings: Settings, experiment_id: int) -> Path:
    return settings.artifacts_dir / f"experiment-{experiment_id}" / "model.keras"


def save_model(model: keras.Model, path: Path) -> None:
    """Write beside the target, then rename: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".keras", delete=False) as tmp:
        temporary = Path(tmp.name)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
