"""The experiment page's "Copy as CLI command": parsed back by `cifarlab launch`'s own
parser, the command builds the spec it was made from."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import typer.main

from app.cli import cli
from app.cli.specs import build_spec
from app.core.assignments import parse_value
from app.core.cli_command import _cli_value, launch_command
from app.core.presets import PRESETS
from app.core.schemas import parse_spec


def launched_spec(command: str) -> dict[str, Any]:
    """What `cifarlab launch` would send for ``command``: parsed by its click command."""
    words = shlex.split(command)
    assert words[:2] == ["cifarlab", "launch"]
    group = typer.main.get_command(cli)
    launch = group.commands["launch"]  # type: ignore[attr-defined]
    params = launch.make_context("launch", words[2:]).params
    return build_spec(
        preset=params["preset"], model=params["model"], assignments=params["set_"] or [],
        name=params["name"], tags=params["tag"] or [],
    )  # fmt: skip


def stored(data: dict[str, Any]) -> dict[str, Any]:
    """A spec as the experiment row keeps it."""
    return parse_spec(data).model_dump(mode="json")


SPECS = [
    pytest.param({"name": "plain", "model": "custom_cnn", "hyperparameters": {}}, id="defaults"),
    pytest.param(
        {
            "name": 'it\'s "quoted"; $(rm -rf /)',
            "model": "custom_cnn",
            "tags": ["a b", "--set"],
            "hyperparameters": {
                "epochs": 7,
                "learning_rate": 0.0003,
                "train_size": None,
                "optimizer": "sgd",
                "augment_flip": False,
            },
        },
        id="overrides-and-shell-characters",
    ),
]


@pytest.mark.parametrize("data", SPECS)
def test_the_command_launches_the_same_spec(data: dict[str, Any]) -> None:
    spec = stored(data)
    command = launch_command(spec)
    assert command is not None
    assert launched_spec(command) == spec


def test_a_preset_run_names_its_preset_and_only_what_differs() -> None:
    preset = PRESETS["study-custom-cnn"]
    data = preset.spec.model_dump(mode="json")
    data["hyperparameters"]["epochs"] = 3
    data["name"] = "study, shorter"
    data["tags"] = [*data["tags"], "mine"]
    spec = stored(data)
    command = launch_command(spec)
    assert command is not None
    assert "--preset study-custom-cnn" in command
    assert command.count("--set") == 1 and "--set epochs=3" in command
    assert launched_spec(command) == spec


@pytest.mark.parametrize("value", ["adam", "1", "null", "true", "[1]", "a b", 1e-4, None, [1, 2]])
def test_set_values_read_back_as_themselves(value: Any) -> None:
    assert parse_value(_cli_value(value)) == value


def test_a_spec_that_no_longer_validates_has_no_command() -> None:
    assert launch_command({"name": "gone", "model": "removed_model", "hyperparameters": {}}) is None
