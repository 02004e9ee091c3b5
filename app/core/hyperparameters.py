"""Typed hyperparameters, one class per model family; every unit is in the name or description.

The JSON schema of these classes drives the launch form and GET /api/models, so the bounds,
defaults and descriptions written here are what users see. Defaults are the original study's
recipe. ``group`` sorts fields into the form's sections.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from app.core.models import INTEGER_MAX

TestTimeAugmentation = Literal["none", "flip", "flip_translate"]
TEST_TIME_VIEWS: dict[str, int] = {"none": 1, "flip": 2, "flip_translate": 6}
"""Views of each test image an evaluation predicts, per test-time augmentation: what the
evaluation costs, for estimates, beside the worker's ``tta_views`` that makes them."""
TEST_TIME_MEANINGS: dict[str, str] = {
    "flip": "each image predicted as the mean with its mirror image",
    "flip_translate": (
        "each image predicted as the mean over it, its mirror image and both shifted by one pixel"
    ),
}
"""What a result evaluated with each test-time augmentation averaged, said where results are
shown (the evaluation section, compare's warning) so a reader knows what not to compare."""

CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_TEST_IMAGES = 10_000


def _field(default: Any, group: str, description: str, **bounds: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"group": group}, **bounds)


def _default_of(name: str, default: Any) -> Any:
    """A shared setting with another default for one family: its group, description and
    bounds stay written once, in ``TrainingHyperparameters``."""
    return FieldInfo.merge_field_infos(TrainingHyperparameters.model_fields[name], default=default)


class TrainingHyperparameters(BaseModel):
    """Settings every model shares: data, optimizer, schedule, loss, augmentation, speed."""

    # NaN fails every bound, and "less than or equal to 20" would not say why: a number that
    # is not finite is refused as such.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Data and length
    epochs: int = _field(20, "Training", "Passes over the training data.", ge=1, le=500)
    batch_size: int = _field(128, "Training", "Images per gradient step.", ge=1, le=4096)
    image_size: int = _field(
        32, "Training", "Side in pixels the 32 px images are resized to, per batch.", ge=32, le=600
    )
    validation_split: float = _field(
        0.2, "Training", "Fraction of the training images held out, stratified.", ge=0.05, le=0.5
    )
    seed: int = _field(
        0, "Training", "Seeds the training subset, validation split, shuffling and weights; "
        "the test images are the same for every seed.", ge=0, le=2**31 - 1,
    )  # fmt: skip
    train_size: int | None = _field(
        None, "Training", "Use only this many training images (stratified); empty: all 50,000.",
        ge=20, le=CIFAR10_TRAIN_IMAGES,
    )  # fmt: skip
    test_size: int | None = _field(
        None, "Training", "Evaluate on this many test images (stratified); empty: all 10,000.",
        ge=10, le=CIFAR10_TEST_IMAGES,
    )  # fmt: skip
    warm_start_experiment_id: int | None = _field(
        None, "Training", "Start from this experiment's trained model (same model and image "
        "size) to continue or fine-tune it.", ge=1, le=INTEGER_MAX,
    )  # fmt: skip

    # Optimizer
    optimizer: Literal["adam", "adamw", "sgd"] = _field(
        "adam", "Optimizer", "Adam (the study's), AdamW, or SGD with Nesterov momentum."
    )
    learning_rate: float = _field(
        1e-3, "Optimizer", "Initial step size (SGD on BatchNorm networks takes steps above 1).",
        gt=0, le=20,
    )  # fmt: skip
    weight_decay: float = _field(
        0.0, "Optimizer", "Decoupled weight decay per step (AdamW, SGD); 0: none.", ge=0, le=0.5
    )
    momentum: float = _field(0.9, "Optimizer", "SGD momentum.", ge=0, lt=1)

    # Schedule
    learning_rate_schedule: Literal["constant", "triangular"] = _field(
        "constant", "Schedule", "constant: the learning rate moves only on a plateau. triangular: "
        "it rises linearly from 0.2x to 1x over the first 20% of steps, then falls linearly to "
        "0.07x at the last step (airbench's one-cycle shape); needs the plateau cut off.",
    )  # fmt: skip
    reduce_lr_on_plateau: bool = _field(
        True, "Schedule", "Halve the learning rate when validation loss stops improving.",
        validate_default=True,  # the default (on) conflicts with a triangular schedule
    )  # fmt: skip
    reduce_lr_factor: float = _field(0.5, "Schedule", "Multiplier applied on a plateau.",
                                     gt=0, lt=1)  # fmt: skip
    reduce_lr_patience: int = _field(
        2, "Schedule", "Epochs without improvement before reducing.", ge=0, le=100
    )
    min_learning_rate: float = _field(1e-8, "Schedule", "Floor of the reductions.", ge=0, le=1)
    early_stopping: bool = _field(
        True, "Schedule", "Stop when validation loss stops improving; keep the best weights."
    )
    early_stopping_patience: int = _field(
        3, "Schedule", "Epochs without improvement before stopping.", ge=0, le=100
    )
    early_stopping_min_delta: float = _field(
        1e-5, "Schedule", "Smallest change in validation loss that counts as improvement.", ge=0
    )

    # Loss
    loss: Literal["categorical_crossentropy", "focal"] = _field(
        "categorical_crossentropy", "Loss", "Cross-entropy, or focal loss for hard examples."
    )
    label_smoothing: float = _field(
        0.0, "Loss", "Share of each target spread over all classes.", ge=0, lt=1
    )
    focal_gamma: float = _field(2.0, "Loss", "Focal loss focusing exponent.", ge=0, le=10)
    focal_alpha: float = _field(0.25, "Loss", "Focal loss class weight.", gt=0, le=1)

    # Augmentation, applied per training batch
    augment_flip: bool = _field(False, "Augmentation", "Random horizontal flips.")
    flip_alternating: bool = _field(
        False, "Augmentation", "With flips: flip each image at random in the first epoch, then "
        "the opposite way from the last epoch in every later one, so consecutive epochs never "
        "repeat a view (airbench's alternating flip).",
    )  # fmt: skip
    augment_translate: float = _field(
        0.0, "Augmentation", "Random shifts up to this fraction of the side (0.125 = 4 px).",
        ge=0, le=0.5,
    )  # fmt: skip
    augment_rotation: float = _field(
        0.0, "Augmentation", "Random rotations up to this fraction of a full turn.", ge=0, le=0.5
    )
    augment_zoom: float = _field(
        0.0, "Augmentation", "Random zoom in or out up to this fraction.", ge=0, le=0.5
    )
    augment_contrast: float = _field(
        0.0, "Augmentation", "Random contrast change up to this fraction.", ge=0, le=1
    )
    cutout: int = _field(
        0, "Augmentation", "Side in pixels of a square, centred at random in each training "
        "image (so it may hang over an edge), painted the batch's mean colour: Cutout (DeVries "
        "and Taylor, 2017) makes the network use the whole object instead of its one most "
        "telling patch. 0: none.", ge=0, le=32,
    )  # fmt: skip
    mix: Literal["none", "mixup", "cutmix"] = _field(
        "none", "Augmentation", "Blend pairs of images and their labels (MixUp or CutMix)."
    )
    mix_alpha: float = _field(
        0.2, "Augmentation", "Beta(alpha, alpha) parameter of the mixing ratio.", gt=0, le=10
    )

    # Evaluation
    test_time_augmentation: TestTimeAugmentation = _field(
        "none", "Evaluation", "flip: predict each test image as the mean of its and its mirror "
        "image's probabilities; flip_translate: the weighted mean over that pair and the pairs "
        "of the image shifted one pixel up-left and down-right (6 views, airbench's level 2). "
        "Recorded with the evaluation; compare warns when runs differ.",
    )  # fmt: skip

    # Speed
    mixed_precision: Literal["auto", "off", "float16", "bfloat16"] = _field(
        "auto",
        "Speed",
        "auto: float16 on GPUs that support it, bfloat16 on CPUs with native bfloat16 "
        "(AVX512_BF16 or AMX), off elsewhere.",
    )
    xla: Literal["auto", "on", "off"] = _field(
        "auto",
        "Speed",
        "Compile the training step with XLA. auto: on with a GPU, off on the CPU (5x slower "
        "there in `cifarlab bench train`).",
    )

    @field_validator("xla", mode="before")
    @classmethod
    def _xla_from_bool(cls, value: Any) -> Any:
        """Specs stored before xla had an auto setting say true or false."""
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @field_validator("reduce_lr_on_plateau")
    @classmethod
    def _schedule_is_one_thing(cls, value: bool, info: ValidationInfo) -> bool:
        """A triangular schedule sets every step's rate; a plateau cut cannot also set it.
        Checked on this field (validated after the schedule), so the error names it."""
        if value and info.data.get("learning_rate_schedule") == "triangular":
            raise PydanticCustomError(
                "schedule_conflict",
                "learning_rate_schedule is triangular, which sets the rate of every step; "
                "turn reduce_lr_on_plateau off to use it",
            )
        return value

    @property
    def planned_epochs(self) -> int:
        """Epochs the run will have if nothing stops it early, over all its phases."""
        return self.epochs


class CustomCnnHyperparameters(TrainingHyperparameters):
    """The study's from-scratch CNN: conv blocks that double in width, then a dense head."""

    conv_blocks: int = _field(
        3, "Model", "Blocks of two 3x3 convolutions and a 2x2 max-pool.", ge=1, le=5
    )
    filters: int = _field(
        32, "Model", "Convolution filters in the first block; doubles per block.", ge=8, le=512
    )
    batch_norm: bool = _field(False, "Model", "BatchNormalization after each convolution.")
    dense_units: int = _field(128, "Model", "Units of the dense layer.", ge=8, le=4096)
    dropout_rate: float = _field(
        0.25, "Model", "Dropout after each block and before the classifier.", ge=0, le=0.9
    )


class ResidualCnnHyperparameters(TrainingHyperparameters):
    """A small residual network with BatchNorm, designed here to go well past the study's CNN."""

    epochs: int = _default_of("epochs", 30)
    augment_flip: bool = _default_of("augment_flip", True)
    augment_translate: float = _default_of("augment_translate", 0.125)
    width: int = _field(32, "Model", "Filters of the first stage; doubles per stage.",
                        ge=8, le=256)  # fmt: skip
    stages: int = _field(3, "Model", "Stages; each after the first halves the resolution.",
                         ge=1, le=4)  # fmt: skip
    blocks_per_stage: int = _field(
        2, "Model", "Residual blocks (two 3x3 convolutions each) per stage.", ge=1, le=8
    )
    dropout_rate: float = _field(0.2, "Model", "Dropout before the classifier.", ge=0, le=0.9)


class FastCnnHyperparameters(TrainingHyperparameters):
    """A fast from-scratch recipe after airbench (Jordan, arXiv 2404.00498), written for Keras.

    Every default carries the reason airbench gives for it: a frozen patch-whitening first
    layer decorrelates pixels so the first steps learn edges instead of colour statistics;
    BatchNorm without a scale and GELU make each block cheap and smooth; Nesterov SGD on a
    triangular schedule with large batches uses few, large steps; label smoothing 0.2 keeps
    confidence in check on a short run; lookahead ends on an average of the last steps, a
    flatter point than the last one; alternating flips and 2 px translations give new views without
    repeats; a mirrored second look at each test image is nearly free accuracy.
    """

    epochs: int = _default_of("epochs", 10)
    image_size: int = _field(
        32,
        "Training",
        "Side in pixels of the test images and the epochs after crop_epochs: CIFAR-10's own 32.",
        ge=32,
        le=32,
    )
    batch_size: int = _default_of("batch_size", 1024)
    validation_split: float = _default_of("validation_split", 0.05)
    # Wider than the base's choice on purpose: Muon needs a BatchNorm after every convolution,
    # which only this family guarantees; make_optimizer checks the family before "muon".
    optimizer: Literal["adam", "adamw", "sgd", "muon"] = _field(  # type: ignore[assignment]
        "sgd", "Optimizer", "sgd: Nesterov SGD for every weight (airbench94). muon: Muon for the "
        "convolution filters, each step made orthogonal so every direction of a filter bank "
        "learns at one pace, and Nesterov SGD for the rest (airbench94_muon): ahead of sgd in "
        "short runs, level over 21 epochs of the narrow network. adam and adamw as for the "
        "other families.",
    )  # fmt: skip
    learning_rate: float = _field(
        1.5, "Optimizer", "Peak step size of the schedule, for the batch's mean loss "
        "(airbench's 11.5 per 1,024 summed, over its momentum scale 1 + 1/(1 - 0.85)).",
        gt=0, le=20,
    )  # fmt: skip
    momentum: float = _default_of("momentum", 0.85)
    weight_decay: float = _field(
        0.009, "Optimizer", "Decoupled weight decay, times the step size, per step: 1.3% of "
        "each weight at the peak, what airbench's coupled decay amounts to under momentum.",
        ge=0, le=0.5,
    )  # fmt: skip
    learning_rate_schedule: Literal["constant", "triangular"] = _default_of(
        "learning_rate_schedule", "triangular"
    )
    reduce_lr_on_plateau: bool = _default_of("reduce_lr_on_plateau", False)
    early_stopping: bool = _default_of("early_stopping", False)
    label_smoothing: float = _default_of("label_smoothing", 0.2)
    augment_flip: bool = _default_of("augment_flip", True)
    flip_alternating: bool = _default_of("flip_alternating", True)
    augment_translate: float = _field(
        0.0625, "Augmentation", "Random shifts up to this fraction of the side (0.0625 = 2 px).",
        ge=0, le=0.5,
    )  # fmt: skip
    crop_epochs: int = _field(
        0, "Augmentation", "Train the first epochs on random crop_size crops of the 32 px "
        "images: the network ends in a global max pool and takes any size, and at 24 px an "
        "epoch costs about as much as half of one at 32, so the early epochs, which learn "
        "coarse features, come cheap. The later epochs, at 32 px, adapt it to the test "
        "images' size. 0: every epoch at 32 px.", ge=0, le=499,
    )  # fmt: skip
    crop_size: int = _field(
        24, "Augmentation", "Side in pixels of the crops of the first crop_epochs epochs.",
        ge=16, le=31,
    )  # fmt: skip
    test_time_augmentation: TestTimeAugmentation = _default_of("test_time_augmentation", "flip")
    width_1: int = _field(64, "Model", "Filters of the first block (32 px).", ge=8, le=512)
    width_2: int = _field(256, "Model", "Filters of the second block (16 px).", ge=8, le=1024)
    width_3: int = _field(256, "Model", "Filters of the third block (8 px).", ge=8, le=1024)
    activation: Literal["gelu", "silu", "relu"] = _field(
        "gelu", "Model", "After the whitening and every BatchNorm. gelu: airbench's. silu (x "
        "times its sigmoid) and relu train 1.5 and 2 times as fast on a CPU in bfloat16, where "
        "GELU's erf is costly, but each cost the narrow network about a point of test "
        "accuracy, more than the time saved buys back (docs/benchmarks.md).",
    )  # fmt: skip
    batchnorm_momentum: float = _field(
        0.4, "Model", "Share of the old moving statistics kept each step: low, because a short "
        "run must evaluate with statistics of its last steps.", ge=0, lt=1,
    )  # fmt: skip
    muon_learning_rate: float = _field(
        0.1, "Optimizer", "optimizer=muon: the filters' peak step, as a share of their size "
        "(each filter bank is kept at unit norm per output channel and its step is "
        "orthogonal, so the loss's scale does not enter), on the same schedule as "
        "learning_rate. airbench94_muon's 0.24 is for 200 steps of 2,000 images; over the "
        "thousands of smaller steps of a CPU run it made accuracy fall at the peak "
        "(docs/benchmarks.md).", gt=0, le=2,
    )  # fmt: skip
    muon_momentum: float = _field(
        0.6, "Optimizer", "optimizer=muon: the filters' Nesterov momentum, lower than SGD's "
        "because an orthogonal step already averages out the batch's noise (airbench94_muon's "
        "0.6). The other weights keep momentum.", ge=0, lt=1,
    )  # fmt: skip
    lookahead: bool = _field(
        True,
        "Optimizer",
        "Every 5 steps, move a slow copy of the weights part of the way "
        "to the trained ones and continue from it; the share kept grows over the run, so the "
        "end is an average of its last steps (airbench's lookahead). The final model is the "
        "slow copy.",
    )

    @field_validator("crop_epochs")
    @classmethod
    def _last_epochs_at_full_size(cls, value: int, info: ValidationInfo) -> int:
        """The test images are 32 px: a run that never trains at that size is tested on a
        size it never saw."""
        epochs = info.data.get("epochs")
        if epochs is not None and value >= epochs:
            raise PydanticCustomError(
                "crops_leave_no_full_epoch",
                "crop_epochs ({crop_epochs}) must be fewer than epochs ({epochs}): the last "
                "epochs train at the test images' 32 px",
                {"crop_epochs": value, "epochs": epochs},
            )
        return value


class TransferHyperparameters(TrainingHyperparameters):
    """A pre-trained base with the study's head, trained frozen, then optionally fine-tuned."""

    image_size: int = _field(
        128, "Training", "Side in pixels the 32 px images are resized to, per batch.", ge=32, le=600
    )
    weights: Literal["imagenet", "random"] = _field(
        "imagenet", "Model", "ImageNet weights (downloaded once, or from CIFARLAB_WEIGHTS_DIR), "
        "or a random initialisation.",
    )  # fmt: skip
    head_units: int = _field(128, "Model", "Units of the head's first dense layer.",
                             ge=8, le=4096)  # fmt: skip
    head_dropout_rate: float = _field(
        0.2, "Model", "Dropout after the head's first dense layer.", ge=0, le=0.9
    )
    head_units_2: int = _field(256, "Model", "Units of the head's second dense layer.",
                               ge=8, le=4096)  # fmt: skip
    head_l2: float = _field(0.001, "Model", "L2 penalty on the second dense layer's kernel.",
                            ge=0, le=1)  # fmt: skip
    fine_tune: bool = _field(
        False, "Fine-tuning", "After the frozen-base epochs, unfreeze the base and train on."
    )
    fine_tune_epochs: int = _field(
        15, "Fine-tuning", "Epochs of the fine-tuning phase, numbered after the first phase.",
        ge=1, le=500,
    )  # fmt: skip
    fine_tune_learning_rate: float = _field(
        1e-4, "Fine-tuning", "Step size while fine-tuning; smaller than the first phase's.",
        gt=0, le=1,
    )  # fmt: skip
    fine_tune_layers: int = _field(
        0, "Fine-tuning", "Unfreeze only the top N layers of the base; 0: all of them. "
        "BatchNormalization layers stay frozen.", ge=0, le=2000,
    )  # fmt: skip

    @property
    def planned_epochs(self) -> int:
        return self.epochs + (self.fine_tune_epochs if self.fine_tune else 0)
