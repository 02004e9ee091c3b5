"""Training benchmarks: cifarlab's worker pipeline against the plain Keras script a user
would write, the cost of recording, and peak memory of a transfer model's pipeline.

Every function returns plain figures; `cifarlab bench` prints them.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from app.core import crud
from app.core.config import get_settings
from app.core.db import session_scope
from app.core.schemas import parse_spec
from worker.architectures import build_custom_cnn
from worker.callbacks import ExperimentRecorder
from worker.data import load_cifar10, stratified_indices, stratified_split
from worker.hardware import cpu_flags
from worker.pipeline import make_dataset

VALIDATION_SPLIT = 0.2


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, training and validation together, for either variant."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)


class TimedRecorder(ExperimentRecorder):
    """The worker's recorder, with the time spent in its hooks added up: its own cost,
    measured directly, where an A/B of two whole runs drowns in run-to-run noise."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        super().on_train_batch_end(batch, logs)
        self.seconds += time.perf_counter() - started

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.seconds += time.perf_counter() - started


@dataclass
class Run:
    variant: str
    images_per_second: float  # training images / mean epoch seconds, first epoch left out
    epoch_seconds: list[float]
    val_accuracy: float
    recording_seconds: float | None = None  # in the recorder's hooks, all epochs


def cpu_features() -> dict[str, bool]:
    return {
        name: name in cpu_flags() for name in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    }


@contextmanager
def precision(policy: str) -> Iterator[None]:
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return build_custom_cnn(
        num_classes=10, image_size=32, conv_blocks=3, filters=32, batch_norm=False,
        dense_units=128, dropout_rate=0.25,
    )  # fmt: skip


def _compile(model: keras.Model, jit_compile: bool) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


def _summarise(variant: str, timer: EpochTimer, train_images: int, history: Any) -> Run:
    timed = timer.seconds[1:] or timer.seconds
    return Run(
        variant=variant,
        images_per_second=train_images / (sum(timed) / len(timed)),
        epoch_seconds=timer.seconds,
        val_accuracy=float(history.history["val_accuracy"][-1]),
    )


def plain_keras(x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, seed: int) -> Run:
    """What a notebook does: float32 arrays in memory, Keras slices the validation off."""
    images = x.astype("float32")
    labels = keras.utils.to_categorical(y, 10)
    model = _model(seed)
    _compile(model, jit_compile=False)
    timer = EpochTimer()
    history = model.fit(
        images, labels, batch_size=batch_size, epochs=epochs,
        validation_split=VALIDATION_SPLIT, callbacks=[timer], verbose=0,
    )  # fmt: skip
    return _summarise("plain keras", timer, int(len(x) * (1 - VALIDATION_SPLIT)), history)


def cifarlab_pipeline(
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    jit_compile: bool,
    policy: str,
    record: bool,
    lease: crud.Lease,
) -> Run:
    """The worker's path: uint8 in memory, tf.data per batch, the recording callback."""
    fit_idx, val_idx = stratified_split(y, VALIDATION_SPLIT, seed=seed)
    steps = math.ceil(len(fit_idx) / batch_size)
    train = make_dataset(x[fit_idx], y[fit_idx], batch_size=batch_size, image_size=32,
                         shuffle=True, seed=seed, epochs=epochs)  # fmt: skip
    validation = make_dataset(x[val_idx], y[val_idx], batch_size=batch_size, image_size=32,
                              shuffle=False, seed=seed)  # fmt: skip
    with precision(policy):
        model = _model(seed)
    _compile(model, jit_compile=jit_compile)
    timer = EpochTimer()
    callbacks: list[keras.callbacks.Callback] = [timer]
    recorder = None
    if record:
        recorder = TimedRecorder(lease=lease, steps_per_epoch=steps, train_images=len(fit_idx))
        callbacks.insert(0, recorder)
    history = model.fit(train, validation_data=validation, epochs=epochs, callbacks=callbacks,
                        steps_per_epoch=steps, shuffle=False, verbose=0)  # fmt: skip
    name = f"cifarlab {policy}{' xla' if jit_compile else ''}{'' if record else ' (no recording)'}"
    run = _summarise(name, timer, len(fit_idx), history)
    if recorder is not None:
        run.recording_seconds = recorder.seconds
    return run


def _bench_experiment() -> crud.Lease:
    """A real experiment row, claimed, for the recorder to write into, in the configured
    database: the recorder's writes are fenced by the claim's lease, as a worker's are."""
    spec = parse_spec({"name": "bench train", "model": "custom_cnn", "tags": ["bench"]})
    with session_scope() as session:
        experiment = crud.create_experiment(session=session, spec=spec)
        lease = crud.claim_experiment(
            session=session, experiment_id=experiment.id, worker_host="bench", device="CPU"
        )
    if lease is None:
        raise RuntimeError(f"bench experiment {experiment.id} could not be claimed")
    return lease


def training_data(train_size: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    settings = get_settings()
    data = load_cifar10(source=settings.cifar10_path, cache_dir=settings.dataset_cache_dir)
    chosen = stratified_indices(data.y_train, train_size, seed=seed)
    return data.x_train[chosen], data.y_train[chosen]


def train_benchmark(
    *, train_size: int, epochs: int, batch_size: int, rounds: int, variants: list[str], seed: int
) -> dict[str, Any]:
    """Alternates the variants round by round, so drift in machine load hits all alike."""
    x, y = training_data(train_size, seed)
    lease = _bench_experiment()

    def run(variant: str) -> Run:
        if variant == "plain":
            return plain_keras(x, y, epochs=epochs, batch_size=batch_size, seed=seed)
        jit, policy, record = VARIANTS[variant]
        return cifarlab_pipeline(
            x, y, epochs=epochs, batch_size=batch_size, seed=seed, jit_compile=jit,
            policy=policy, record=record, lease=lease,
        )  # fmt: skip

    unknown = [v for v in variants if v != "plain" and v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from plain, {', '.join(VARIANTS)}")
    runs: dict[str, list[Run]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            runs[variant].append(run(variant))
    return _train_report(runs, train_size, epochs, batch_size)


VARIANTS = {  # name: (XLA, precision policy, recording callback)
    "cifarlab": (False, "float32", True),
    "cifarlab-norecord": (False, "float32", False),
    "cifarlab-xla": (True, "float32", True),
    "cifarlab-bf16": (False, "mixed_bfloat16", True),
    "cifarlab-bf16-xla": (True, "mixed_bfloat16", True),
}


def _train_report(
    runs: dict[str, list[Run]], train_size: int, epochs: int, batch_size: int
) -> dict[str, Any]:
    figures: dict[str, dict[str, Any]] = {
        variant: {
            "images_per_second": float(np.median([r.images_per_second for r in done])),
            "per_round": [round(r.images_per_second, 1) for r in done],
            "val_accuracy": float(np.mean([r.val_accuracy for r in done])),
            "label": done[0].variant,
        }
        for variant, done in runs.items()
    }
    report: dict[str, Any] = {
        "train_size": train_size, "epochs": epochs, "batch_size": batch_size,
        "cpu": cpu_features(), "variants": figures,
    }  # fmt: skip
    if "plain" in figures:
        base = figures["plain"]["images_per_second"]
        report["speedup_vs_plain"] = {
            v: round(f["images_per_second"] / base, 3) for v, f in figures.items() if v != "plain"
        }
    if "cifarlab" in figures and "cifarlab-norecord" in figures:
        with_record = figures["cifarlab"]["images_per_second"]
        without = figures["cifarlab-norecord"]["images_per_second"]
        report["recording_ab_percent"] = round(100 * (without / with_record - 1), 2)
    recorded = [r for done in runs.values() for r in done if r.recording_seconds is not None]
    if recorded:
        hooks = sum(r.recording_seconds or 0.0 for r in recorded)
        epochs_total = sum(sum(r.epoch_seconds) for r in recorded)
        report["recording_percent_of_epoch"] = round(100 * hooks / epochs_total, 3)
    return report


def memory_benchmark(*, model: str, image_size: int, batch_size: int, steps: int) -> dict[str, Any]:
    """Peak resident memory while a transfer model trains on the full training set at
    `image_size`: the pipeline resizes per batch, so it stays far below the resized set.
    The pipeline runs alone first (`steps` batches, shuffle buffer filled), so its own peak
    is told apart from the model's activations, which grow with batch and image size."""
    from worker.architectures import build_transfer

    x, y = training_data(50_000, seed=0)
    fit_idx, _ = stratified_split(y, VALIDATION_SPLIT, seed=0)
    after_load = _peak_rss_mb()
    dataset = make_dataset(x[fit_idx], y[fit_idx], batch_size=batch_size, image_size=image_size,
                           shuffle=True, seed=0)  # fmt: skip
    for _ in dataset.take(steps):
        pass
    after_pipeline = _peak_rss_mb()
    net = build_transfer(
        application=model, num_classes=10, image_size=image_size, weights_path=None,
        head_units=128, head_dropout_rate=0.2, head_units_2=256, head_l2=0.001,
    )  # fmt: skip
    _compile(net, jit_compile=False)
    started = time.perf_counter()
    net.fit(dataset.take(steps), epochs=1, verbose=0)
    resized_gb = len(fit_idx) * image_size * image_size * 3 * 4 / 1e9
    return {
        "model": model, "image_size": image_size, "batch_size": batch_size, "steps": steps,
        "train_images": len(fit_idx), "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_after_loading_uint8_mb": round(after_load, 1),
        "rss_after_pipeline_mb": round(after_pipeline, 1),
        "uint8_images_mb": round(x.nbytes / 1e6, 1),
        "resized_float32_set_would_need_gb": round(resized_gb, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- time to accuracy ---------------------------------------------------------------------------


class StopAtAccuracy(keras.callbacks.Callback):
    """Stops the plain script at the end of the first epoch whose validation accuracy reaches
    ``target``, noting the wall time since ``started``."""

    def __init__(self, target: float, started: float) -> None:
        super().__init__()
        self.target = target
        self.started = started
        self.reached: tuple[int, float] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (logs or {}).get("val_accuracy", 0.0) >= self.target and self.reached is None:
            self.reached = (epoch + 1, time.perf_counter() - self.started)
            self.model.stop_training = True


@dataclass
class Race:
    """How long one contender took to reach the target, or how far it got."""

    contender: str
    reached_epoch: int | None
    seconds: float | None  # wall time from launch to the end of that epoch
    training_seconds: float | None  # the part of it spent inside epochs
    best_val_accuracy: float
    epochs_run: int


def plain_keras_race(target: float, *, epochs: int, seed: int) -> Race:
    """The study's recipe as a notebook writes it, on the full copy, from the arrays on:
    the custom CNN, Adam, ReduceLROnPlateau and EarlyStopping on validation loss."""
    started = time.perf_counter()
    x, y = training_data(None, seed)
    stop = StopAtAccuracy(target, started)
    model = _model(seed)
    _compile(model, jit_compile=False)
    timer = EpochTimer()
    history = model.fit(
        x.astype("float32"), keras.utils.to_categorical(y, 10), batch_size=128, epochs=epochs,
        validation_split=VALIDATION_SPLIT, verbose=0, callbacks=[
            timer, stop,
            keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_lr=1e-8),
            keras.callbacks.EarlyStopping("val_loss", patience=3, min_delta=1e-5,
                                          restore_best_weights=True),
        ],
    )  # fmt: skip
    accuracies = history.history["val_accuracy"]
    epoch, seconds = stop.reached or (None, None)
    return Race(
        contender="plain keras (study recipe)", reached_epoch=epoch, seconds=seconds,
        training_seconds=sum(timer.seconds[:epoch]) if epoch else None,
        best_val_accuracy=float(max(accuracies)), epochs_run=len(accuracies),
    )  # fmt: skip


def preset_race(target: float, preset: str, *, poll_seconds: float = 0.5) -> Race:
    """A preset on the full copy through the worker's own code (run_experiment, as a task
    runs it, recording into the bench's scratch database), cancelled through the database
    once an epoch's validation accuracy reaches ``target``, as a user watching would."""
    import threading

    from app.core.presets import PRESETS
    from worker.runner import describe_device, run_experiment

    spec = PRESETS[preset].spec.model_copy(deep=True)
    spec.hyperparameters.train_size = None
    spec.hyperparameters.test_size = None
    started = time.perf_counter()
    with session_scope() as session:
        experiment_id = crud.create_experiment(session=session, spec=spec).id
        lease = crud.claim_experiment(
            session=session, experiment_id=experiment_id, worker_host="bench",
            device=describe_device(),
        )  # fmt: skip
    if lease is None:
        raise RuntimeError(f"bench experiment {experiment_id} could not be claimed")
    reached: list[tuple[int, float]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(poll_seconds):
            with session_scope() as session:
                rows = crud.list_epochs(session=session, experiment_id=experiment_id)
                hit = next((r for r in rows if (r.val_accuracy or 0.0) >= target), None)
                if hit is not None:
                    reached.append((hit.epoch, time.perf_counter() - started))
                    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
                    if experiment is not None:
                        crud.request_cancel(session=session, experiment=experiment)
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run_experiment(lease=lease, spec=spec, settings=get_settings())
    finally:
        done.set()
        watcher.join()
    with session_scope() as session:
        rows = crud.list_epochs(session=session, experiment_id=experiment_id)
    epoch, seconds = reached[0] if reached else (None, None)
    if epoch is None:  # reached in the last epoch, after the watcher's last look
        hit = next((r for r in rows if (r.val_accuracy or 0.0) >= target), None)
        if hit is not None:
            epoch, seconds = hit.epoch, time.perf_counter() - started
    return Race(
        contender=preset, reached_epoch=epoch, seconds=seconds,
        training_seconds=sum(r.seconds or 0.0 for r in rows if r.epoch <= epoch)
        if epoch else None,
        best_val_accuracy=max((r.val_accuracy or 0.0) for r in rows) if rows else 0.0,
        epochs_run=len(rows),
    )  # fmt: skip


def accuracy_benchmark(
    *, target: float, presets: list[str], plain_epochs: int, seed: int
) -> dict[str, Any]:
    """Each preset, then the plain script, to ``target`` validation accuracy."""
    from app.core.presets import PRESETS

    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown presets {unknown}; choose from {', '.join(PRESETS)}")
    races = [preset_race(target, preset) for preset in presets]
    races.append(plain_keras_race(target, epochs=plain_epochs, seed=seed))
    return {
        "target_val_accuracy": target, "cpu": cpu_features(),
        "races": [race.__dict__ for race in races],
    }  # fmt: skip
