"""The model zoo: every family builds and trains a step; fine-tuning unfreezes, BatchNorm stays."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from app.core.config import Settings
from app.core.schemas import parse_spec
from app.core.zoo import MODELS
from tests.support.factories import spec_data
from worker import hardware, weights
from worker.architectures import transfer_base, unfreeze_base
from worker.builders import build_model
from worker.compiling import JIT_COMPILE, compile_for_phase, make_loss, make_optimizer
from worker.training import precision_policy

TRAIN_STEP_MODELS = [
    "custom_cnn",
    "residual_cnn",
    "efficientnet_b0",
    "efficientnetv2_b0",
    "resnet50v2",
    "mobilenet_v2",
    "convnext_tiny",
]
SMALL = {
    "custom_cnn": {"filters": 8, "conv_blocks": 2},
    "residual_cnn": {"width": 8, "blocks_per_stage": 1},
}


def spec_for(model: str, **hyperparameters: object):
    hp = {"image_size": 32, **SMALL.get(model, {}), **hyperparameters}
    if MODELS[model].family == "transfer":
        hp.setdefault("weights", "random")
    return parse_spec({"name": model, "model": model, "hyperparameters": hp})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, weights_dir=None)


@pytest.mark.parametrize("model_name", TRAIN_STEP_MODELS)
def test_family_builds_and_trains_one_step(model_name: str, settings: Settings) -> None:
    spec = spec_for(model_name)
    model = build_model(spec, settings)
    model.compile(
        optimizer=make_optimizer(spec.hyperparameters, 1e-3),
        loss=make_loss(spec.hyperparameters),
        metrics=["accuracy"],
        run_eagerly=True,  # graph tracing of the big bases costs a minute each
    )
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.eye(10, dtype="float32")[np.arange(8) % 10]
    before = [w.numpy().copy() for w in model.trainable_weights[-2:]]
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert model.output_shape == (None, 10)
    after = [w.numpy() for w in model.trainable_weights[-2:]]
    assert any(not np.allclose(b, a) for b, a in zip(before, after, strict=True))


@pytest.mark.parametrize("model_name", ["efficientnet_b1", "efficientnet_b3", "efficientnet_b4"])
def test_bigger_efficientnets_build_with_the_study_head(model_name: str, settings) -> None:
    model = build_model(spec_for(model_name), settings)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [128, 256, 10]
    assert dense[1].kernel_regularizer.l2 == pytest.approx(0.001)
    assert any(
        isinstance(layer, keras.layers.Dropout) and layer.rate == 0.2 for layer in model.layers
    )
    assert transfer_base(model) is not None


def count_trainable(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_fine_tuning_unfreezes_the_base_but_not_batchnorm(settings: Settings) -> None:
    model = build_model(spec_for("efficientnet_b0"), settings)
    base = transfer_base(model)
    base.trainable = False
    frozen = count_trainable(model)
    unfreeze_base(model, top_layers=20)
    top = count_trainable(model)
    unfreeze_base(model, top_layers=0)
    everything = count_trainable(model)
    assert frozen < top < everything
    batchnorms = [
        layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert batchnorms and not any(layer.trainable for layer in batchnorms)
    assert all(
        layer.trainable for layer in base.layers if layer.weights and layer not in batchnorms
    )


def test_focal_loss_matches_hand_computation() -> None:
    spec = spec_for("custom_cnn", loss="focal", focal_gamma=2.0, focal_alpha=0.25)
    loss = make_loss(spec.hyperparameters)
    y_true = np.array([[0.0, 1.0, 0.0]], dtype="float32")
    y_pred = np.array([[0.2, 0.7, 0.1]], dtype="float32")
    # -alpha * (1 - p)^gamma * log(p) for the true class only
    expected = -0.25 * (1 - 0.7) ** 2 * np.log(0.7)
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_reaches_the_loss() -> None:
    loss = make_loss(spec_for("custom_cnn", label_smoothing=0.1).hyperparameters)
    y_true = np.array([[0.0, 1.0]], dtype="float32")
    y_pred = np.array([[0.5, 0.5]], dtype="float32")
    assert float(loss(y_true, y_pred)) == pytest.approx(-np.log(0.5), rel=1e-5)
    sharp = np.array([[0.01, 0.99]], dtype="float32")
    expected = -(0.05 * np.log(0.01) + 0.95 * np.log(0.99))
    assert float(loss(y_true, sharp)) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("optimizer", "kind"),
    [("adam", keras.optimizers.Adam), ("adamw", keras.optimizers.AdamW),
     ("sgd", keras.optimizers.SGD)],
)  # fmt: skip
def test_optimizer_choice(optimizer: str, kind: type) -> None:
    hp = spec_for("custom_cnn", optimizer=optimizer, weight_decay=0.01).hyperparameters
    made = make_optimizer(hp, 0.05)
    assert type(made) is kind
    assert float(made.learning_rate) == pytest.approx(0.05)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_a_compiled_phase_traces_its_training_step_once(optimizer: str, settings: Settings) -> None:
    """A step that creates the optimizer's slots or the metric's totals is traced twice: for
    MobileNetV2 that was 6-8 s more of each phase's first epoch."""
    spec = spec_for("custom_cnn", optimizer=optimizer, conv_blocks=1, filters=8, dense_units=8)
    model = build_model(spec, settings)
    compile_for_phase(model, spec.hyperparameters, 1e-3)
    traced = 0
    train_step = model.train_step

    def counting_step(data):  # its Python body runs once per trace, not once per batch
        nonlocal traced
        traced += 1
        return train_step(data)

    model.train_step = counting_step
    images = np.random.default_rng(0).uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    labels = np.eye(10, dtype="float32")[np.arange(64) % 10]
    history = model.fit(images, labels, batch_size=16, epochs=2, verbose=0)
    assert traced == 1
    assert set(history.history) == {"loss", "accuracy"}


def test_missing_weights_say_which_file_goes_where(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*_args, **_kwargs):  # the internet download is the one thing mocked here
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(weights.keras.utils, "get_file", offline)
    spec = spec_for("efficientnet_b2", weights="imagenet", image_size=128)
    with pytest.raises(weights.WeightsNotFoundError) as caught:
        build_model(spec, Settings(data_dir=tmp_path, weights_dir=tmp_path / "weights"))
    message = str(caught.value)
    assert "efficientnetb2_notop.h5" in message
    assert "CIFARLAB_WEIGHTS_DIR" in message and str(tmp_path / "weights") in message
    assert "https://storage.googleapis.com/keras-applications/efficientnetb2_notop.h5" in message
    assert "weights=random" in message


def test_weights_dir_file_is_used_before_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights.keras.utils, "get_file", pytest.fail)
    (tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5").touch()
    found = weights.resolve_weights("mobilenet_v2", 96, tmp_path)
    assert found.endswith("_1.0_96_no_top.h5")


def test_random_bases_learn_batchnorm_statistics_quickly(settings: Settings) -> None:
    from worker.architectures import RANDOM_BASE_BATCHNORM_MOMENTUM

    base = transfer_base(build_model(spec_for("mobilenet_v2", weights="random"), settings))
    momenta = {
        layer.momentum for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }  # fmt: skip
    assert momenta == {RANDOM_BASE_BATCHNORM_MOMENTUM}


def test_from_scratch_batchnorm_catches_up_within_short_runs(settings: Settings) -> None:
    from worker.architectures import BATCHNORM_MOMENTUM

    model = build_model(spec_for("residual_cnn"), settings)
    momenta = {
        layer.momentum for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }  # fmt: skip
    assert momenta == {BATCHNORM_MOMENTUM} and BATCHNORM_MOMENTUM < 0.99


@pytest.mark.parametrize(("xla", "compiled"), [("auto", False), ("on", True), ("off", False)])
def test_xla_auto_leaves_cpu_runs_uncompiled(xla: str, compiled: bool) -> None:
    """On this CPU-only machine auto means no XLA; with a GPU, Keras turns it on. Keras
    refuses XLA while op determinism is on, which an in-process run before this test leaves
    on (every run seeds it), so the test turns it off for its own compile."""
    from tensorflow.python.framework import config as tf_config

    was_deterministic = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()
    try:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse", jit_compile=JIT_COMPILE[xla])
    finally:
        if was_deterministic:
            tf_config.enable_op_determinism()
    assert model.jit_compile is compiled


@pytest.mark.parametrize(
    ("flags", "auto_policy"),
    [({"avx512f", "avx512_bf16"}, "mixed_bfloat16"), ({"amx_bf16"}, "mixed_bfloat16"),
     ({"avx512f"}, "float32"), (set(), "float32")],
)  # fmt: skip
def test_auto_precision_uses_bfloat16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], auto_policy: str
) -> None:
    """This machine has no GPU, so auto goes by the processor's flags."""
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    chosen = {
        setting: precision_policy(parse_spec(spec_data(mixed_precision=setting)).hyperparameters)
        for setting in ("auto", "off", "bfloat16", "float16")
    }
    assert chosen == {
        "auto": auto_policy, "off": "float32", "bfloat16": "mixed_bfloat16",
        "float16": "mixed_float16",
    }  # fmt: skip
