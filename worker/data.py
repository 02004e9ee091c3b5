"""CIFAR-10 from whatever source this machine holds, cached as uint8 arrays, and split.

Most machines here are offline, so every form a user may have the data in is accepted, decoded
once and cached as an ``.npz``. Images stay uint8 in memory (a quarter of float32's size);
casting and resizing happen batch by batch in the pipeline (worker/pipeline.py), because
resizing 50,000 images to 260 px up front would need tens of GB. Nothing here needs TensorFlow,
so the data loads wherever Keras runs (scripts/fast_recipe_gpu.py, on a GPU machine without it).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath

import keras
import numpy as np
from PIL import Image, UnidentifiedImageError

from app.core.cifar10 import CLASS_NAMES
from app.core.schemas import ExperimentSpec

logger = logging.getLogger(__name__)

IMAGE_SHAPE = (32, 32, 3)
SPLITS = ("train", "test")
BATCH_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_BATCH_FILE = "test_batch"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
ACCEPTED_LAYOUTS = (
    "the official cifar-10-python.tar.gz, its extracted cifar-10-batches-py folder, "
    "or an image folder train/<class>/, test/<class>/ (or a .tar.gz of one), "
    f"with <class> one of {', '.join(CLASS_NAMES)}"
)
# Bump when the decoded arrays change meaning, so caches written by older code are not reused.
CACHE_FORMAT_VERSION = 1
# A source is a dataset, not a home directory: never walk deeper than its layouts need.
MAX_SOURCE_DEPTH = 4


class DatasetNotFoundError(RuntimeError):
    """No usable CIFAR-10 was found; the message says how to provide it offline."""


@dataclass(frozen=True)
class Cifar10:
    x_train: np.ndarray  # uint8 (N, 32, 32, 3)
    y_train: np.ndarray  # int64 (N,), indices into CLASS_NAMES
    x_test: np.ndarray
    y_test: np.ndarray


def load_cifar10(*, source: Path | None, cache_dir: Path, allow_download: bool = True) -> Cifar10:
    """Load from `source` (CIFARLAB_CIFAR10_PATH), else the Keras cache, else a Keras download."""
    if source is not None:
        if not source.exists():
            raise DatasetNotFoundError(
                f"CIFARLAB_CIFAR10_PATH={source} does not exist. Point it at {ACCEPTED_LAYOUTS}."
            )
        return _load_cached(source, cache_dir)
    keras_cache = _find_keras_cache()
    if keras_cache is not None:
        return _load_cached(keras_cache, cache_dir)
    if not allow_download:
        raise DatasetNotFoundError(_offline_message("downloading is disabled"))
    return _download()


def _offline_message(reason: str) -> str:
    return (
        f"No CIFAR-10 data found and {reason}. To provide it offline, set CIFARLAB_CIFAR10_PATH "
        "to the official cifar-10-python.tar.gz, its extracted cifar-10-batches-py folder, or an "
        "image folder train/<class>/, test/<class>/ (or a .tar.gz of one). Alternatively, put "
        f"the extracted cifar-10-batches-py folder in the Keras cache: {_keras_datasets_dir()}."
    )


def _keras_datasets_dir() -> Path:
    """Where Keras keeps downloads: KERAS_HOME (Keras's own variable) or ~/.keras."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def _find_keras_cache() -> Path | None:
    """Keras 2 extracted into datasets/cifar-10-batches-py; Keras 3 nests it one level deeper."""
    datasets = _keras_datasets_dir()
    candidates = (
        datasets / "cifar-10-batches-py",
        datasets / "cifar-10-batches-py-target" / "cifar-10-batches-py",
    )
    return next((path for path in candidates if (path / TEST_BATCH_FILE).is_file()), None)


def _download() -> Cifar10:
    logger.info("no local CIFAR-10 found; downloading it with Keras")
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:
        raise DatasetNotFoundError(_offline_message(f"the download failed ({error})")) from error
    return Cifar10(
        x_train=_channels_last(x_train),
        y_train=y_train.reshape(-1).astype(np.int64),
        x_test=_channels_last(x_test),
        y_test=y_test.reshape(-1).astype(np.int64),
    )


def _channels_last(images: np.ndarray) -> np.ndarray:
    """Keras returns channels-first arrays when keras.json says so; the cache is channels-last."""
    return images if images.shape[1:] == IMAGE_SHAPE else images.transpose(0, 2, 3, 1)


# --- decoded-array cache -------------------------------------------------------------------------


def _load_cached(source: Path, cache_dir: Path) -> Cifar10:
    source_key, version_key = _cache_keys(source)
    cache_path = cache_dir / f"cifar10-{source_key}-{version_key}.npz"
    cached = _read_cache(cache_path)
    if cached is not None:
        logger.info("CIFAR-10 from cache %s (source %s)", cache_path, source)
        return cached
    started = time.perf_counter()
    data = _decode_source(source)
    logger.info("decoded CIFAR-10 from %s in %.1f s", source, time.perf_counter() - started)
    if _write_cache(cache_path, data):
        _remove_older_versions(cache_path, source_key)
    return data


def _cache_keys(source: Path) -> tuple[str, str]:
    """The source's path, then its size and mtime (a folder: its files' total and newest): an
    edited source gets a new entry, which replaces the old one."""
    resolved = source.resolve()
    if resolved.is_dir():
        stats = [path.stat() for path in _walk_files(resolved)]
        size, mtime_ns = (
            sum(s.st_size for s in stats),
            max((s.st_mtime_ns for s in stats), default=0),
        )
    else:
        stat = resolved.stat()
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    version = f"{CACHE_FORMAT_VERSION}|{size}|{mtime_ns}"
    return _short_hash(str(resolved)), _short_hash(version)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _remove_older_versions(cache_path: Path, source_key: str) -> None:
    """A decoded copy is 185 MB, and nothing reads an edited source's old one again. A worker
    reading it right now keeps its open file (POSIX), or, not yet open, decodes afresh."""
    for older in cache_path.parent.glob(f"cifar10-{source_key}-*.npz"):
        if older != cache_path:
            older.unlink(missing_ok=True)
            logger.info("removed the dataset cache of an earlier version of the source: %s", older)


def _read_cache(cache_path: Path) -> Cifar10 | None:
    if not cache_path.is_file():
        return None
    try:
        with np.load(cache_path, allow_pickle=False) as arrays:
            return Cifar10(**{field.name: arrays[field.name] for field in fields(Cifar10)})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logger.warning("ignoring unreadable dataset cache %s: %s", cache_path, error)
        return None


def _write_cache(cache_path: Path, data: Cifar10) -> bool:
    """Write beside the target, then rename: a reader never sees a half-written file. Returns
    whether it was written (a full or read-only disk only costs a decode next time)."""
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=cache_path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **{field.name: getattr(data, field.name) for field in fields(data)})
            os.replace(temp_name, cache_path)
        finally:
            Path(temp_name).unlink(missing_ok=True)
    except OSError as error:
        logger.warning("could not cache decoded CIFAR-10 at %s: %s", cache_path, error)
        return False
    return True


# --- reading a source ----------------------------------------------------------------------------


def _decode_source(source: Path) -> Cifar10:
    """A tar.gz is read in one pass, so the layout is judged from what it held, not by probing."""
    files = _read_tar(source) if source.is_file() else _read_folder(source)
    batches = {path: blob for path, blob in files.items() if _is_batch_file(path)}
    if batches:
        return _decode_batches(batches, source)
    images = {path: blob for path, blob in files.items() if _is_image_file(path)}
    if images:
        return _decode_image_folder(images, source)
    raise DatasetNotFoundError(
        f"CIFARLAB_CIFAR10_PATH={source} has an unrecognised layout. Accepted: {ACCEPTED_LAYOUTS}."
    )


def _is_batch_file(path: PurePosixPath) -> bool:
    """A batch sits at the top or in one folder (cifar-10-batches-py/ inside the archive)."""
    return path.name in (*BATCH_FILES, TEST_BATCH_FILE) and len(path.parts) <= 2


def _is_image_file(path: PurePosixPath) -> bool:
    """split/class/file, at the top or under one root folder (as archives often are)."""
    return (
        path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
        and len(path.parts) in (3, 4)
        and path.parts[-3] in SPLITS
    )


def _is_wanted(path: PurePosixPath) -> bool:
    return _is_batch_file(path) or _is_image_file(path)


def _read_tar(source: Path) -> dict[PurePosixPath, bytes]:
    """One streaming pass: seeking back in a .tar.gz would decompress it again."""
    files: dict[PurePosixPath, bytes] = {}
    try:
        with tarfile.open(source, "r:*") as archive:
            for member in archive:
                path = PurePosixPath(*PurePosixPath(member.name).parts)
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is not None and _is_wanted(path):
                    files[path] = extracted.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DatasetNotFoundError(
            f"CIFARLAB_CIFAR10_PATH={source} is not a readable folder or tar archive ({error}). "
            f"Accepted: {ACCEPTED_LAYOUTS}."
        ) from error
    return files


def _read_folder(source: Path) -> dict[PurePosixPath, bytes]:
    files: dict[PurePosixPath, bytes] = {}
    for path in _walk_files(source):
        relative = PurePosixPath(*path.relative_to(source).parts)
        if _is_wanted(relative):
            files[relative] = path.read_bytes()
    return files


def _walk_files(root: Path) -> Iterator[Path]:
    for directory, subdirectories, names in os.walk(root):
        if len(Path(directory).relative_to(root).parts) >= MAX_SOURCE_DEPTH - 1:
            subdirectories.clear()
        yield from (Path(directory) / name for name in names)


# --- official python batches ---------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """The batches are pickles; allow only what numpy arrays need, so a file cannot run code."""

    ALLOWED = frozenset(
        {
            ("_codecs", "encode"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy._core.numeric", "_frombuffer"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        module = module.replace("numpy.core.", "numpy._core.")  # pickles from numpy 1
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def _decode_batches(batches: dict[PurePosixPath, bytes], source: Path) -> Cifar10:
    by_name = {path.name: blob for path, blob in batches.items()}
    missing = [name for name in (*BATCH_FILES, TEST_BATCH_FILE) if name not in by_name]
    if missing:
        raise DatasetNotFoundError(
            f"CIFARLAB_CIFAR10_PATH={source} holds CIFAR-10 batches but lacks {', '.join(missing)}."
        )
    train = [_decode_batch(by_name[name], name) for name in BATCH_FILES]
    x_test, y_test = _decode_batch(by_name[TEST_BATCH_FILE], TEST_BATCH_FILE)
    return Cifar10(
        x_train=np.concatenate([images for images, _ in train]),
        y_train=np.concatenate([labels for _, labels in train]),
        x_test=x_test,
        y_test=y_test,
    )


def _decode_batch(blob: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows are 3072 bytes, channel-first (1024 red, 1024 green, 1024 blue)."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
        rows = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as error:
        raise ValueError(f"CIFAR-10 batch {name} is not a valid python batch: {error}") from error
    if rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32 or len(rows) != len(labels):
        raise ValueError(
            f"CIFAR-10 batch {name}: expected (N, 3072) pixel rows and N labels, "
            f"got {rows.shape} rows and {len(labels)} labels"
        )
    images = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


# --- image folders -------------------------------------------------------------------------------


def _decode_image_folder(images: dict[PurePosixPath, bytes], source: Path) -> Cifar10:
    roots = {path.parts[:-3] for path in images}
    if len(roots) > 1:
        raise DatasetNotFoundError(
            f"CIFARLAB_CIFAR10_PATH={source} holds several image folders "
            f"({', '.join('/'.join(root) or '.' for root in sorted(roots))}); keep one."
        )
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        entries = sorted(
            (_class_index(path, source), path) for path in images if path.parts[-3] == split
        )
        if not entries:
            raise DatasetNotFoundError(
                f"CIFARLAB_CIFAR10_PATH={source} has no {split}/<class>/ images. "
                f"Accepted: {ACCEPTED_LAYOUTS}."
            )
        arrays[f"x_{split}"] = _decode_images([(path, images[path]) for _, path in entries])
        arrays[f"y_{split}"] = np.array([label for label, _ in entries], dtype=np.int64)
    return Cifar10(**arrays)


def _class_index(path: PurePosixPath, source: Path) -> int:
    name = path.parts[-2]
    if name not in CLASS_NAMES:
        raise DatasetNotFoundError(
            f"{source}: folder {'/'.join(path.parts[:-1])} is not a CIFAR-10 class; "
            f"class folders must be named {', '.join(CLASS_NAMES)}."
        )
    return CLASS_NAMES.index(name)


def _decode_images(files: list[tuple[PurePosixPath, bytes]]) -> np.ndarray:
    """Serial on purpose: 32 px images are mostly Python overhead; threads measured 2x slower."""
    return np.stack([_decode_image(file) for file in files])


def _decode_image(file: tuple[PurePosixPath, bytes]) -> np.ndarray:
    path, blob = file
    try:
        with Image.open(io.BytesIO(blob)) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot decode image {path}: {error}") from error
    if pixels.shape != IMAGE_SHAPE:
        raise ValueError(f"image {path} is {pixels.shape[1]}x{pixels.shape[0]}, expected 32x32")
    return pixels


# --- sampling ------------------------------------------------------------------------------------


def stratified_indices(labels: np.ndarray, size: int | None, *, seed: int) -> np.ndarray:
    """A smaller run must be a real, smaller experiment: every class keeps its share."""
    labels = check_labels(labels)
    size = len(labels) if size is None else size
    if not 0 <= size <= len(labels):
        raise ValueError(
            f"size={size} is out of range: there are {len(labels)} images; "
            f"choose 0..{len(labels)} or None for all of them"
        )
    rng = np.random.default_rng(seed)
    groups = _shuffled_class_groups(labels, rng)
    quotas = _largest_remainder(np.array([len(group) for group in groups]), size)
    chosen = [group[:quota] for group, quota in zip(groups, quotas, strict=True)]
    return rng.permutation(_concatenate(chosen))


def stratified_split(
    labels: np.ndarray, validation_fraction: float, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image folders are class-sorted: a tail split would validate on ships and trucks only."""
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"validation_fraction={validation_fraction} must be between 0 and 1 (exclusive)"
        )
    labels = check_labels(labels)
    rng = np.random.default_rng(seed)
    groups = _shuffled_class_groups(labels, rng)
    counts = np.array([len(group) for group in groups], dtype=np.int64)
    quotas = _largest_remainder(counts, round(validation_fraction * len(labels)))
    # Keep every class of two or more images on both sides of the split.
    quotas = np.where(counts >= 2, np.clip(quotas, 1, counts - 1), 0)
    pairs = list(zip(groups, quotas, strict=True))
    train = _concatenate([group[quota:] for group, quota in pairs])
    validation = _concatenate([group[:quota] for group, quota in pairs])
    return rng.permutation(train), rng.permutation(validation)


def check_labels(labels: np.ndarray) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D array of integer class indices, got shape {array.shape} "
            f"and dtype {array.dtype} (flatten Keras-style (N, 1) labels first)"
        )
    return array


def _shuffled_class_groups(labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.permutation(np.flatnonzero(labels == label)) for label in np.unique(labels)]


def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Integer quotas proportional to counts that sum exactly to total (Hamilton's method)."""
    population = int(counts.sum())
    if population == 0:
        return np.zeros_like(counts)
    quotas, remainders = np.divmod(counts * total, population)
    quotas[np.argsort(-remainders, kind="stable")[: total - int(quotas.sum())]] += 1
    return quotas


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.empty(0, dtype=np.int64), *parts]).astype(np.int64)


@dataclass(frozen=True)
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


TEST_IMAGES_SEED = 0
"""The test images do not follow a run's seed. Every run with the same ``test_size`` is
scored on the same images in the same order, so any two can be compared image by image
(McNemar's test, the paired bootstrap) whatever their seeds, and a seed group's spread is its
training's alone, not test-set sampling too. 0 is the default seed, so runs with it kept
their test images when this rule came in."""


def prepare_data(spec: ExperimentSpec, dataset: Cifar10) -> tuple[TrainingData, Cifar10]:
    """Stratified subsets and split, so small runs are real, smaller experiments. The run's
    seed picks its training images and validation split; the test images are fixed."""
    hp = spec.hyperparameters
    _check_size("train_size", hp.train_size, dataset.y_train, "training")
    _check_size("test_size", hp.test_size, dataset.y_test, "test")
    train_idx = stratified_indices(dataset.y_train, hp.train_size, seed=hp.seed)
    test_idx = stratified_indices(dataset.y_test, hp.test_size, seed=TEST_IMAGES_SEED)
    y = dataset.y_train[train_idx]
    fit_idx, val_idx = stratified_split(y, hp.validation_split, seed=hp.seed)
    x = dataset.x_train[train_idx]
    training = TrainingData(
        x_train=x[fit_idx], y_train=y[fit_idx], x_val=x[val_idx], y_val=y[val_idx]
    )
    test = Cifar10(
        x_train=x[:0],
        y_train=y[:0],
        x_test=dataset.x_test[test_idx],
        y_test=dataset.y_test[test_idx],
    )
    return training, test


def _check_size(field: str, size: int | None, labels: np.ndarray, kind: str) -> None:
    """The spec's bounds are the official copy's 50,000 and 10,000 images; a smaller copy
    (a slice, a folder of one's own) is only known here, so the message names the setting."""
    if size is not None and size > len(labels):
        raise ValueError(
            f"hyperparameters.{field}={size}, but this CIFAR-10 copy has {len(labels)} {kind} "
            f"images: choose at most {len(labels)}, or leave {field} empty for all of them"
        )
