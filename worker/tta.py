"""Test-time augmentation: the views of each test image whose predicted probabilities are
averaged into its prediction, and their weights."""

from __future__ import annotations

import numpy as np

from app.core.hyperparameters import TEST_TIME_VIEWS, TestTimeAugmentation

View = tuple[np.ndarray, float]
"""Images (N x H x W x 3, in the test set's order) and the weight of their probabilities."""


def tta_views(images: np.ndarray, augmentation: TestTimeAugmentation) -> list[View]:
    """none: the images. flip: each image and its mirror, alike. flip_translate (airbench's
    level 2): half the weight on that pair, half on the pairs of the image shifted one pixel
    up-left and one down-right (reflected at the border), the shifts a network trained with
    translations has seen. The weights sum to 1."""
    if augmentation == "none":
        return [(images, 1.0)]
    pairs = [_pair(images)]
    if augmentation == "flip_translate":
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        pairs += [_pair(padded[:, :-2, :-2]), _pair(padded[:, 2:, 2:])]
    weights = [0.5] if len(pairs) == 1 else [0.25, 0.125, 0.125]
    views = [(view, weight) for pair, weight in zip(pairs, weights, strict=True) for view in pair]
    assert len(views) == TEST_TIME_VIEWS[augmentation]
    return views


def _pair(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(images), np.ascontiguousarray(images[:, :, ::-1])
