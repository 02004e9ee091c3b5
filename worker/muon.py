"""Muon for the fast family's convolution filters, Nesterov SGD for its other weights
(``optimizer=muon``), after airbench94_muon (Jordan et al., 2024).

A filter bank is a matrix (taps x output channels). Muon replaces its Nesterov step by the
nearest semi-orthogonal matrix, found by a few Newton-Schulz iterations: every direction of
the step moves by about as much, so the rare directions a plain gradient step barely moves
learn as fast as the common ones, and a short run gets further (docs/benchmarks.md: ahead of
SGD at four epochs, level at 21 of the narrow network). Each bank is also rescaled to
a fixed norm before its step. The BatchNorm after every convolution makes the network blind
to that scale, so the step is a fixed fraction of the filters rather than a size that drifts
with their norm, and no weight decay is needed on them."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
"""The quintic iteration's coefficients, chosen (by airbench94_muon) to push small singular
values up fast rather than to converge exactly: three iterations leave the singular values
between about 0.7 and 1.2 rather than at 1, which trains as well as the exact answer."""
NEWTON_SCHULZ_STEPS = 3


def orthogonalise(matrix: Any) -> Any:
    """About ``U V^T`` of ``matrix = U S V^T``: the same directions, every singular value near 1."""
    a, b, c = NEWTON_SCHULZ
    tall = matrix.shape[0] > matrix.shape[1]
    x = ops.transpose(matrix) if tall else matrix  # iterate on the smaller Gram matrix
    x = x / (ops.sqrt(ops.sum(ops.square(x))) + 1e-7)  # every singular value at most 1
    for _ in range(NEWTON_SCHULZ_STEPS):
        gram = ops.matmul(x, ops.transpose(x))
        x = a * x + ops.matmul(b * gram + c * ops.matmul(gram, gram), x)
    return ops.transpose(x) if tall else x


@keras.saving.register_keras_serializable(package="cifarlab")
class Muon(keras.optimizers.Optimizer):
    """Muon on every convolution kernel (rank 4); Nesterov SGD with decoupled weight decay, as
    Keras's ``SGD(nesterov=True)`` takes it, on the rest.

    Both follow the one learning-rate schedule: a kernel's step is ``filter_learning_rate /
    peak`` times the scheduled rate, so the filters' triangle has the same shape as the
    others'. Registered, so a checkpoint's optimizer loads in safe mode."""

    def __init__(
        self,
        learning_rate: Any,
        *,
        peak_learning_rate: float,
        filter_learning_rate: float,
        momentum: float,
        filter_momentum: float,
        weight_decay_rate: float,
        name: str = "muon",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.peak_learning_rate = peak_learning_rate
        self.filter_learning_rate = filter_learning_rate
        self.momentum = momentum
        self.filter_momentum = filter_momentum
        self.weight_decay_rate = weight_decay_rate

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self.velocities = [self.add_variable_from_reference(v, "velocity") for v in variables]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self.velocities[self._get_variable_index(variable)]
        if len(variable.shape) == 4:
            self._filter_step(gradient, variable, velocity, learning_rate)
            return
        if self.weight_decay_rate:
            self.assign_sub(variable, variable * (self.weight_decay_rate * learning_rate))
        self.assign(velocity, self.momentum * velocity - learning_rate * gradient)
        self.assign_add(variable, self.momentum * velocity - learning_rate * gradient)

    def _filter_step(self, gradient: Any, kernel: Any, velocity: Any, learning_rate: Any) -> None:
        self.assign(velocity, self.filter_momentum * velocity + gradient)
        nesterov = gradient + self.filter_momentum * velocity
        outputs = kernel.shape[-1]
        direction = ops.reshape(orthogonalise(ops.reshape(nesterov, (-1, outputs))), kernel.shape)
        # Norm sqrt(outputs): each output channel's filter has norm 1 on average.
        self.assign(kernel, kernel * (outputs**0.5 / ops.sqrt(ops.sum(ops.square(kernel)))))
        step = learning_rate * (self.filter_learning_rate / self.peak_learning_rate)
        self.assign_sub(kernel, step * direction)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "peak_learning_rate": self.peak_learning_rate,
            "filter_learning_rate": self.filter_learning_rate,
            "momentum": self.momentum,
            "filter_momentum": self.filter_momentum,
            "weight_decay_rate": self.weight_decay_rate,
        }
