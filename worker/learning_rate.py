"""Learning-rate schedules that set the rate of every step (plateau cuts: schedule.py)."""

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
