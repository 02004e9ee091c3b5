"""The one spec every client shares: defaults, bounds, unknown keys, messages naming fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.schemas import ExperimentUpdate, SpecError, error_message, parse_spec
from tests.support.factories import spec_data


def test_defaults_fill_what_is_not_given() -> None:
    spec = parse_spec({"name": "x", "model": "custom_cnn"})
    hp = spec.hyperparameters
    assert (hp.epochs, hp.batch_size, hp.learning_rate, hp.image_size) == (20, 128, 1e-3, 32)
    assert (hp.validation_split, hp.seed, hp.train_size, hp.test_size) == (0.2, 0, None, None)
    assert spec.model_dump()["hyperparameters"]["conv_blocks"] == 3


@pytest.mark.parametrize(
    ("hyperparameters", "field"),
    [
        ({"epochs": 0}, "hyperparameters.epochs"),
        ({"epochs": 501}, "hyperparameters.epochs"),
        ({"batch_size": "many"}, "hyperparameters.batch_size"),
        ({"validation_split": 0.9}, "hyperparameters.validation_split"),
        ({"train_size": 5}, "hyperparameters.train_size"),
        ({"learning_rte": 0.1}, "hyperparameters.learning_rte"),
        # Muon needs a BatchNorm after every convolution: only the fast family offers it.
        ({"optimizer": "muon"}, "hyperparameters.optimizer"),
    ],
)
def test_bad_hyperparameters_name_their_field(hyperparameters: dict, field: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_data(**hyperparameters))
    assert [error.field for error in caught.value.errors] == [field]
    assert field in str(caught.value)


def test_the_fast_familys_activation_is_one_it_offers() -> None:
    assert parse_spec(spec_data("fast_cnn", activation="relu")).hyperparameters.activation == (
        "relu"
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_data("fast_cnn", activation="swish"))
    assert [error.field for error in caught.value.errors] == ["hyperparameters.activation"]
    with pytest.raises(SpecError) as caught:  # the other families have no such setting
        parse_spec(spec_data(activation="relu"))
    assert [error.field for error in caught.value.errors] == ["hyperparameters.activation"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_that_is_not_finite_is_refused_as_such(value: str) -> None:
    """As the form and the CLI send it, text; NaN used to be refused as above the maximum."""
    for field in ("learning_rate", "label_smoothing"):
        with pytest.raises(SpecError) as caught:
            parse_spec(spec_data(**{field: value}))
        (error,) = caught.value.errors
        assert (error.field, error.message) == (
            f"hyperparameters.{field}",
            "Input should be a finite number",
        )


def test_unknown_key_is_an_error_not_ignored() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_data(learning_rte=0.1))
    assert "unknown field" in caught.value.errors[0].message


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "x", "model": "resnet9000"})
    error = caught.value.errors[0]
    assert error.field == "model"
    assert "custom_cnn" in error.message


def test_blank_name_and_top_level_extras_refused() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "  ", "model": "custom_cnn", "colour": "red"})
    assert {error.field for error in caught.value.errors} == {"name", "colour"}


@pytest.mark.parametrize(("stored", "read"), [(True, "on"), (False, "off"), ("auto", "auto")])
def test_xla_is_auto_by_default_and_old_true_false_specs_still_parse(stored, read) -> None:
    assert parse_spec(spec_data()).hyperparameters.xla == "auto"
    assert parse_spec(spec_data(xla=stored)).hyperparameters.xla == read
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_data(xla="sometimes"))
    assert caught.value.errors[0].field == "hyperparameters.xla"


@pytest.mark.parametrize(
    "hyperparameters",
    [{"learning_rate_schedule": "triangular"}, {"reduce_lr_on_plateau": True}],
)
def test_a_triangular_schedule_with_the_plateau_cut_on_names_the_cut(
    hyperparameters: dict[str, object],
) -> None:
    """custom_cnn's plateau cut is on by default, fast_cnn's schedule is triangular: either
    way round, the error names the setting to turn off and nothing is accepted."""
    model = "custom_cnn" if "learning_rate_schedule" in hyperparameters else "fast_cnn"
    with pytest.raises(SpecError) as refused:
        parse_spec({"name": "x", "model": model, "hyperparameters": hyperparameters})
    assert [error.field for error in refused.value.errors] == [
        "hyperparameters.reduce_lr_on_plateau"
    ]


def test_crops_must_leave_the_last_epochs_at_the_test_images_size() -> None:
    assert parse_spec(spec_data("fast_cnn", epochs=5, crop_epochs=4)).hyperparameters
    with pytest.raises(SpecError) as refused:
        parse_spec(spec_data("fast_cnn", epochs=5, crop_epochs=5))
    [error] = refused.value.errors
    assert error.field == "hyperparameters.crop_epochs"
    assert error.message == (
        "crop_epochs (5) must be fewer than epochs (5): the last epochs train at the test "
        "images' 32 px"
    )


@pytest.mark.parametrize(
    ("data", "said"), [({}, "no model given"), ({"model": "x"}, "unknown model 'x'")]
)
def test_a_spec_without_a_known_model_names_the_field_and_the_choices(data, said) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec({"name": "n", **data})
    [error] = refused.value.errors
    assert error.field == "model"
    assert error.message.startswith(f"{said}; choose one of: convnext_tiny, custom_cnn,")


NAME_RULE = (
    "write a name on one line, with something visible in it (no line breaks, tabs or other "
    "control characters)"
)
TAG_RULE = (
    "write a tag on one line, with something visible in it and no comma (commas separate tags)"
)


@pytest.mark.parametrize("text", ["\u200b", "\ufeff\u2060", "a\nb", "line\u2028break", "a\tb"])
def test_an_invisible_or_multi_line_name_or_tag_is_refused(text: str) -> None:
    """A zero-width name showed as a blank row in every list; a line break inside one split
    `cifarlab show` and the tables' cells. The same rule holds when a name is edited later."""
    with pytest.raises(SpecError) as refused:
        parse_spec({"name": text, "model": "custom_cnn", "tags": ["ok", text]})
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("name", NAME_RULE),
        ("tags.1", TAG_RULE),
    ]
    with pytest.raises(ValidationError) as edited:
        ExperimentUpdate.model_validate({"name": text})
    assert [error_message(error) for error in edited.value.errors()] == [NAME_RULE]


def test_a_name_may_hold_any_visible_text() -> None:
    visible = ["\u200bzero-width first", "é ü 中文", "emoji 🚀", "a, b", "x" * 200]
    for name in visible:
        assert parse_spec({"name": f" {name} ", "model": "custom_cnn"}).name == name


def test_a_tag_holds_no_comma_and_each_tag_is_kept_once() -> None:
    """Forms and the CLI write tags comma-separated: a tag "a, b" came back from its edit box
    as "a" and "b"."""
    with pytest.raises(SpecError) as refused:
        parse_spec({"name": "n", "model": "custom_cnn", "tags": ["ok", "a, b"]})
    assert [(e.field, e.message) for e in refused.value.errors] == [("tags.1", TAG_RULE)]
    spec = parse_spec({"name": "n", "model": "custom_cnn", "tags": ["a", " a ", "A", "b", "a"]})
    assert spec.tags == ["a", "A", "b"]
