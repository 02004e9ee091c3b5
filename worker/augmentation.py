"""Per-batch data augmentation for the training pipeline (never for validation or test).

Geometric and colour changes and Cutout run at the stored 32 px, before any resize, where they
cost a sixteenth of what they would at 128 px. MixUp and CutMix blend labels too, so they run after
the labels are one-hot.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from app.core.hyperparameters import TrainingHyperparameters

Augmenter = Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


def build_augmenter(hp: TrainingHyperparameters) -> Augmenter | None:
    """None when the spec asks for no augmentation, so the pipeline stays as fast as it can."""
    image_layers = _image_layers(hp)
    if not image_layers and not hp.cutout and hp.mix == "none":
        return None
    pipeline = keras.Sequential(image_layers) if image_layers else None

    def augment(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if pipeline is not None:
            images = pipeline(images, training=True)
        if hp.cutout:
            images = cutout(images, hp.cutout)
        if hp.mix == "mixup":
            return mixup(images, labels, hp.mix_alpha)
        if hp.mix == "cutmix":
            return cutmix(images, labels, hp.mix_alpha)
        return images, labels

    return augment


def _image_layers(hp: TrainingHyperparameters) -> list[keras.Layer]:
    seed = hp.seed
    found: list[keras.Layer] = []
    if hp.augment_flip and not hp.flip_alternating:  # alternating flips: worker/data.py
        found.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if hp.augment_translate:
        # Nearest, not bilinear: a shift by whole pixels moves the image without blurring it.
        found.append(
            keras.layers.RandomTranslation(
                hp.augment_translate, hp.augment_translate, fill_mode="reflect",
                interpolation="nearest", seed=seed,
            )
        )  # fmt: skip
    if hp.augment_rotation:
        found.append(
            keras.layers.RandomRotation(hp.augment_rotation, fill_mode="reflect", seed=seed)
        )
    if hp.augment_zoom:
        found.append(keras.layers.RandomZoom(hp.augment_zoom, fill_mode="reflect", seed=seed))
    if hp.augment_contrast:
        found.append(keras.layers.RandomContrast(hp.augment_contrast, seed=seed))
    return found


def _beta(alpha: float, size: tf.Tensor) -> tf.Tensor:
    first = tf.random.gamma([size], alpha)
    second = tf.random.gamma([size], alpha)
    return first / (first + second)


def mixup(images: tf.Tensor, labels: tf.Tensor, alpha: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Each image and its label become a Beta-weighted blend with another image of the batch."""
    size = tf.shape(images)[0]
    ratio = _beta(alpha, size)
    partner = tf.random.shuffle(tf.range(size))
    image_ratio = tf.reshape(ratio, [-1, 1, 1, 1])
    label_ratio = tf.reshape(ratio, [-1, 1])
    mixed_images = image_ratio * images + (1 - image_ratio) * tf.gather(images, partner)
    mixed_labels = label_ratio * labels + (1 - label_ratio) * tf.gather(labels, partner)
    return mixed_images, mixed_labels


def cutout(images: tf.Tensor, side: int) -> tf.Tensor:
    """A ``side`` square at a random centre in each image, painted the batch's mean colour:
    the colour a normalised input has at zero, so the hole adds no signal of its own."""
    mean = tf.reduce_mean(images, axis=[0, 1, 2], keepdims=True)
    mask = _random_boxes(images, side, side)
    return (1 - mask) * images + mask * mean


def cutmix(images: tf.Tensor, labels: tf.Tensor, alpha: float) -> tuple[tf.Tensor, tf.Tensor]:
    """A box from another image is pasted in; labels mix by the box's share of the area."""
    size = tf.shape(images)[0]
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    cut = tf.sqrt(1.0 - _beta(alpha, size))
    box_h = tf.cast(cut * tf.cast(height, tf.float32), tf.int32)
    box_w = tf.cast(cut * tf.cast(width, tf.float32), tf.int32)
    mask = _random_boxes(images, box_h, box_w)
    partner = tf.random.shuffle(tf.range(size))
    mixed_images = (1 - mask) * images + mask * tf.gather(images, partner)
    pasted = tf.reduce_mean(mask, axis=[1, 2, 3])
    label_ratio = tf.reshape(1 - pasted, [-1, 1])
    mixed_labels = label_ratio * labels + (1 - label_ratio) * tf.gather(labels, partner)
    return mixed_images, mixed_labels


def _random_boxes(images: tf.Tensor, box_h: tf.Tensor | int, box_w: tf.Tensor | int) -> tf.Tensor:
    """Per image, 1 inside a box_h x box_w box centred at a random pixel (clipped to the
    image), 0 elsewhere: shape (N, height, width, 1), in the images' dtype. The sides are one
    per image, or one for all."""
    size = tf.shape(images)[0]
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    center_y = tf.random.uniform([size], 0, height, dtype=tf.int32)
    center_x = tf.random.uniform([size], 0, width, dtype=tf.int32)
    top = tf.clip_by_value(center_y - box_h // 2, 0, height)
    bottom = tf.clip_by_value(center_y - box_h // 2 + box_h, 0, height)
    left = tf.clip_by_value(center_x - box_w // 2, 0, width)
    right = tf.clip_by_value(center_x - box_w // 2 + box_w, 0, width)
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < bottom[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < right[:, None, None])
    )
    return tf.cast(inside, images.dtype)[..., None]
