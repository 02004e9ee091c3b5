"""Epoch checkpoints: an interrupted run resumes from its last whole epoch, exactly.

A checkpoint holds what the next epoch depends on: the model with its compiled optimizer
(Adam's moments, the step count, a learning rate that a plateau cut), the states of the
model's random seed generators (Dropout's masks), and the schedule callbacks' counters and
best weights. Its files are named by epoch and ``checkpoint.json``, replaced last, names the
epoch they hold, so a crash between two renames never pairs one epoch's model with
another's state. Only the attempt holding the run puts files in place (``guard``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from worker.schedule import Resumable, ResumableEarlyStopping, State

logger = logging.getLogger(__name__)

Guard = Callable[[], AbstractContextManager[None]]
"""Entered around the renames that publish a file; raises when this attempt lost the run."""

SEED_STATE = "seed_generator_state"
BEST_WEIGHTS = "early_stopping.best_weights"


@dataclass(frozen=True)
class ResumePoint:
    """Where training stands: epochs completed so far (over all phases) and the phase."""

    epochs_done: int = 0
    phase: str = "train"
    phase_one_epochs: int | None = None  # known once the frozen-base phase has ended
    schedule: dict[str, State] = field(default_factory=dict)  # by the callback's key


@dataclass
class Resumed:
    """A loaded checkpoint: the compiled model, where it stands, and EarlyStopping's best."""

    model: keras.Model
    point: ResumePoint
    best_weights: list[np.ndarray] | None


def write_beside(path: Path, write: Callable[[Path], object], suffix: str) -> Path:
    """Writes a temporary file beside ``path`` (same filesystem: ``os.replace`` is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=suffix, delete=False) as tmp:
        temporary = Path(tmp.name)
    try:
        write(temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def save_model_beside(model: keras.Model, path: Path) -> Path:
    """The model in a temporary file beside ``path``, to be renamed onto it by the caller."""
    return write_beside(path, model.save, ".keras")


def _seed_states(model: keras.Model) -> list[keras.Variable]:
    """Keras does not save these with the model; without them Dropout's masks start over."""
    return [v for v in model.non_trainable_variables if v.name == SEED_STATE]


class Checkpoint:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_path = directory / "checkpoint.json"

    def _paths(self, epochs_done: int) -> tuple[Path, Path]:
        stem = self.directory / f"checkpoint-{epochs_done}"
        return stem.with_suffix(".keras"), stem.with_suffix(".npz")

    def save(
        self,
        model: keras.Model,
        point: ResumePoint,
        guard: Guard,
        best_weights: list[np.ndarray] | None = None,
    ) -> None:
        model_path, arrays_path = self._paths(point.epochs_done)
        arrays = {f"{SEED_STATE}.{i}": np.asarray(v) for i, v in enumerate(_seed_states(model))}
        for i, weight in enumerate(best_weights or []):
            arrays[f"{BEST_WEIGHTS}.{i}"] = weight
        staged = [
            (save_model_beside(model, model_path), model_path),
            (write_beside(arrays_path, lambda p: _save_arrays(p, arrays), ".npz"), arrays_path),
            (write_beside(self.state_path, lambda p: p.write_text(_dump(point)), ".json"),
             self.state_path),
        ]  # fmt: skip
        try:
            with guard():
                for temporary, target in staged:  # the state file last: it names the others
                    os.replace(temporary, target)
        finally:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
        self._remove_all_but(point.epochs_done)

    def load(self) -> Resumed | None:
        if not self.state_path.is_file():
            return None
        point = ResumePoint(**json.loads(self.state_path.read_text()))
        model_path, arrays_path = self._paths(point.epochs_done)
        if not (model_path.is_file() and arrays_path.is_file()):
            # Written before checkpoints were named by epoch: not exact, so start over.
            logger.warning("%s names no epoch files; the run starts over", self.state_path)
            return None
        model = keras.models.load_model(model_path)
        with np.load(arrays_path) as stored:
            arrays = dict(stored)
        for i, variable in enumerate(_seed_states(model)):
            variable.assign(arrays[f"{SEED_STATE}.{i}"])
        best = [arrays[f"{BEST_WEIGHTS}.{i}"] for i in range(_count(arrays, BEST_WEIGHTS))]
        return Resumed(model=model, point=point, best_weights=best or None)

    def clear(self) -> None:
        self.state_path.unlink(missing_ok=True)
        self._remove_all_but(None)

    def _remove_all_but(self, epochs_done: int | None) -> None:
        keep = set(self._paths(epochs_done)) if epochs_done is not None else set()
        for path in self.directory.glob("checkpoint-*"):
            if path not in keep:
                path.unlink(missing_ok=True)


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as file:
        np.savez(file, **arrays)  # type: ignore[arg-type]  # numpy's stub types allow_pickle


def _dump(point: ResumePoint) -> str:
    return json.dumps(asdict(point))


def _count(arrays: dict[str, np.ndarray], prefix: str) -> int:
    return sum(1 for key in arrays if key.startswith(f"{prefix}."))


class CheckpointCallback(keras.callbacks.Callback):
    """Saves after every whole epoch; an epoch cut short by a cancel is not a resume point.

    Listed after the schedule callbacks, so it saves their counters as this epoch left them."""

    def __init__(
        self, checkpoint: Checkpoint, guard: Guard, *, steps_per_epoch: int, phase: str,
        phase_one_epochs: int | None, schedule: list[Resumable],
    ) -> None:  # fmt: skip
        super().__init__()
        self.checkpoint = checkpoint
        self.guard = guard
        self.steps_per_epoch = steps_per_epoch
        self.phase = phase
        self.phase_one_epochs = phase_one_epochs
        self.schedule = schedule
        self._batches = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._batches < self.steps_per_epoch:
            return
        states = {callback.key: callback.state() for callback in self.schedule}
        point = ResumePoint(epoch + 1, self.phase, self.phase_one_epochs, states)
        best = next(
            (c.best_weights for c in self.schedule if isinstance(c, ResumableEarlyStopping)), None
        )
        self.checkpoint.save(self.model, point, self.guard, best)
