"""Epoch checkpoints: an interrupted run resumes from its last whole epoch."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras


@dataclass(frozen=True)
class ResumePoint:
    """Where training stands: epochs completed so far (over all phases) and the phase."""

    epochs_done: int = 0
    phase: str = "train"
    phase_one_epochs: int | None = None  # known once the frozen-base phase has ended


def save_model_atomically(model: keras.Model, path: Path) -> None:
    """Write beside the target, then rename: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".keras", delete=False) as tmp:
        temporary = Path(tmp.name)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class Checkpoint:
    def __init__(self, directory: Path) -> None:
        self.model_path = directory / "checkpoint.keras"
        self.state_path = directory / "checkpoint.json"

    def save(self, model: keras.Model, point: ResumePoint) -> None:
        # The model first: a state file never points past the model it describes.
        save_model_atomically(model, self.model_path)
        temporary = self.state_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(point)))
        os.replace(temporary, self.state_path)

    def load(self) -> tuple[keras.Model, ResumePoint] | None:
        if not (self.model_path.is_file() and self.state_path.is_file()):
            return None
        point = ResumePoint(**json.loads(self.state_path.read_text()))
        return keras.models.load_model(self.model_path), point

    def clear(self) -> None:
        self.model_path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)


class CheckpointCallback(keras.callbacks.Callback):
    """Saves after every whole epoch; an epoch cut short by a cancel is not a resume point."""

    def __init__(
        self, checkpoint: Checkpoint, *, steps_per_epoch: int, phase: str,
        phase_one_epochs: int | None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.checkpoint = checkpoint
        self.steps_per_epoch = steps_per_epoch
        self.phase = phase
        self.phase_one_epochs = phase_one_epochs
        self._batches = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._batches < self.steps_per_epoch:
            return
        point = ResumePoint(epoch + 1, self.phase, self.phase_one_epochs)
        self.checkpoint.save(self.model, point)
