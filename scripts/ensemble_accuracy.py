"""Test accuracy of finished runs' models averaged together, each subset of them in turn.

    CIFARLAB_DATA_DIR=~/.cifarlab CIFARLAB_CIFAR10_PATH=../shared/datasets/cifar10-jpeg.tar.gz \
        .venv/bin/python scripts/ensemble_accuracy.py 4 5 2 3

Answers whether several short runs beat one long one in the same minutes (docs/benchmarks.md,
"What the JPEG copy costs, and what ensembles buy"). Each model predicts the full CIFAR-10 test
set with the six-view look (``flip_translate``, as the fast presets evaluate), and an
ensemble's prediction is the mean of its members' probabilities. The runs must have been
evaluated on the full test set, from the same source, for their figures to match their pages.
A benchmark, not a feature: models are loaded from the data directory's artifacts in Keras's
safe mode, as warm starts are.
"""

from __future__ import annotations

import argparse
import itertools

import keras
import numpy as np

import worker.builders  # noqa: F401  registers the fast family's layers for loading
from app.core.config import get_settings
from worker.data import load_cifar10
from worker.tta import tta_views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", type=int, nargs="+", help="ids of succeeded runs")
    args = parser.parse_args()
    settings = get_settings()
    data = load_cifar10(source=settings.cifar10_path, cache_dir=settings.dataset_cache_dir)
    probabilities = {}
    for experiment_id in args.experiments:
        path = settings.model_path(experiment_id)
        model = keras.models.load_model(path, safe_mode=True, compile=False)
        probabilities[experiment_id] = sum(
            weight * np.asarray(model.predict(view, batch_size=500, verbose=0))
            for view, weight in tta_views(data.x_test, "flip_translate")
        )
    for size in range(1, len(probabilities) + 1):
        for members in itertools.combinations(probabilities, size):
            mean = sum(probabilities[member] for member in members)
            accuracy = float(np.mean(np.argmax(mean, axis=1) == data.y_test))
            print(f"{' + '.join(map(str, members))}: {accuracy:.4f}")


if __name__ == "__main__":
    main()
