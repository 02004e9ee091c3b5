"""Test-time augmentation: the views of each test image whose predicted probabilities are
averaged into its prediction, and their weights."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from app.core.hyperparameters import TestTimeAugmentation

View = tuple[np.ndarray, float]
"""Images (N x H x W x 3, in the test set's order) and the weight of their probabilities."""


def tta_views(images: np.ndarray, augmentation: TestTimeAugmentation) -> Iterator[View]:
    """none: the images. flip: each image and its mirror, alike. flip_translate (airbench's
    level 2): half the weight on that pair, half on the pairs of the image shifted one pixel
    up-left and one down-right (reflected at the border), the shifts a network trained with
    translations has seen. The weights sum to 1; ``TEST_TIME_VIEWS`` counts the views.

    One view at a time: the caller predicts each and lets it go, so an evaluation holds one
    copy of the test set besides the original, not six."""
    if augmentation == "none":
        yield images, 1.0
        return
    yield from _pair(images, 0.5 if augmentation == "flip" else 0.25)
    if augmentation == "flip_translate":
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        yield from _pair(padded[:, :-2, :-2], 0.125)
        yield from _pair(padded[:, 2:, 2:], 0.125)


def _pair(images: np.ndarray, weight: float) -> Iterator[View]:
    yield np.ascontiguousarray(images), weight
    yield np.ascontiguousarray(images[:, :, ::-1]), weight


def weighted_prediction(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    augmentation: TestTimeAugmentation,
) -> np.ndarray:
    """Class probabilities of each image: ``predict``'s for each of its views, weighted and
    summed in float64. ``predict`` feeds a view to the model as its caller batches it (the
    worker through its tf.data pipeline, scripts/fast_recipe_gpu.py as arrays)."""
    views = tta_views(images, augmentation)
    return np.sum([weight * np.asarray(predict(view), np.float64) for view, weight in views], 0)
