"""tf.data pipelines over the uint8 arrays worker/data.py loads: shuffled, flipped, augmented,
cast, resized and cropped batch by batch, so the whole set is never expanded in memory."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from worker.augmentation import Augmenter
from worker.data import check_labels


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    image_size: int,
    shuffle: bool,
    seed: int,
    num_classes: int = 10,
    augment: Augmenter | None = None,
    first_epoch: int = 0,
    epochs: int = 1,
    alternating_flip: bool = False,
    crop_epochs: int = 0,
    crop_size: int = 0,
    one_at_a_time: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 pixels in 0..255, one-hot labels); models rescale pixels themselves.

    The pipeline shuffles and batches indices, then gathers, casts and resizes each batch, so
    the uint8 images are held once and never expanded to float32 or to the model's size as a
    whole.

    Shuffled, it yields ``epochs`` passes one after another (fit them with ``steps_per_epoch``),
    each in an order that depends only on (seed, epoch), epochs counted from 0: a run resumed
    at ``first_epoch`` sees the very batches an uninterrupted run would.

    ``alternating_flip`` mirrors each image at random (seeded) in epoch 0 and then the other
    way from the epoch before in every later one (airbench's alternating flip): two epochs in a
    row always see both views of every image, where independent coin flips repeat a view for
    half the images. It is a function of (seed, image, epoch), so resumes see the same views.

    ``crop_epochs``: in the epochs before this one (shuffled pipelines only), each image is
    cut to a ``crop_size`` square at a random place, after the augmenter: cheaper epochs for a
    network that takes any size (the fast family). The places are a function of (seed, epoch,
    batch), so a resumed run crops as an uninterrupted one did.

    ``one_at_a_time`` prepares the batches one after another instead of in parallel. Under
    TensorFlow's deterministic kernels a random augmenter (Keras's layers keep their generator's
    state) must run that way, and TensorFlow rewrites a parallel request into it; asking for it
    directly skips the rewrite, which in TensorFlow 2.21 logs a spurious error ("NodeDef
    mentions attribute use_unbounded_threadpool") into the run's and `cifarlab up`'s log.
    """
    labels = _check_pipeline_inputs(images, labels, batch_size, image_size, num_classes)
    pixels = tf.constant(images)
    classes = tf.constant(labels)
    count = len(images)

    # Each image's view in epoch 0; made only for the pipelines that flip.
    first_flips = (
        tf.constant(np.random.default_rng(seed).integers(0, 2, count).astype(bool))
        if alternating_flip
        else None
    )

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        pair = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), pair)
        flips = tf.zeros_like(order, tf.bool)
        if first_flips is not None:
            flips = tf.not_equal(tf.gather(first_flips, order), tf.equal(epoch % 2, 1))
        batched = tf.data.Dataset.from_tensor_slices((order, flips)).batch(batch_size)
        return batched.enumerate().map(
            lambda number, batch: (
                *batch,
                tf.random.experimental.stateless_fold_in(pair, number),
                epoch < crop_epochs,
            )
        )

    if shuffle:
        epoch_numbers = tf.data.Dataset.range(first_epoch, first_epoch + epochs)
        batches = epoch_numbers.flat_map(epoch_order)
    else:
        batches = tf.data.Dataset.range(count).batch(batch_size)
        no_crop = (tf.zeros([2], tf.int64), tf.constant(False))
        batches = batches.map(lambda indices: (indices, tf.zeros_like(indices, tf.bool), *no_crop))

    def prepare(
        indices: tf.Tensor, flips: tf.Tensor, crop_seed: tf.Tensor, crop: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.cast(tf.gather(pixels, indices), tf.float32)
        if alternating_flip:
            batch = tf.where(flips[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
        one_hot = tf.one_hot(tf.gather(classes, indices), num_classes, dtype=tf.float32)
        if augment is not None:
            batch, one_hot = augment(batch, one_hot)
        if images.shape[1:3] != (image_size, image_size):
            batch = tf.image.resize(batch, (image_size, image_size), method="bilinear")
        if shuffle and crop_epochs:  # else every batch keeps its static shape
            whole = batch
            batch = tf.cond(crop, lambda: random_crops(whole, crop_size, crop_seed), lambda: whole)
        return batch, one_hot

    dataset = batches.map(prepare, num_parallel_calls=None if one_at_a_time else tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def random_crops(batch: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """Each image of ``batch`` (N x side x side x C) cut to its own ``size`` square, at a place
    drawn from ``seed`` (a stateless seed pair): rows, then columns, gathered per image."""
    count, side = tf.shape(batch)[0], tf.shape(batch)[1]
    corners = tf.random.stateless_uniform([count, 2], seed, 0, side - size + 1, tf.int32)
    steps = tf.range(size)
    rows = tf.gather(batch, corners[:, :1] + steps, axis=1, batch_dims=1)
    return tf.gather(rows, corners[:, 1:] + steps, axis=2, batch_dims=1)


def _check_pipeline_inputs(
    images: np.ndarray, labels: np.ndarray, batch_size: int, image_size: int, num_classes: int
) -> np.ndarray:
    labels = check_labels(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"images must be uint8 (N, height, width, 3), got {images.dtype} {images.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if batch_size < 1 or image_size < 1:
        raise ValueError(f"batch_size={batch_size} and image_size={image_size} must be >= 1")
    if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1} (num_classes={num_classes})")
    return labels
