"""Step-by-step rules of the fast family: the learning rate of every step (plateau cuts live
in schedule.py) and the lookahead average of the weights."""

from __future__ import annotations

from typing import Any

import keras

TRIANGLE_START = 0.2
TRIANGLE_PEAK_AT = 0.2
TRIANGLE_END = 0.07
"""airbench's triangle: start at 0.2x the peak so the first large-batch steps do not blow up
the fresh BatchNorm statistics, peak after a fifth of the steps, and end at 0.07x rather than
0 so the last steps still move the weights the average is taken over."""


@keras.saving.register_keras_serializable(package="cifarlab")
class TriangularSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear from ``TRIANGLE_START x peak`` up to ``peak`` at ``TRIANGLE_PEAK_AT`` of
    ``total_steps``, then linear down to ``TRIANGLE_END x peak`` at the last step.

    It reads only the optimizer's step count, which a checkpoint keeps, so a resumed run
    continues on the same line. Registered, so the saved model loads in safe mode."""

    def __init__(self, peak: float, total_steps: int) -> None:
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)

    def __call__(self, step: Any) -> Any:
        fraction = keras.ops.cast(step, "float32") / self.total_steps
        rising = TRIANGLE_START + (1 - TRIANGLE_START) * fraction / TRIANGLE_PEAK_AT
        falling = 1 + (TRIANGLE_END - 1) * (fraction - TRIANGLE_PEAK_AT) / (1 - TRIANGLE_PEAK_AT)
        factor = keras.ops.where(fraction < TRIANGLE_PEAK_AT, rising, falling)
        return self.peak * keras.ops.maximum(factor, TRIANGLE_END)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps}


LOOKAHEAD_EVERY = 5
LOOKAHEAD_KEEP = 0.95**LOOKAHEAD_EVERY
"""airbench's lookahead: every 5 steps the slow weights keep at most 0.95**5 of themselves."""


class Lookahead(keras.callbacks.Callback):
    """Every ``LOOKAHEAD_EVERY`` steps the slow copy of all the weights (BatchNorm statistics
    included) moves toward the trained ones, keeping a share that grows with the cube of
    the progress (0 at the start, ``LOOKAHEAD_KEEP`` at the end), and training continues from
    it; the last step hands the slow copy to the model. Early on it is plain training; at
    the end, where the falling learning rate makes the steps noisy rather than useful, the
    model is an average of them.

    The slow copy lives in memory only: a resumed run starts it afresh from the resumed
    weights, so a resumed fast run is close to, not bit for bit, an uninterrupted one."""

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total_steps = max(int(total_steps), 1)
        self.slow: list[Any] | None = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step % LOOKAHEAD_EVERY and step < self.total_steps:
            return
        fast = self.model.get_weights()
        if self.slow is None:
            self.slow = fast
            return
        keep = 1.0 if step >= self.total_steps else LOOKAHEAD_KEEP * (step / self.total_steps) ** 3
        self.slow = [keep * s + (1 - keep) * f for s, f in zip(self.slow, fast, strict=True)]
        self.model.set_weights(self.slow)
