"""scripts/fast_recipe_gpu.py: its NumPy pipeline draws the worker's views (alternating flips,
shifts of at most 2 px with reflected borders), it refuses what that pipeline lacks, and it
trains a fast preset end to end. Here it runs on TensorFlow, the backend this machine has; the
GPU machine runs it on JAX (docs/benchmarks.md, "The fast presets on a GPU")."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from app.core.hyperparameters import FastCnnHyperparameters
from tests.support.servers import clean_environment

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPT = REPOSITORY / "scripts" / "fast_recipe_gpu.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fast_recipe_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _view_of(source: np.ndarray, view: np.ndarray) -> tuple[bool, int, int]:
    """Which flip and shift of ``source`` (reflected at the border) ``view`` is."""
    for flipped in (False, True):
        candidates = np.pad(
            source[:, ::-1] if flipped else source, ((2, 2), (2, 2), (0, 0)), "reflect"
        )
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if np.array_equal(candidates[2 + dy : 34 + dy, 2 + dx : 34 + dx], view):
                    return flipped, dy, dx
    raise AssertionError("the batch image is no flip or shift of its source")


def test_batches_flip_each_image_the_other_way_every_epoch_and_shift_it_at_most_2_px(
    script: ModuleType,
) -> None:
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(40) % 10
    hp = FastCnnHyperparameters(batch_size=16, seed=3)
    batches = script.FastBatches(images, labels, hp)
    assert len(batches) == 3  # 16 + 16 + 8

    def epoch() -> dict[int, tuple[bool, int, int]]:
        views = {}
        for index in range(len(batches)):
            pixels, one_hot = batches[index]
            sources = batches.order[index * 16 : (index + 1) * 16]
            assert pixels.dtype == np.float32 and pixels.shape[1:] == (32, 32, 3)
            np.testing.assert_array_equal(one_hot.argmax(1), labels[sources])
            for source, view in zip(sources, pixels.astype(np.uint8), strict=True):
                views[int(source)] = _view_of(images[source], view)
        batches.on_epoch_end()
        return views

    first_order = batches.order.copy()
    first, second = epoch(), epoch()
    assert sorted(first) == sorted(second) == list(range(40))  # every image once an epoch
    assert not np.array_equal(first_order, batches.order)
    assert all(first[i][0] != second[i][0] for i in range(40))  # the other view each epoch
    shifts = [shift for views in (first, second) for _, *shift in views.values()]
    assert {dy for dy, _ in shifts} == {-2, -1, 0, 1, 2}  # rounded RandomTranslation(2 px)


def test_settings_the_pipeline_lacks_are_refused_by_name(script: ModuleType) -> None:
    with pytest.raises(SystemExit, match="cutout"):
        script.fast_spec("fast-90", ["cutout=8"])
    with pytest.raises(SystemExit, match="epochs"):
        script.fast_spec("fast-90", ["epochs=0"])
    spec = script.fast_spec("fast-93", ["epochs=2", "seed=4"])
    assert (spec.hyperparameters.epochs, spec.hyperparameters.seed) == (2, 4)
    assert spec.hyperparameters.width_2 == 384  # the rest is the preset's


def test_the_script_trains_a_fast_preset_and_prints_its_figures(
    tiny_cifar10: Path, tmp_path: Path
) -> None:
    epochs = 2
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--preset", "fast-90", "--set", f"epochs={epochs}",
         *(f"--set=width_{n}=8" for n in (1, 2, 3)), "--set", "batch_size=50"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=300,
        env=clean_environment(
            CIFARLAB_CIFAR10_PATH=str(tiny_cifar10), CIFARLAB_DATA_DIR=str(tmp_path),
            PYTHONPATH=str(REPOSITORY), KERAS_BACKEND="tensorflow",
        ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch")] == [
        f"epoch {n}" for n in range(1, epochs + 1)
    ]
    found = re.search(r"test accuracy (\d\.\d{4}) \(flip_translate views\); training", lines[-1])
    assert found and 0 <= float(found.group(1)) <= 1, lines[-1]
    assert list((tmp_path / "datasets").glob("cifar10-*.npz"))  # the worker's own cache
