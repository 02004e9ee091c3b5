"""Ready specs: the original study's four experiments, quick ones for a laptop, and beyond."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, field_serializer

from app.core.schemas import ExperimentSpec, parse_spec


class Preset(BaseModel):
    name: str
    title: str
    kind: Literal["study", "quick", "beyond"]
    description: str
    published_test_accuracy: float | None = None
    spec: ExperimentSpec

    @field_serializer("spec")
    def _whole_spec(self, spec: ExperimentSpec) -> dict[str, Any]:
        """The spec as its model's class holds it: serialised as the declared base class,
        the model's own settings (batch_norm, the fast family's widths, fine-tuning) were
        left out of GET /api/presets. Typed as an object there, as an experiment's spec is."""
        return spec.model_dump(mode="json")


def _preset(
    name: str,
    title: str,
    kind: Literal["study", "quick", "beyond"],
    description: str,
    model: str,
    hyperparameters: dict[str, Any],
    published: float | None = None,
) -> Preset:
    spec = parse_spec(
        {"name": title, "model": model, "tags": [kind, name], "hyperparameters": hyperparameters}
    )
    return Preset(
        name=name, title=title, kind=kind, description=description,
        published_test_accuracy=published, spec=spec,
    )  # fmt: skip


_STUDY_TRANSFER = {"image_size": 128, "batch_size": 128, "epochs": 20, "weights": "imagenet"}

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        _preset(
            "study-custom-cnn", "Study: custom CNN", "study",
            "The study's from-scratch CNN at 32 px: four conv blocks (32-64-128-256 filters, "
            "each convolution with BatchNorm), Adam, its callbacks, the study's 20 epochs. "
            "0.827 +/- 0.006 test accuracy over three seeds on a 2-core CPU, the study's 0.82; "
            "about 30 minutes a run there (docs/benchmarks.md).",
            "custom_cnn", {"epochs": 20, "batch_norm": True, "conv_blocks": 4}, published=0.82,
        ),
        _preset(
            "study-efficientnetb2", "Study: EfficientNetB2 transfer, 128 px", "study",
            "ImageNet EfficientNetB2, frozen, with the study's head; images upsampled to 128 px. "
            "Needs the ImageNet weights; a GPU makes it practical.",
            "efficientnet_b2", _STUDY_TRANSFER, published=0.90,
        ),
        _preset(
            "study-efficientnetb4", "Study: EfficientNetB4 transfer, 128 px", "study",
            "The same recipe on the larger EfficientNetB4.",
            "efficientnet_b4", _STUDY_TRANSFER, published=0.89,
        ),
        _preset(
            "study-efficientnetb2-fine-tuned", "Study: EfficientNetB2 fine-tuned", "study",
            "Three epochs on a frozen base, then the whole base unfrozen (BatchNorm frozen) from "
            "epoch 4 to 18 at a tenth of the learning rate: the study's best, 0.94.",
            "efficientnet_b2",
            {**_STUDY_TRANSFER, "epochs": 3, "fine_tune": True, "fine_tune_epochs": 15,
             "fine_tune_learning_rate": 1e-4},
            published=0.94,
        ),
        _preset(
            "quick-custom-cnn", "Quick: custom CNN", "quick",
            "Three epochs on 5,000 images: a real, small experiment in a few minutes on a CPU.",
            "custom_cnn", {"epochs": 3, "train_size": 5000, "test_size": 1000},
        ),
        _preset(
            "quick-residual-cnn", "Quick: residual CNN", "quick",
            "The stronger from-scratch network, narrow, on 5,000 images for three epochs.",
            "residual_cnn",
            {"epochs": 3, "train_size": 5000, "test_size": 1000, "width": 16},
        ),
        _preset(
            "quick-transfer-two-phase", "Quick: MobileNetV2, two phases", "quick",
            "The transfer pipeline end to end on a CPU: random weights at 32 px, one epoch, "
            "then one fine-tuning epoch at the same rate (a random base has nothing to keep).",
            "mobilenet_v2",
            {"epochs": 1, "fine_tune": True, "fine_tune_epochs": 1, "weights": "random",
             "image_size": 32, "train_size": 8000, "test_size": 1000, "batch_size": 64,
             "fine_tune_learning_rate": 1e-3},
        ),
        _preset(
            "fast-90", "Fast: toward 0.90 in 15 minutes on a CPU", "beyond",
            "The fast family at airbench94's widths, 64-256-256, for twelve epochs, with the "
            "six-view test-time look: 0.907 in 13.5 minutes from launch on a 2-core CPU with "
            "AMX, about twice that on one with AVX512_BF16 alone. docs/benchmarks.md has "
            "the runs.",
            "fast_cnn", {"epochs": 12, "test_time_augmentation": "flip_translate"},
        ),
        _preset(
            "fast-93", "Fast: toward 0.93 in 45 minutes on a CPU", "beyond",
            "The fast family at airbench95's widths, 128-384-384, for eighteen epochs at its "
            "lower peak rate, with the six-view test-time look: 0.917 in 41 minutes from "
            "launch on a 2-core CPU with AMX, short of 0.93; about two and a half times as "
            "long on one with AVX512_BF16 alone. docs/benchmarks.md has the runs.",
            "fast_cnn",
            {"width_1": 128, "width_2": 384, "width_3": 384, "learning_rate": 1.3, "epochs": 18,
             "test_time_augmentation": "flip_translate"},
        ),
        _preset(
            "beyond-residual-cnn", "Beyond: residual CNN with augmentation", "beyond",
            "A small ResNet with BatchNorm, flips and 4 px shifts, AdamW, label smoothing: "
            "from scratch, past the study's custom CNN.",
            "residual_cnn",
            {"epochs": 30, "optimizer": "adamw", "weight_decay": 5e-4, "label_smoothing": 0.1,
             "early_stopping_patience": 5},
        ),
        _preset(
            "beyond-efficientnetb2-augmented", "Beyond: EfficientNetB2 fine-tuned, augmented",
            "beyond",
            "The study's best recipe plus its own next steps: flips, shifts, MixUp.",
            "efficientnet_b2",
            {**_STUDY_TRANSFER, "epochs": 3, "fine_tune": True, "fine_tune_epochs": 15,
             "fine_tune_learning_rate": 1e-4, "augment_flip": True, "augment_translate": 0.1,
             "mix": "mixup"},
        ),
    )
}  # fmt: skip


class Changes(BaseModel):
    """What a spec changed from where it started: the preset it was launched from (``None``:
    the model's defaults) and the hyperparameters that differ from it, in declared order."""

    preset: Preset | None
    settings: dict[str, Any]


def source_preset(spec: ExperimentSpec) -> Preset | None:
    """The preset a spec was launched from: same model, and one of its tags is the preset's
    id (a preset launch writes its kind and id as tags; edits may drop the kind)."""
    for tag in spec.tags:
        preset = PRESETS.get(tag)
        if preset is not None and preset.spec.model == spec.model:
            return preset
    return None


def changes(spec: ExperimentSpec) -> Changes:
    """The settings the spec changed from its preset, or from the model's defaults; the
    derived run name and the experiment page's CLI command are both built from it."""
    preset = source_preset(spec)
    if preset is not None:
        base = preset.spec.hyperparameters.model_dump(mode="json")
    else:
        defaults = parse_spec({"name": "defaults", "model": spec.model, "hyperparameters": {}})
        base = defaults.hyperparameters.model_dump(mode="json")
    values = spec.hyperparameters.model_dump(mode="json")
    settings = {key: value for key, value in values.items() if base.get(key) != value}
    return Changes(preset=preset, settings=settings)
