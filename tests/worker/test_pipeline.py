"""worker.pipeline: the tf.data batches a run trains and validates on."""

from __future__ import annotations

import numpy as np

from worker.pipeline import make_dataset


def random_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def test_make_dataset_resizes_casts_and_one_hots() -> None:
    images = random_images(10, seed=5)
    labels = np.arange(10, dtype=np.int64)

    batches = list(make_dataset(images, labels, batch_size=4, image_size=48, shuffle=False, seed=0))

    assert [tuple(x.shape) for x, _ in batches] == [(4, 48, 48, 3)] * 2 + [(2, 48, 48, 3)]
    pixels = np.concatenate([x.numpy() for x, _ in batches])
    one_hot = np.concatenate([y.numpy() for _, y in batches])
    assert pixels.dtype == np.float32 and one_hot.dtype == np.float32
    assert pixels.min() >= 0 and pixels.max() <= 255 and pixels.max() > 1
    np.testing.assert_array_equal(one_hot, np.eye(10, dtype=np.float32))


def test_make_dataset_keeps_pixels_at_32_and_shuffles_each_epoch() -> None:
    """Each epoch in its own order, which depends only on (seed, epoch): a run resumed at
    epoch 1 sees the batches an uninterrupted run saw in its second epoch."""
    images = random_images(64, seed=6)
    labels = np.arange(64, dtype=np.int64) % 10
    dataset = make_dataset(
        images, labels, batch_size=64, image_size=32, shuffle=True, seed=1, epochs=2
    )

    first, second = list(dataset)
    resumed = make_dataset(
        images, labels, batch_size=64, image_size=32, shuffle=True, seed=1, first_epoch=1
    )
    np.testing.assert_array_equal(next(iter(resumed))[0].numpy(), second[0].numpy())

    label_of = {image.tobytes(): label for image, label in zip(images, labels, strict=True)}
    shuffled = first[0].numpy().astype(np.uint8)
    assert [label_of[image.tobytes()] for image in shuffled] == first[1].numpy().argmax(1).tolist()
    assert sorted(label_of) == sorted(image.tobytes() for image in shuffled)
    assert not np.array_equal(shuffled, images)
    assert not np.array_equal(first[0].numpy(), second[0].numpy())
