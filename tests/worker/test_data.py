"""worker.data against tiny, real datasets written to tmp_path in each supported layout."""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from app.core.cifar10 import CLASS_NAMES
from app.core.schemas import parse_spec
from worker import data
from worker.data import (
    Cifar10,
    DatasetNotFoundError,
    load_cifar10,
    stratified_indices,
    stratified_split,
)

TRAIN_PER_CLASS = 20
TEST_PER_CLASS = 5


def random_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    with path.open("wb") as file:
        pickle.dump({b"data": rows, b"labels": labels.tolist()}, file)


def write_batches_folder(root: Path) -> Cifar10:
    """The official python layout: five shuffled train batches and one test batch."""
    rng = np.random.default_rng(0)
    y_train = rng.permutation(np.repeat(np.arange(10), TRAIN_PER_CLASS))
    y_test = rng.permutation(np.repeat(np.arange(10), TEST_PER_CLASS))
    expected = Cifar10(
        random_images(len(y_train), 1), y_train, random_images(len(y_test), 2), y_test
    )
    expected.x_train[0] = 0
    expected.x_train[0, :, :, 0] = 255  # pure red: a channel-order mix-up shows as blue
    root.mkdir(parents=True)
    for number, part in enumerate(np.array_split(np.arange(len(y_train)), 5), start=1):
        write_batch(root / f"data_batch_{number}", expected.x_train[part], y_train[part])
    write_batch(root / "test_batch", expected.x_test, y_test)
    return expected


def write_image_folder(root: Path) -> Cifar10:
    """train/<class>/NNNN.png, class-sorted like the shared JPEG rendition (PNG keeps pixels)."""
    arrays = {}
    for split, per_class in (("train", 6), ("test", 2)):
        labels = np.repeat(np.arange(10, dtype=np.int64), per_class)
        images = random_images(len(labels), seed=len(split))
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = root / split / CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{index:04d}.png")
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    return Cifar10(**arrays)


def make_tar(folder: Path, archive: Path, arcname: str) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return archive


def assert_same(loaded: Cifar10, expected: Cifar10) -> None:
    assert loaded.x_train.dtype == np.uint8 and loaded.x_test.dtype == np.uint8
    assert loaded.y_train.dtype == np.int64 and loaded.y_test.dtype == np.int64
    assert loaded.x_train.shape == expected.x_train.shape
    assert loaded.x_test.shape == expected.x_test.shape
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(expected, name))


@pytest.fixture(autouse=True)
def no_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never reach the network nor the real Keras cache."""

    def offline() -> None:
        raise Exception("URL fetch failure: no network in tests")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def test_official_batches_folder_round_trips_pixels(tmp_path: Path) -> None:
    expected = write_batches_folder(tmp_path / "cifar-10-batches-py")

    loaded = load_cifar10(source=tmp_path / "cifar-10-batches-py", cache_dir=tmp_path / "cache")

    assert loaded.x_train.shape == (200, 32, 32, 3) and loaded.x_test.shape == (50, 32, 32, 3)
    assert loaded.x_train[0, 5, 5].tolist() == [255, 0, 0]
    assert_same(loaded, expected)


def test_official_tar_gz(tmp_path: Path) -> None:
    expected = write_batches_folder(tmp_path / "cifar-10-batches-py")
    archive = make_tar(
        tmp_path / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py"
    )

    assert_same(load_cifar10(source=archive, cache_dir=tmp_path / "cache"), expected)


def test_image_folder_and_nested_tar_gz(tmp_path: Path) -> None:
    expected = write_image_folder(tmp_path / "images")
    archive = make_tar(tmp_path / "images", tmp_path / "images.tar.gz", "cifar10")

    assert_same(load_cifar10(source=tmp_path / "images", cache_dir=tmp_path / "cache"), expected)
    assert_same(load_cifar10(source=archive, cache_dir=tmp_path / "cache"), expected)


def test_class_sorted_folder_gives_validation_with_every_class(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "images")
    loaded = load_cifar10(source=tmp_path / "images", cache_dir=tmp_path / "cache")

    train, validation = stratified_split(loaded.y_train, 0.2, seed=0)

    assert set(loaded.y_train[validation]) == set(range(10))
    assert set(loaded.y_train[train]) == set(range(10))
    assert len(validation) == 12 and len(train) == 48
    assert sorted([*train, *validation]) == list(range(60))
    assert not np.all(np.diff(loaded.y_train[validation]) >= 0), "validation is class-sorted"


def test_keras_cache_is_used_when_no_source(tmp_path: Path) -> None:
    keras_cache = tmp_path / "keras-home" / "datasets" / "cifar-10-batches-py-target"
    expected = write_batches_folder(keras_cache / "cifar-10-batches-py")

    loaded = load_cifar10(source=None, cache_dir=tmp_path / "cache", allow_download=False)

    assert_same(loaded, expected)


def test_second_load_reads_cache_and_source_change_invalidates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "images"
    expected = write_image_folder(source)
    load_cifar10(source=source, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 1

    def must_not_decode(path: Path) -> Cifar10:
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(data, "_decode_source", must_not_decode)
    assert_same(load_cifar10(source=source, cache_dir=tmp_path / "cache"), expected)

    touched = source / "test" / "cat" / "0006.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded"):
        load_cifar10(source=source, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_an_edited_sources_new_cache_replaces_its_old_one_and_spares_other_sources(
    tmp_path: Path,
) -> None:
    """Each decoded copy of the full set is 185 MB: old ones must not pile up."""
    cache = tmp_path / "cache"
    source, other = tmp_path / "images", tmp_path / "other"
    write_image_folder(source)
    write_image_folder(other)
    load_cifar10(source=source, cache_dir=cache)
    (first,) = cache.glob("cifar10-*.npz")
    load_cifar10(source=other, cache_dir=cache)
    (second,) = set(cache.glob("cifar10-*.npz")) - {first}

    touched = source / "test" / "cat" / "0006.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    edited = load_cifar10(source=source, cache_dir=cache)

    remaining = set(cache.glob("cifar10-*.npz"))
    assert len(remaining) == 2 and second in remaining and first not in remaining
    (new,) = remaining - {second}
    assert_same(data._read_cache(new), edited)


def test_missing_source_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="CIFARLAB_CIFAR10_PATH") as error:
        load_cifar10(source=tmp_path / "nowhere.tar.gz", cache_dir=tmp_path / "cache")
    assert "nowhere.tar.gz" in str(error.value)


def test_unrecognised_layout_lists_accepted_ones(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="unrecognised layout") as error:
        load_cifar10(source=tmp_path / "empty", cache_dir=tmp_path / "cache")
    assert "cifar-10-batches-py" in str(error.value) and "train/<class>/" in str(error.value)


@pytest.mark.parametrize("allow_download", [True, False])
def test_offline_without_data_explains_how_to_provide_it(
    tmp_path: Path, allow_download: bool
) -> None:
    with pytest.raises(DatasetNotFoundError, match="CIFARLAB_CIFAR10_PATH") as error:
        load_cifar10(source=None, cache_dir=tmp_path / "cache", allow_download=allow_download)
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and "train/<class>/" in message
    assert str(tmp_path / "keras-home" / "datasets") in message


def test_stratified_indices_keep_class_shares() -> None:
    labels = np.repeat(np.arange(10), [50, 50, 50, 50, 50, 50, 50, 50, 100, 100])

    chosen = stratified_indices(labels, 120, seed=3)

    counts = np.bincount(labels[chosen], minlength=10)
    assert counts.tolist() == [10] * 8 + [20, 20]
    assert len(set(chosen.tolist())) == 120
    assert not np.all(np.diff(labels[chosen]) >= 0), "order is class-sorted"
    np.testing.assert_array_equal(chosen, stratified_indices(labels, 120, seed=3))
    assert not np.array_equal(chosen, stratified_indices(labels, 120, seed=4))


def test_stratified_indices_rounds_to_the_exact_size() -> None:
    labels = np.repeat(np.arange(3), [7, 7, 7])

    assert len(stratified_indices(labels, 10, seed=0)) == 10
    assert sorted(stratified_indices(labels, None, seed=0).tolist()) == list(range(21))


def test_stratified_indices_rejects_too_large_size() -> None:
    with pytest.raises(ValueError, match="there are 21 images"):
        stratified_indices(np.zeros(21, dtype=np.int64), 22, seed=0)


@pytest.mark.parametrize(
    ("field", "kind", "available"),
    [("train_size", "training", 10 * TRAIN_PER_CLASS), ("test_size", "test", 10 * TEST_PER_CLASS)],
)
def test_a_size_beyond_a_small_copy_names_the_setting(
    tmp_path: Path, field: str, kind: str, available: int
) -> None:
    """The spec allows the official copy's sizes; a smaller copy is only known to the worker,
    whose message must still say which setting to change, and to what."""
    dataset = write_batches_folder(tmp_path / "cifar-10-batches-py")
    spec = parse_spec(
        {"name": "big", "model": "custom_cnn", "hyperparameters": {field: available + 1}}
    )

    with pytest.raises(ValueError) as refused:
        data.prepare_data(spec, dataset)

    assert str(refused.value) == (
        f"hyperparameters.{field}={available + 1}, but this CIFAR-10 copy has {available} "
        f"{kind} images: choose at most {available}, or leave {field} empty for all of them"
    )
    fits = parse_spec(
        {"name": "fits", "model": "custom_cnn", "hyperparameters": {field: available}}
    )
    data.prepare_data(fits, dataset)
