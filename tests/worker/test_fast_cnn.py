"""The fast family: its whitening, activations, identity start, schedule, alternating flips, and
a run that records its test-time augmentation and saves a model that loads in safe mode."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.hyperparameters import TEST_TIME_VIEWS
from app.core.models import Status
from app.core.schemas import parse_spec
from tests.support.factories import claim, spec_data
from worker import runner
from worker.architectures import build_fast_cnn, fit_whitening
from worker.builders import load_warm_start
from worker.learning_rate import TriangularSchedule
from worker.pipeline import make_dataset
from worker.tta import tta_views

TINY_FAST = {"width_1": 8, "width_2": 8, "width_3": 8, "batch_size": 50}


def hidden_activations(model: keras.Model) -> list[str]:
    """The names of the model's Activation layers' functions, the softmax output left out."""
    return [
        layer.activation.__name__
        for layer in model.layers
        if isinstance(layer, keras.layers.Activation) and layer.name != "probabilities"
    ]


def test_whitening_gives_the_patches_unit_variance_in_every_direction() -> None:
    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 256, (300, 8, 8, 3)).repeat(4, axis=1).repeat(4, axis=2)
    images = np.clip(smooth + rng.integers(-20, 20, smooth.shape), 0, 255).astype(np.uint8)
    model = build_fast_cnn(
        num_classes=10, widths=(8, 8, 8), batchnorm_momentum=0.4, activation="gelu"
    )
    fit_whitening(model, images)
    whitened = keras.Model(model.input, model.get_layer("whitening").output)
    outputs = np.asarray(whitened.predict(images.astype(np.float32), verbose=0))
    directions = outputs[..., :12].reshape(-1, 12)  # the other 12 are their negatives
    np.testing.assert_allclose(outputs[..., 12:], -outputs[..., :12], atol=1e-4)
    np.testing.assert_allclose(directions.mean(axis=0), 0, atol=1e-3)
    # Correlated neighbouring pixels come out decorrelated, each with unit variance.
    np.testing.assert_allclose(np.cov(directions, rowvar=False), np.eye(12), atol=0.02)


def test_convolutions_start_as_the_identity_on_their_first_filters() -> None:
    model = build_fast_cnn(
        num_classes=10, widths=(8, 16, 16), batchnorm_momentum=0.4, activation="gelu"
    )
    convolutions = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3)
    ]
    kernel = keras.ops.convert_to_numpy(convolutions[2].kernel)  # 8 -> 16 filters
    identity = np.zeros((3, 3, 8, 8))
    identity[1, 1] = np.eye(8)
    np.testing.assert_array_equal(kernel[..., :8], identity)
    assert np.abs(kernel[..., 8:]).sum() > 0  # the rest stay random


@pytest.mark.parametrize("activation", ["gelu", "silu", "relu"])
def test_the_chosen_activation_follows_the_whitening_and_every_norm_and_survives_a_save(
    activation: str, tmp_path: Path
) -> None:
    model = build_fast_cnn(
        num_classes=10, widths=(8, 8, 8), batchnorm_momentum=0.4, activation=activation
    )
    assert hidden_activations(model) == [activation] * 7  # the whitening's, then 2 per block

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)  # as evaluation and resume load it
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )


def test_the_triangle_rises_to_its_peak_and_falls_to_its_end() -> None:
    schedule = TriangularSchedule(peak=2.0, total_steps=100)
    rates = [float(schedule(step)) for step in (0, 10, 20, 60, 100)]
    assert rates == pytest.approx([0.4, 1.2, 2.0, 2.0 * (1 - 0.93 * 0.5), 0.14])
    again = TriangularSchedule.from_config(schedule.get_config())
    assert float(again(60)) == pytest.approx(rates[3])


def test_alternating_flips_show_each_image_mirrored_in_consecutive_epochs() -> None:
    count = 20
    images = np.random.default_rng(1).integers(0, 256, (count, 32, 32, 3)).astype(np.uint8)
    identities = np.arange(count)  # one "class" per image, to find it again after shuffling
    batches = make_dataset(
        images, identities, batch_size=count, image_size=32, shuffle=True, seed=3,
        num_classes=count, epochs=3, alternating_flip=True,
    )  # fmt: skip
    views = []
    for pixels, one_hot in batches:
        order = np.argmax(one_hot.numpy(), axis=1)
        views.append(pixels.numpy()[np.argsort(order)])
    flipped = [np.all(view == images[:, :, ::-1], axis=(1, 2, 3)) for view in views]
    assert all(np.all((view == images).all(axis=(1, 2, 3)) | was)
               for view, was in zip(views, flipped, strict=True))  # fmt: skip
    assert 0 < flipped[0].sum() < count  # a random half, not all or none
    assert np.array_equal(flipped[1], ~flipped[0])
    assert np.array_equal(flipped[2], flipped[0])


def test_crop_epochs_cut_each_image_to_a_window_of_its_own_then_train_it_whole() -> None:
    count, crop = 20, 24
    images = np.random.default_rng(2).integers(0, 256, (count, 32, 32, 3)).astype(np.uint8)

    def batches(first_epoch: int, epochs: int) -> list[tuple[np.ndarray, np.ndarray]]:
        dataset = make_dataset(
            images, np.arange(count), batch_size=10, image_size=32, shuffle=True, seed=3,
            num_classes=count, first_epoch=first_epoch, epochs=epochs, crop_epochs=2,
            crop_size=crop,
        )  # fmt: skip
        return [(pixels.numpy(), np.argmax(one_hot.numpy(), axis=1)) for pixels, one_hot in dataset]

    run = batches(0, 3)  # two batches an epoch
    cropped, whole = run[:4], run[4:]
    assert {pixels.shape for pixels, _ in cropped} == {(10, crop, crop, 3)}
    for pixels, identities in whole:
        np.testing.assert_array_equal(pixels, images[identities])
    places = []
    for pixels, identities in cropped:
        for window, identity in zip(pixels, identities, strict=True):
            image = images[identity]
            [place] = [
                (row, column)
                for row in range(32 - crop + 1)
                for column in range(32 - crop + 1)
                if np.array_equal(image[row : row + crop, column : column + crop], window)
            ]
            places.append(place)
    assert len(set(places)) > 10  # each image its own place, not one per batch
    # A run resumed at epoch 1 cuts that epoch's batches as the uninterrupted run did.
    for (resumed, _), (uninterrupted, _) in zip(batches(1, 2), run[2:], strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted)


def test_a_warm_start_from_a_fast_model_that_takes_only_32_px_refuses_crops(
    tmp_path: Path,
) -> None:
    """Fast models saved before the family took crops have a fixed 32 px input: they can
    continue at 32 px, and a run that would crop says what to change."""
    inputs = keras.Input(shape=(32, 32, 3))
    old = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalMaxPooling2D()(inputs)))
    old.save(tmp_path / "old.keras")
    path = str(tmp_path / "old.keras")
    assert load_warm_start(path, parse_spec(spec_data("fast_cnn", **TINY_FAST))) is not None
    with pytest.raises(ValueError, match="launch with crop_epochs 0 to continue it"):
        load_warm_start(path, parse_spec(spec_data("fast_cnn", crop_epochs=1, **TINY_FAST)))


@pytest.fixture
def settings_with_data(data_dir: Path, tiny_cifar10: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tiny_cifar10))
    get_settings.cache_clear()
    return get_settings()


@pytest.mark.parametrize("augmentation", ["none", "flip", "flip_translate"])
def test_test_time_views_are_the_image_its_mirror_and_one_pixel_shifts(augmentation) -> None:
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    views = list(tta_views(images, augmentation))

    assert len(views) == TEST_TIME_VIEWS[augmentation]
    assert [weight for _view, weight in views] == {
        "none": [1.0], "flip": [0.5, 0.5], "flip_translate": [0.25, 0.25] + [0.125] * 4
    }[augmentation]  # fmt: skip
    assert all(view.shape == images.shape and view.dtype == np.uint8 for view, _w in views)
    assert np.array_equal(views[0][0], images)
    if augmentation == "none":
        return
    assert np.array_equal(views[1][0], images[:, :, ::-1])
    if augmentation == "flip":
        return
    up_left, down_right = views[2][0], views[4][0]
    # Shifted by one pixel: the content moves down-right in one and up-left in the other,
    # the uncovered row and column reflected from the image.
    assert np.array_equal(up_left[:, 1:, 1:], images[:, :-1, :-1])
    assert np.array_equal(up_left[:, 0, 1:], images[:, 1, :-1])
    assert np.array_equal(down_right[:, :-1, :-1], images[:, 1:, 1:])
    assert np.array_equal(views[3][0], up_left[:, :, ::-1])
    assert np.array_equal(views[5][0], down_right[:, :, ::-1])


def test_a_fast_run_on_crops_first_records_its_flip_evaluation_and_saves_a_loadable_model(
    settings_with_data, session: Session
) -> None:
    spec = parse_spec(spec_data("fast_cnn", crop_epochs=1, activation="relu", **TINY_FAST))
    experiment = crud.create_experiment(session=session, spec=spec)
    session.commit()
    lease = claim(session, experiment.id)
    session.commit()
    runner.run_experiment(lease=lease, spec=spec, settings=settings_with_data)

    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert stored.status == Status.succeeded
    assert stored.evaluation.test_time_augmentation == "flip"
    rows = crud.list_epochs(session=session, experiment_id=experiment.id)
    steps = 4  # 190 training images in batches of 50, per epoch
    assert [row.learning_rate for row in rows] == pytest.approx(
        [
            float(TriangularSchedule(spec.hyperparameters.learning_rate, 2 * steps)(step))
            for step in (steps, 2 * steps)
        ]  # fmt: skip
    )
    model = keras.models.load_model(settings_with_data.model_path(experiment.id), safe_mode=True)
    assert model.get_layer("whitening").trainable is False
    assert model.input_shape == (None, None, None, 3)  # took 24 px crops, then 32 px images
    assert set(hidden_activations(model)) == {"relu"}  # the spec's choice, not the default
