"""One experiment from data to stored evaluation; the task around it only records the outcome."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from app.core import crud
from app.core.cifar10 import CLASS_NAMES
from app.core.config import Settings
from app.core.db import session_scope
from app.core.hyperparameters import TrainingHyperparameters
from app.core.run_phase import RunPhase
from app.core.schemas import ExperimentSpec
from worker.builders import build_model, load_warm_start
from worker.checkpoints import Checkpoint, ResumePoint, save_model_beside
from worker.data import (
    Cifar10,
    load_cifar10,
    prepare_data,
)
from worker.evaluation import evaluate_predictions, fingerprint_test_set, save_test_images
from worker.hardware import without_cuinit_noise
from worker.lease import holding
from worker.pipeline import make_dataset
from worker.pruning import TrialPruner
from worker.training import Trainer, deterministic_kernels, precision_policy
from worker.tta import weighted_prediction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    cancelled: bool
    pruned: str | None = None
    """Why the sweep's pruning rule stopped the run; it then has no evaluation and no model."""


def describe_device() -> str:
    """The GPU's name when TensorFlow sees one, else the CPU, for the experiment page. The
    task calls it before anything else asks TensorFlow for devices: TensorFlow's first look."""
    with without_cuinit_noise():
        gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    return f"CPU ({os.cpu_count()} cores)"


def worker_host() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


def initial_model(
    spec: ExperimentSpec, settings: Settings, train_images: np.ndarray | None = None
) -> keras.Model:
    source = spec.hyperparameters.warm_start_experiment_id
    if source is None:
        return build_model(spec, settings, train_images)
    path = settings.model_path(source)
    if not path.is_file():
        raise ValueError(
            f"warm start: experiment {source} has no trained model ({path} is missing); "
            "pick an experiment that succeeded"
        )
    return load_warm_start(str(path), spec)


def record_model(lease: crud.Lease, model: keras.Model, phase: str) -> None:
    """The page's model summary: top-level layers, and what trains in the current phase."""
    layers = [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "parameters": int(layer.count_params()),
            "trainable": bool(layer.trainable),
        }
        for layer in model.layers
    ]
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    with session_scope() as session:
        crud.set_model_info(
            session=session, lease=lease, parameters=int(model.count_params()),
            trainable_parameters=trainable, layers=layers,
        )  # fmt: skip
    logger.info(
        "experiment %s phase %s: %s trainable parameters", lease.experiment_id, phase, trainable
    )


PHASE_WORDS = {
    RunPhase.loading_data: "loading data",
    RunPhase.train: "training",
    RunPhase.fine_tune: "fine-tuning (phase 2)",
    RunPhase.evaluating: "evaluating on the test set",
}
"""How the run's log says each phase."""


def enter_phase(lease: crud.Lease, phase: RunPhase) -> None:
    """Say what the attempt is doing now, for the page's progress line and the run's log."""
    with session_scope() as session:
        crud.set_run_phase(session=session, lease=lease, phase=phase)
    logger.info("experiment %s: %s", lease.experiment_id, PHASE_WORDS[phase])


def start_phase(lease: crud.Lease, model: keras.Model, phase: str) -> None:
    """A training phase begins: its phase, then the model summary as it trains in it."""
    enter_phase(lease, RunPhase(phase))
    record_model(lease, model, phase)


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and TensorFlow's generators, and deterministic kernels where
    ``deterministic_kernels`` says so."""
    keras.utils.set_random_seed(seed)
    if deterministic_kernels():
        tf.config.experimental.enable_op_determinism()


def predict_test_set(model: keras.Model, test: Cifar10, hp: TrainingHyperparameters) -> np.ndarray:
    """Class probabilities of each test image: its views' (``hp.test_time_augmentation``),
    weighted and summed, fed in the run's batches at its image size."""

    def predict(view: np.ndarray) -> np.ndarray:
        batches = make_dataset(
            view, test.y_test, batch_size=hp.batch_size, image_size=hp.image_size,
            shuffle=False, seed=hp.seed,
        )  # fmt: skip
        return model.predict(batches, verbose=0)

    return weighted_prediction(predict, test.x_test, hp.test_time_augmentation)


def run_experiment(*, lease: crud.Lease, spec: ExperimentSpec, settings: Settings) -> RunOutcome:
    """Train, evaluate and store one attempt of an experiment. Every write is fenced by
    ``lease``: raises ``crud.LeaseLost`` (having written nothing more) once another attempt
    holds the run."""
    experiment_id = lease.experiment_id
    hp = spec.hyperparameters
    seed_everything(hp.seed)
    policy = precision_policy(hp)
    keras.mixed_precision.set_global_policy(policy)
    logger.info("experiment %s: %s precision on %s", experiment_id, policy, describe_device())
    enter_phase(lease, RunPhase.loading_data)
    dataset = load_cifar10(source=settings.cifar10_path, cache_dir=settings.dataset_cache_dir)
    training, test = prepare_data(spec, dataset)
    checkpoint = Checkpoint(settings.experiment_dir(experiment_id))
    resumed = checkpoint.load()
    if resumed is not None:
        model, start, best = resumed.model, resumed.point, resumed.best_weights
        logger.info("experiment %s resumes after epoch %s", experiment_id, start.epochs_done)
    else:
        model = initial_model(spec, settings, training.x_train)
        start, best = ResumePoint(), None
    trainer = Trainer(
        lease=lease, model=model, spec=spec, data=training, checkpoint=checkpoint, start=start,
        best_weights=best, pruner=TrialPruner.for_experiment(experiment_id),
    )  # fmt: skip
    trainer.run(on_phase_start=lambda m, phase: start_phase(lease, m, phase))
    if trainer.cancelled:
        return RunOutcome(cancelled=True)
    if trainer.pruned:
        # A pruned trial is over: no evaluation, no model, no resume point. Cleared while the
        # lease holds, so a stale attempt never removes the checkpoint of the one that took over.
        with holding(lease):
            checkpoint.clear()
        return RunOutcome(cancelled=False, pruned=trainer.pruned)
    enter_phase(lease, RunPhase.evaluating)
    probabilities = predict_test_set(model, test, hp)
    result = evaluate_predictions(test.y_test, probabilities, CLASS_NAMES)
    fingerprint = fingerprint_test_set(test.x_test, test.y_test)
    save_test_images(test.x_test, settings.test_images_path(fingerprint))
    per_image = crud.PerImageResults(
        fingerprint=fingerprint, labels=result.labels, predictions=result.predictions,
        confidences=result.confidences,
    )  # fmt: skip
    model_path = settings.model_path(experiment_id)
    staged = save_model_beside(model, model_path)
    try:
        with session_scope() as session:
            crud.save_evaluation(
                session=session, lease=lease, classes=result.classes,
                confusion_matrix=result.confusion_matrix, report=result.report,
                per_image=per_image, test_time_augmentation=hp.test_time_augmentation,
            )  # fmt: skip
            # While the fenced UPDATE holds the row: only the attempt that succeeds renames.
            os.replace(staged, model_path)
    finally:
        staged.unlink(missing_ok=True)
    checkpoint.clear()
    return RunOutcome(cancelled=False)
