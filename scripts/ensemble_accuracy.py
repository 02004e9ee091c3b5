"""Test accuracy of finished runs' models averaged together, each subset of them in turn.

    CIFARLAB_DATA_DIR=~/.cifarlab CIFARLAB_CIFAR10_PATH=../shared/datasets/cifar10-jpeg.tar.gz \
        .venv/bin/python scripts/ensemble_accuracy.py 4 5 2 3

Answers whether several short runs beat one long one in the same minutes (docs/benchmarks.md,
"What the JPEG copy costs, and what ensembles buy"). Each model predicts its run's test set
the way its evaluation did (``worker.runner.predict_test_set``, with the run's own spec), so a
run alone scores what its page shows, and an ensemble's prediction is the mean of its
members' probabilities. The runs must share a test set. A benchmark, not a feature: models
are loaded from the data directory's artifacts in Keras's safe mode, as warm starts are.
"""

from __future__ import annotations

import argparse
import itertools

import keras
import numpy as np

from app.core import crud
from app.core.config import get_settings
from app.core.db import session_scope
from app.core.schemas import parse_spec
from worker.data import load_cifar10, prepare_data
from worker.evaluation import fingerprint_test_set
from worker.runner import predict_test_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", type=int, nargs="+", help="ids of succeeded runs")
    args = parser.parse_args()
    settings = get_settings()
    dataset = load_cifar10(source=settings.cifar10_path, cache_dir=settings.dataset_cache_dir)
    probabilities, test_sets, labels = {}, set(), np.empty(0)
    for experiment_id in args.experiments:
        with session_scope() as session:
            experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
            if experiment is None:
                parser.error(f"no experiment {experiment_id}")
            spec = parse_spec(experiment.spec)
        _, test = prepare_data(spec, dataset)
        test_sets.add(fingerprint_test_set(test.x_test, test.y_test))
        labels = test.y_test
        model = keras.models.load_model(
            settings.model_path(experiment_id), safe_mode=True, compile=False
        )
        probabilities[experiment_id] = predict_test_set(model, test, spec.hyperparameters)
    if len(test_sets) > 1:
        parser.error("the runs were tested on different images: their probabilities do not add")
    for size in range(1, len(probabilities) + 1):
        for members in itertools.combinations(probabilities, size):
            mean = sum(probabilities[member] for member in members)
            accuracy = float(np.mean(np.argmax(mean, axis=1) == labels))
            print(f"{' + '.join(map(str, members))}: {accuracy:.4f}")


if __name__ == "__main__":
    main()
