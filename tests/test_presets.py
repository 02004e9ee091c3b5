"""Presets: every one is a valid spec, the study's carry its published figures, all launch."""

from __future__ import annotations

import pytest
import redis

from app.cli.specs import build_spec
from app.core.presets import PRESETS
from app.core.schemas import SpecError, parse_spec
from tests.support.clients import make_client


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates_round_trip(name: str) -> None:
    spec = PRESETS[name].spec
    assert parse_spec(spec.model_dump(mode="json")) == spec


def test_the_study_is_reproduced_from_presets() -> None:
    study = {p.name: p for p in PRESETS.values() if p.kind == "study"}
    assert {p.published_test_accuracy for p in study.values()} == {0.82, 0.90, 0.89, 0.94}
    tuned = study["study-efficientnetb2-fine-tuned"].spec.hyperparameters
    assert (tuned.image_size, tuned.batch_size, tuned.epochs, tuned.planned_epochs) == (
        128,
        128,
        3,
        18,
    )
    head = study["study-efficientnetb2"].spec.hyperparameters
    assert (head.head_units, head.head_dropout_rate, head.head_units_2, head.head_l2) == (
        128,
        0.2,
        256,
        0.001,
    )
    assert (head.reduce_lr_factor, head.reduce_lr_patience, head.min_learning_rate) == (
        0.5,
        2,
        1e-8,
    )
    assert (head.early_stopping_patience, head.early_stopping_min_delta) == (3, 1e-5)
    assert head.validation_split == 0.2 and head.optimizer == "adam"


def test_cli_preset_with_overrides() -> None:
    spec = build_spec(
        preset="quick-custom-cnn", model=None, assignments=["epochs=1"], name=None, tags=["x"]
    )
    assert spec["hyperparameters"]["epochs"] == 1
    assert spec["hyperparameters"]["train_size"] == 5000
    assert "x" in spec["tags"]
    with pytest.raises(SpecError):
        build_spec(preset="quick-custom-cnn", model=None, assignments=["epochs=0"], name=None,
                   tags=[])  # fmt: skip
    with pytest.raises(ValueError, match="drop --model"):
        build_spec(preset="quick-custom-cnn", model="resnet50v2", assignments=[], name=None,
                   tags=[])  # fmt: skip


def test_api_lists_and_launches_presets(broker: redis.Redis) -> None:
    client = make_client()
    listed = {p["name"]: p for p in client.get("/api/presets").json()}
    assert listed.keys() == PRESETS.keys()
    assert listed["study-efficientnetb4"]["published_test_accuracy"] == 0.89
    for name, preset in PRESETS.items():  # whole: the model's own settings too
        assert listed[name]["spec"] == preset.spec.model_dump(mode="json"), name
    study_cnn = listed["study-custom-cnn"]["spec"]["hyperparameters"]
    assert (study_cnn["batch_norm"], study_cnn["conv_blocks"]) == (True, 4)
    assert listed["fast-90"]["spec"]["hyperparameters"]["epochs"] == 12
    fast_90, fast_93 = (listed[name]["spec"]["hyperparameters"] for name in ("fast-90", "fast-93"))
    # The 0.93 preset spends more than the 0.90 one: wider blocks and more epochs.
    assert fast_93["width_2"] > fast_90["width_2"] and fast_93["epochs"] > fast_90["epochs"]
    launched = client.post("/api/presets/quick-custom-cnn/launch")
    assert launched.status_code == 201
    assert launched.json()["spec"]["hyperparameters"]["train_size"] == 5000
    assert broker.llen("cifarlab") == 1
    missing = client.post("/api/presets/nope/launch")
    assert missing.status_code == 404 and "quick-custom-cnn" in missing.json()["detail"]


def test_warm_start_must_name_a_succeeded_experiment(broker: redis.Redis) -> None:
    client = make_client()
    spec = {"name": "w", "model": "custom_cnn", "hyperparameters": {"warm_start_experiment_id": 7}}
    response = client.post("/api/experiments", json=spec)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "hyperparameters.warm_start_experiment_id"
    assert broker.llen("cifarlab") == 0
