"""A fast preset trained on a GPU machine that has Keras's JAX backend but no TensorFlow.

The worker trains with Keras on TensorFlow; a machine lent for a GPU measurement may have JAX
and no TensorFlow (this project's has PyTorch and JAX, and TensorFlow's wheels are far larger
than what can be carried to it). Everything that decides the result is the worker's own: the
preset's validated spec, its images and split (worker.data), the network and its whitening
(worker.builders), the optimizer and loss (worker.compiling), the triangular schedule and the
lookahead (worker.learning_rate), BatchNorm's recalibration before each validation
(worker.recalibration) and the test-time views (worker.tta). Only the input pipeline is
written here, in NumPy, for the settings the fast presets use: alternating flips
(worker/pipeline.py's rule) and whole-pixel shifts with reflected borders (what the
worker's RandomTranslation with nearest interpolation draws). Precision is bfloat16: what
the GPU's tensor cores run without loss scaling (the worker's ``auto`` picks float16 there
under TensorFlow).

    CIFARLAB_CIFAR10_PATH=ARCHIVE KERAS_BACKEND=jax PYTHONPATH=. \\
        python scripts/fast_recipe_gpu.py --preset fast-93 [--set key=value ...]

It loads the images a worker would, through the same settings (CIFARLAB_CIFAR10_PATH, the
decoded cache in CIFARLAB_DATA_DIR), and prints each epoch's
validation accuracy and time, the training time (the epochs, validation included, as an
experiment's "Training time" counts them; the first epoch includes compiling), and the test
accuracy with the preset's test-time views. A benchmark, not a test (docs/benchmarks.md,
"The fast presets on a GPU").
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import keras
import numpy as np

from app.core.assignments import parse_assignments
from app.core.cifar10 import CLASS_COUNT
from app.core.config import get_settings
from app.core.hyperparameters import FastCnnHyperparameters
from app.core.presets import PRESETS
from app.core.schemas import ExperimentSpec, SpecError, parse_spec
from worker.builders import build_model
from worker.compiling import compile_for_phase
from worker.data import load_cifar10, prepare_data
from worker.learning_rate import Lookahead, TriangularSchedule
from worker.recalibration import RECALIBRATION_IMAGES, BatchNormRecalibration
from worker.tta import weighted_prediction


class FastBatches(keras.utils.PyDataset):
    """Batches of one epoch after another, in the worker's order of augmentation: each epoch
    its own seeded shuffle, alternating flips, then a shift of each image."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, hp: FastCnnHyperparameters):
        super().__init__(workers=8, use_multiprocessing=False, max_queue_size=16)
        self.images, self.hp = images, hp
        self.one_hot = np.eye(CLASS_COUNT, dtype=np.float32)[labels]
        self.first_flips = np.random.default_rng(hp.seed).integers(0, 2, len(images)) == 1
        self.epoch = 0
        self._plan()

    def _plan(self) -> None:
        rng = np.random.default_rng((self.hp.seed, self.epoch))
        self.order = rng.permutation(len(self.images))
        flips = self.first_flips if self.hp.augment_flip else np.zeros(len(self.images), bool)
        self.flips = flips[self.order] ^ (self.hp.flip_alternating and self.epoch % 2 == 1)
        # RandomTranslation(0.0625) draws a shift of up to 2 px, uniform, and its nearest
        # interpolation rounds it: -2 and 2 come half as often as -1, 0 and 1.
        reach = self.hp.augment_translate * 32
        drawn = rng.uniform(-reach, reach, (2, len(self.images)))
        self.shifts = np.rint(drawn).astype(int)

    def __len__(self) -> int:
        return -(-len(self.images) // self.hp.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part = slice(index * self.hp.batch_size, (index + 1) * self.hp.batch_size)
        chosen = self.order[part]
        batch = self.images[chosen]
        batch = np.where(self.flips[part, None, None, None], batch[:, :, ::-1], batch)
        reach = int(np.ceil(self.hp.augment_translate * 32))
        if reach:
            padded = np.pad(batch, ((0, 0), (reach, reach), (reach, reach), (0, 0)), "reflect")
            rows = reach + self.shifts[0, part, None] + np.arange(32)
            cols = reach + self.shifts[1, part, None] + np.arange(32)
            whole = np.arange(len(batch))[:, None, None]
            batch = padded[whole, rows[:, :, None], cols[:, None, :]]
        return batch.astype(np.float32), self.one_hot[chosen]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._plan()


class EpochClock(keras.callbacks.Callback):
    """Each epoch's wall time and validation accuracy, printed as it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self.started)
        accuracy = (logs or {}).get("val_accuracy", float("nan"))
        print(f"epoch {epoch + 1}: {self.seconds[-1]:.2f} s, validation {accuracy:.4f}", flush=True)


def fast_spec(preset: str, assignments: list[str]) -> ExperimentSpec:
    """The preset with ``--set`` values (read as JSON, else as text, as the CLI reads them),
    validated as the API would; refused where it asks for what this pipeline lacks."""
    base = PRESETS[preset].spec.model_dump(mode="json")
    try:
        base["hyperparameters"].update(parse_assignments(assignments))
    except ValueError as error:  # not key=value, or a key given twice
        raise SystemExit(str(error)) from None
    try:
        spec = parse_spec(base)
    except SpecError as error:
        raise SystemExit(f"--set: {error}") from None
    hp = spec.hyperparameters
    if not isinstance(hp, FastCnnHyperparameters):
        raise SystemExit(f"{preset} trains {spec.model}; this script trains the fast family")
    unsupported = {
        "crop_epochs": hp.crop_epochs, "cutout": hp.cutout, "augment_rotation":
        hp.augment_rotation, "augment_zoom": hp.augment_zoom, "augment_contrast":
        hp.augment_contrast, "mix": hp.mix != "none", "reduce_lr_on_plateau":
        hp.reduce_lr_on_plateau, "early_stopping": hp.early_stopping,
    }  # fmt: skip
    if named := [name for name, value in unsupported.items() if value]:
        raise SystemExit(f"this pipeline has no {', '.join(named)}: set them off or to 0")
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast-93", choices=[p for p in PRESETS if "fast" in p])
    parser.add_argument("--set", action="append", default=[], dest="assignments")
    args = parser.parse_args()
    spec = fast_spec(args.preset, args.assignments)
    hp = spec.hyperparameters
    assert isinstance(hp, FastCnnHyperparameters)  # fast_spec refuses the others
    print(f"Keras {keras.__version__} on {keras.backend.backend()}: {spec.model}", flush=True)
    keras.utils.set_random_seed(hp.seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")

    launched = time.perf_counter()
    settings = get_settings()
    dataset = load_cifar10(source=settings.cifar10_path, cache_dir=settings.dataset_cache_dir)
    training, test = prepare_data(spec, dataset)
    model = build_model(spec, settings, training.x_train)
    batches = FastBatches(training.x_train, training.y_train, hp)
    total_steps = len(batches) * hp.epochs
    compile_for_phase(model, hp, TriangularSchedule(hp.learning_rate, total_steps))
    calibrating = training.x_train[:RECALIBRATION_IMAGES].astype(np.float32)
    recalibration = [
        (calibrating[i : i + hp.batch_size], None)
        for i in range(0, len(calibrating), hp.batch_size)
    ]
    validation = (training.x_val.astype(np.float32),
                  np.eye(CLASS_COUNT, dtype=np.float32)[training.y_val])  # fmt: skip
    clock = EpochClock()
    averaging = [Lookahead(total_steps)] if hp.lookahead else []
    ready = time.perf_counter()
    model.fit(
        batches, epochs=hp.epochs, validation_data=validation,
        validation_batch_size=hp.batch_size,
        callbacks=[*averaging, BatchNormRecalibration(recalibration), clock], verbose=0,
    )  # fmt: skip
    trained = time.perf_counter()
    probabilities = weighted_prediction(
        lambda view: model.predict(view.astype(np.float32), batch_size=1000, verbose=0),
        test.x_test, hp.test_time_augmentation,
    )  # fmt: skip
    accuracy = float((probabilities.argmax(1) == test.y_test).mean())
    done = time.perf_counter()
    print(
        f"{args.preset} {' '.join(args.assignments)}: test accuracy {accuracy:.4f} "
        f"({hp.test_time_augmentation} views); training {trained - ready:.1f} s "
        f"(epochs {sum(clock.seconds):.1f} s, first {clock.seconds[0]:.1f} s); "
        f"data and model {ready - launched:.1f} s; test {done - trained:.1f} s; "
        f"launch to result {done - launched:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
