"""Augmentation changes training batches only as asked: labels stay distributions."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from app.core.schemas import parse_spec
from worker.augmentation import build_augmenter, cutmix, cutout, mixup
from worker.pipeline import make_dataset


def hyperparameters(**values: object):
    return parse_spec(
        {"name": "a", "model": "custom_cnn", "hyperparameters": values}
    ).hyperparameters


def batch(size: int = 16) -> tuple[tf.Tensor, tf.Tensor]:
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (size, 32, 32, 3)), tf.float32)
    labels = tf.one_hot(np.arange(size) % 10, 10)
    return images, labels


def test_no_augmentation_means_no_augmenter() -> None:
    assert build_augmenter(hyperparameters()) is None


@pytest.mark.parametrize("mix", [mixup, cutmix])
def test_mixing_keeps_labels_distributions_and_pixels_in_range(mix) -> None:
    images, labels = batch()
    mixed_images, mixed_labels = mix(images, labels, 1.0)
    sums = tf.reduce_sum(mixed_labels, axis=1).numpy()
    assert np.allclose(sums, 1.0, atol=1e-5)
    assert mixed_images.shape == images.shape
    assert 0 <= float(tf.reduce_min(mixed_images)) and float(tf.reduce_max(mixed_images)) <= 255
    assert (tf.reduce_max(mixed_labels, axis=1).numpy() < 1.0 - 1e-6).any()


def test_flip_changes_training_batches_not_validation() -> None:
    images = np.zeros((8, 32, 32, 3), np.uint8)
    images[:, :, :16] = 255  # left half white: a flip moves it right
    labels = np.arange(8) % 10
    hp = hyperparameters(augment_flip=True, seed=3)
    seen = set()
    for _ in range(4):
        augmented = make_dataset(images, labels, batch_size=8, image_size=32, shuffle=False,
                                 seed=0, augment=build_augmenter(hp))  # fmt: skip
        first = next(iter(augmented))[0].numpy()
        seen.update(float(x) for x in first[:, 0, 0, 0])
    assert seen == {0.0, 255.0}
    plain = next(iter(make_dataset(images, labels, batch_size=8, image_size=32, shuffle=False,
                                   seed=0)))[0].numpy()  # fmt: skip
    assert (plain[:, 0, 0, 0] == 255).all()


def test_cutout_paints_one_square_per_image_the_batch_mean_colour() -> None:
    images, _ = batch(64)
    mean = tf.reduce_mean(images, axis=[0, 1, 2]).numpy()
    holes = cutout(images, 8).numpy()
    painted = np.all(holes != images.numpy(), axis=-1)  # a random pixel matches in no channel
    assert np.allclose(holes[painted], mean, atol=1e-3)
    for mask in painted:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        # one box, at most 8 x 8 and at least the 4 x 4 left when it is centred on a corner
        assert mask.sum() == len(rows) * len(cols)
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8
    assert len({mask.tobytes() for mask in painted}) > 1  # each image has its own place


def test_cutout_alone_makes_an_augmenter_for_training_batches() -> None:
    augment = build_augmenter(hyperparameters(cutout=12))
    assert augment is not None
    images, labels = batch()
    holed, same_labels = augment(images, labels)
    changed = np.any(holed.numpy() != images.numpy(), axis=-1).sum(axis=(1, 2))
    assert (changed >= 36).all() and (changed <= 144).all()
    assert np.array_equal(same_labels.numpy(), labels.numpy())
