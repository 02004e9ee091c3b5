"""Images a second the fast family's network trains, the model alone (no data pipeline).

    .venv/bin/python scripts/fast_step_rate.py --size 32 --widths 32,128,128 --activation gelu
    .venv/bin/python scripts/fast_step_rate.py ... --keras-batchnorm   # Keras's own layer

Each step is ``train_on_batch`` on one fixed batch, in the precision the worker picks for the
family's defaults (``precision_policy``: bfloat16 on a CPU that has it); the first three
steps (tracing) are not timed. With ``--keras-batchnorm`` the network is built with
``keras.layers.BatchNormalization`` in place of the fused layer, for the comparison in
docs/benchmarks.md ("BatchNorm in one kernel").
"""

from __future__ import annotations

import argparse
import time
import typing
from unittest import mock

import keras
import numpy as np

from app.core.hyperparameters import FastCnnHyperparameters
from worker import architectures
from worker.training import precision_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--widths", default="64,256,256", help="the three blocks' filters")
    defaults = FastCnnHyperparameters()
    activations = typing.get_args(FastCnnHyperparameters.model_fields["activation"].annotation)
    parser.add_argument("--activation", default=defaults.activation, choices=activations)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--keras-batchnorm", action="store_true")
    args = parser.parse_args()

    first, second, third = (int(w) for w in args.widths.split(","))
    keras.mixed_precision.set_global_policy(precision_policy(defaults))
    keras_layer = keras.layers.BatchNormalization
    norm_layer = keras_layer if args.keras_batchnorm else architectures.FusedBatchNormalization
    with mock.patch.object(architectures, "FusedBatchNormalization", norm_layer):
        model = architectures.build_fast_cnn(
            num_classes=10,
            widths=(first, second, third),
            batchnorm_momentum=defaults.batchnorm_momentum,
            activation=args.activation,
        )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=defaults.momentum, nesterov=True),
                  loss="categorical_crossentropy")  # fmt: skip
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype(np.float32)
    labels = keras.utils.to_categorical(rng.integers(0, 10, args.batch), 10)
    for _ in range(3):
        model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(images, labels)
    rate = args.steps * args.batch / (time.perf_counter() - start)
    norm = "keras" if args.keras_batchnorm else "fused"
    print(f"{args.size} px, {args.widths}, {args.activation}, {norm} BatchNorm, "
          f"batch {args.batch}: {rate:,.0f} images/s")  # fmt: skip


if __name__ == "__main__":
    main()
