"""The launch form's rules on plain data: schema -> inputs, form strings -> spec, errors."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.presets import PRESETS
from app.core.report_import import ImportedReport
from app.core.schemas import FieldError, ReportImport, SpecError, parse_spec
from app.core.zoo import MODELS
from app.services.importing import parse_report_import
from app.web.forms import (
    OTHER_GROUP,
    PRIMARY_GROUPS,
    form_context,
    form_field,
    form_for,
    group_errors,
    grouped,
    hyperparameter_forms,
    import_data,
    import_errors,
    open_groups,
    preset_sections,
    shown_value,
    spec_from_form,
    spec_groups,
    study_preset,
    values_from_spec,
)


def _schema(model: str = "custom_cnn") -> dict[str, Any]:
    properties: dict[str, Any] = MODELS[model].hyperparameters.model_json_schema()["properties"]
    return properties


# --- schema -> inputs ---------------------------------------------------------------------------


def test_integer_field_is_a_whole_number_input_with_its_bounds() -> None:
    epochs = form_field("epochs", _schema()["epochs"])
    assert (epochs.kind, epochs.default, epochs.group) == ("number", "20", "Training")
    assert epochs.attributes == {"step": "1", "min": "1", "max": "500"}
    assert (epochs.input_name, epochs.error_path) == ("hp.epochs", "hyperparameters.epochs")
    assert epochs.label == "Epochs" and epochs.help == "Passes over the training data."


def test_float_field_takes_any_step_and_an_exclusive_minimum_as_its_min() -> None:
    rate = form_field("learning_rate", _schema()["learning_rate"])
    assert rate.attributes == {"step": "any", "min": "0", "max": "20"}
    assert rate.default == "0.001"


def test_optional_field_is_nullable_and_empty_by_default() -> None:
    train_size = form_field("train_size", _schema()["train_size"])
    assert (train_size.kind, train_size.nullable, train_size.default) == ("number", True, "")
    assert train_size.attributes["min"] == "20"


def test_booleans_and_enums_are_selects() -> None:
    flip = form_field("augment_flip", _schema()["augment_flip"])
    assert (flip.kind, flip.default) == ("select", "false")
    assert flip.options == (("true", "Yes"), ("false", "No"))
    optimizer = form_field("optimizer", _schema()["optimizer"])
    assert [value for value, _ in optimizer.options] == ["adam", "adamw", "sgd"]
    nullable_choice = form_field("size", {"anyOf": [{"enum": ["a", "b"]}, {"type": "null"}]})
    assert nullable_choice.options[0] == ("", "—")
    assert nullable_choice.group == OTHER_GROUP


def test_groups_put_the_primary_ones_first_then_keep_the_declared_order() -> None:
    fields = [
        form_field("a", {"type": "integer", "group": "Schedule"}),
        form_field("b", {"type": "integer", "group": "Model"}),
        form_field("c", {"type": "integer", "group": "Loss"}),
        form_field("d", {"type": "integer", "group": "Training"}),
    ]
    assert [g.title for g in grouped(fields)] == ["Training", "Model", "Schedule", "Loss"]


def test_one_form_per_hyperparameter_class_covering_every_model() -> None:
    forms = hyperparameter_forms()
    assert len(forms) == len({info.hyperparameters for info in MODELS.values()})
    assert sorted(model for form in forms for model in form.models) == sorted(MODELS)
    for name, info in MODELS.items():
        form = form_for(name)
        assert form is not None
        assert {f.key for f in form.fields} == set(info.hyperparameters.model_fields)
    assert form_for("no_such_model") is None


def test_a_group_opens_when_it_holds_a_changed_value_or_an_error() -> None:
    form = form_for("custom_cnn")
    assert form is not None
    assert open_groups(form, {}, set()) == set(PRIMARY_GROUPS)
    assert "Loss" in open_groups(form, {"hp.label_smoothing": "0.1"}, set())
    assert "Loss" not in open_groups(form, {"hp.label_smoothing": " 0.0 "}, set())
    assert "Speed" in open_groups(form, {}, {"hp-custom_cnn-xla"})


# --- form values <-> specs ----------------------------------------------------------------------


def test_empty_inputs_take_the_default_or_null_when_nullable() -> None:
    spec = spec_from_form(
        {
            "name": "run",
            "model": "custom_cnn",
            "tags": " a, ,b ",
            "hp.epochs": " 3 ",
            "hp.seed": "",
            "hp.train_size": "",
            "csrf": "ignored",
        }
    )
    assert spec == {
        "name": "run",
        "model": "custom_cnn",
        "tags": ["a", "b"],
        "hyperparameters": {"epochs": "3", "train_size": None},
    }
    assert parse_spec(spec).hyperparameters.epochs == 3


def test_values_from_spec_fill_the_form_as_it_reads_them() -> None:
    spec = {"name": "base", "model": "custom_cnn", "tags": ["x", "y"],
            "hyperparameters": {"epochs": 4, "batch_norm": True, "train_size": None}}  # fmt: skip
    values = values_from_spec(spec)
    assert values == {
        "name": "base",
        "model": "custom_cnn",
        "tags": "x, y",
        "hp.epochs": "4",
        "hp.batch_norm": "true",
        "hp.train_size": "",
    }


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_survives_a_round_trip_through_the_form(name: str) -> None:
    """What "Customise" then "Launch" submits unchanged is the preset's own spec."""
    preset = PRESETS[name]
    values = values_from_spec(preset.spec.model_dump(mode="json"))
    assert parse_spec(spec_from_form(values)) == preset.spec


# --- errors next to their inputs ----------------------------------------------------------------


def test_errors_attach_to_their_input_or_to_none() -> None:
    errors = [
        FieldError(field="tags.0", message="too long"),
        FieldError(field="hyperparameters.epochs", message="too small"),
        FieldError(field="grid.learning_rate[2]", message="not a number"),
        FieldError(field="hyperparameters.width", message="unknown field"),
        FieldError(field="spec", message="expected a JSON object"),
    ]
    attached, unattached = group_errors(errors, "custom_cnn")
    assert {key: [e.message for e in value] for key, value in attached.items()} == {
        "tags": ["too long"],
        "hp-custom_cnn-epochs": ["too small"],
        "hp-custom_cnn-learning_rate-vary": ["not a number"],
    }
    assert [e.field for e in unattached] == ["hyperparameters.width", "spec"]


def test_form_context_falls_back_to_the_first_model() -> None:
    context = form_context({"model": "gone"}, [])
    first = next(iter(MODELS))
    assert context["chosen"] == first
    form = form_for(first)
    assert form is not None and context["chosen_form"] == form.key
    chosen = form_context({"model": "efficientnet_b2", "hp.fine_tune": "true"}, [])
    assert chosen["chosen"] == "efficientnet_b2"
    assert "Fine-tuning" in chosen["open_groups"]


# --- presets ------------------------------------------------------------------------------------


def test_preset_sections_follow_the_kinds_and_hold_every_preset() -> None:
    sections = preset_sections()
    assert [title for title, _ in sections] == [
        "The original study",
        "Quick (minutes on a CPU)",
        "Beyond the study",
    ]
    kinds = [{preset.kind for preset in presets} for _, presets in sections]
    assert kinds == [{"study"}, {"quick"}, {"beyond"}]
    assert sorted(p.name for _, presets in sections for p in presets) == sorted(PRESETS)


def test_study_preset_is_found_by_its_tag() -> None:
    preset = study_preset(["study", "study-efficientnetb2"])
    assert preset is not None and preset.published_test_accuracy == 0.90
    assert study_preset(["quick", "quick-custom-cnn"]) is None
    assert study_preset(["study"]) is None


# --- a stored spec on the experiment page -------------------------------------------------------


def test_spec_groups_flag_changed_values_and_keep_unknown_keys() -> None:
    hyperparameters = parse_spec(
        {"name": "x", "model": "custom_cnn", "hyperparameters": {"epochs": 7}}
    ).hyperparameters.model_dump(mode="json")
    groups = {g.title: g for g in spec_groups("custom_cnn", {**hyperparameters, "old": 1})}
    training = groups["Training"]
    assert training.open and ("epochs", "7", True) in training.rows
    assert ("batch_size", "128", False) in training.rows
    assert ("train_size", "—", False) in training.rows
    assert not groups["Loss"].open
    assert groups[OTHER_GROUP].rows == (("old", "1", False),)


# --- importing a report --------------------------------------------------------------------------

REPORT = """              precision    recall  f1-score   support

         cat       0.80      0.40      0.53        10
         dog       0.60      0.90      0.72        10

    accuracy                           0.65        20
   macro avg       0.70      0.65      0.63        20
weighted avg       0.70      0.65      0.63        20
"""


def report_import_from_form(values: dict[str, str]) -> tuple[ReportImport, ImportedReport]:
    """What the import form's route hands the import service, parsed as the service does."""
    return parse_report_import(import_data(values))


def _import_errors(values: dict[str, str]) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        report_import_from_form(values)
    return {error.field: error.message for error in caught.value.errors}


def test_an_import_form_becomes_the_apis_body_and_the_parsed_report() -> None:
    values = {"name": " study cnn ", "report_text": REPORT, "tags": "study, published ,",
              "confusion_matrix_text": "[[4 6]\n [1 9]]", "notes": "from the paper"}  # fmt: skip
    body, imported = report_import_from_form(values)
    assert (body.name, body.tags, body.notes) == (
        "study cnn",
        ["study", "published"],
        "from the paper",
    )
    assert imported.classes == ["cat", "dog"]
    assert (imported.accuracy, imported.test_size) == (0.65, 20)
    assert imported.confusion_matrix == [[4, 6], [1, 9]]
    _, without_matrix = report_import_from_form({"name": "x", "report_text": REPORT})
    assert without_matrix.confusion_matrix is None


def test_import_errors_name_every_field_to_fix() -> None:
    errors = _import_errors({"name": "", "report_text": "hello", "tags": "ok, " + "x" * 41})
    assert set(errors) == {"name", "report_text", "tags.1"}
    assert "header" in errors["report_text"]
    assert set(_import_errors({"name": "x", "report_text": ""})) == {"report_text"}
    assert set(_import_errors({"name": "x", "report_text": "   "})) == {"report_text"}


def test_a_matrix_that_does_not_fit_the_report_is_its_own_fields_error() -> None:
    errors = _import_errors({"name": "x", "report_text": REPORT, "confusion_matrix_text": "1 2 3"})
    assert list(errors) == ["confusion_matrix_text"]
    assert "2 rows of 2" in errors["confusion_matrix_text"]
    attached, unattached = import_errors(
        [FieldError(field="tags.1", message="too long"), FieldError(field="spec", message="?")]
    )
    assert list(attached) == ["tags"] and [e.field for e in unattached] == ["spec"]


def test_stored_values_read_as_a_person_reads_them() -> None:
    assert [shown_value(v) for v in (None, True, False, 0.001, "adam")] == [
        "—", "yes", "no", "0.001", "adam",
    ]  # fmt: skip
