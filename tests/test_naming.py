"""Names derived for runs launched without one (app.core.naming), and the launch service
storing them, so the form, the API and the CLI all name a run by what it changes."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.core.naming import MAX_NAME_CHARS, derived_name, parse_named_spec
from app.core.presets import PRESETS
from app.core.schemas import SpecError, parse_spec
from app.services.launch import launch
from tests.support.clients import make_client


def _named(data: dict) -> str:
    return parse_named_spec(data).name


def test_a_model_with_changes_is_named_by_the_changes_in_declared_order() -> None:
    data = {"model": "custom_cnn", "hyperparameters": {"dropout_rate": 0.3, "batch_size": 64}}
    assert _named(data) == "custom_cnn · batch_size=64 dropout_rate=0.3"


def test_a_preset_is_named_by_what_differs_from_the_preset_not_the_model() -> None:
    spec = PRESETS["fast-90"].spec.model_dump(mode="json")
    spec["name"] = ""
    spec["hyperparameters"] |= {"epochs": 25, "learning_rate": 0.1}
    assert _named(spec) == "fast-90 · epochs=25 learning_rate=0.1"


@pytest.mark.parametrize("name", [None, "", "   "])
def test_nothing_changed_names_the_model_or_the_preset(name: str | None) -> None:
    assert _named({"name": name, "model": "residual_cnn"}) == "residual_cnn"
    preset = PRESETS["study-custom-cnn"].spec.model_dump(mode="json")
    assert _named({**preset, "name": name}) == "study-custom-cnn"


def test_a_given_name_is_kept() -> None:
    assert _named({"name": " mine ", "model": "custom_cnn"}) == "mine"


def test_a_long_list_of_changes_is_cut_at_a_whole_setting() -> None:
    changes = {"epochs": 3, "batch_size": 7, "seed": 11, "train_size": 123, "test_size": 45,
               "optimizer": "sgd", "learning_rate": 0.0123, "weight_decay": 0.0004,
               "momentum": 0.8, "label_smoothing": 0.15, "augment_flip": True,
               "augment_translate": 0.1, "dense_units": 256}  # fmt: skip
    name = derived_name(parse_spec({"name": "x", "model": "custom_cnn",
                                    "hyperparameters": changes}))  # fmt: skip
    assert len(name) <= MAX_NAME_CHARS and name.endswith(" …")
    assert name.startswith("custom_cnn · epochs=3 batch_size=7")
    assert name.removesuffix(" …").split(" ")[-1].count("=") == 1  # no setting cut in half


def test_a_bad_spec_without_a_name_is_refused_naming_the_bad_field_not_the_name() -> None:
    with pytest.raises(SpecError) as caught:
        parse_named_spec({"model": "custom_cnn", "hyperparameters": {"epochs": 0}})
    assert [error.field for error in caught.value.errors] == ["hyperparameters.epochs"]


def test_the_launch_service_stores_the_derived_name(session: Session, broker: object) -> None:
    experiment = launch(session, {"model": "custom_cnn", "hyperparameters": {"epochs": 3}})
    assert experiment.name == "custom_cnn · epochs=3"
    assert experiment.spec["name"] == "custom_cnn · epochs=3"


def test_the_api_names_a_spec_sent_without_one(broker: object) -> None:

    client = make_client()
    body = {"model": "custom_cnn", "tags": ["quick-custom-cnn"],
            "hyperparameters": {**PRESETS["quick-custom-cnn"].spec.hyperparameters.model_dump(),
                                "epochs": 1}}  # fmt: skip
    launched = client.post("/api/experiments", json=body)
    assert launched.status_code == 201, launched.text
    assert launched.json()["name"] == "quick-custom-cnn · epochs=1"
    refused = client.post("/api/experiments", json={"name": " ", "model": "nope"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "model"
