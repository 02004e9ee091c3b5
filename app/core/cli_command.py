"""The `cifarlab launch` command line that launches an experiment's spec again: the
experiment page's "Copy as CLI command".

It starts from the preset the run came from (its tags begin with the preset's, as a preset
launch writes them) or else from the model's defaults, and names only the hyperparameters
that differ, each as ``--set key=value`` written so that the CLI reads back the same value
(``app.cli.parse_value``: JSON, or else text). `cifarlab launch` with this line builds the
same spec (``tests/test_cli_command.py`` parses it back with the CLI's own parser).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from app.core.presets import PRESETS, Preset
from app.core.schemas import ExperimentSpec, SpecError, parse_spec


def _cli_value(value: Any) -> str:
    """What `--set key=` needs for the CLI to read ``value`` back: JSON, except text that
    JSON would not read as itself ("adam" stays bare; "1" or "null" as text is quoted)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            return value
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


def _defaults(model: str) -> dict[str, Any]:
    spec = parse_spec({"name": "defaults", "model": model, "hyperparameters": {}})
    return spec.hyperparameters.model_dump(mode="json")


def _overrides(hyperparameters: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in hyperparameters.items() if base.get(key) != value}


def _source_preset(spec: ExperimentSpec) -> Preset | None:
    """The preset whose model and leading tags the spec has, with the fewest overrides."""
    hyperparameters = spec.hyperparameters.model_dump(mode="json")
    candidates = [
        preset
        for preset in PRESETS.values()
        if preset.spec.model == spec.model
        and spec.tags[: len(preset.spec.tags)] == preset.spec.tags
    ]
    return min(
        candidates,
        key=lambda p: len(
            _overrides(hyperparameters, p.spec.hyperparameters.model_dump(mode="json"))
        ),
        default=None,
    )


def launch_command(spec_data: dict[str, Any]) -> str | None:
    """``cifarlab launch --preset ID --set k=v ... --name NAME --tag T`` (or ``--model M``
    where no preset matches), quoted for a POSIX shell; None when the stored spec no longer
    validates (a model since removed), so there is nothing the CLI would accept."""
    try:
        spec = parse_spec(spec_data)
    except SpecError:
        return None
    hyperparameters = spec.hyperparameters.model_dump(mode="json")
    preset = _source_preset(spec)
    if preset is not None:
        args = ["cifarlab", "launch", "--preset", preset.name]
        base = preset.spec.hyperparameters.model_dump(mode="json")
        tags = spec.tags[len(preset.spec.tags) :]
    else:
        args = ["cifarlab", "launch", "--model", spec.model]
        base = _defaults(spec.model)
        tags = list(spec.tags)
    for key, value in _overrides(hyperparameters, base).items():
        args += ["--set", f"{key}={_cli_value(value)}"]
    args += ["--name", spec.name]
    for tag in tags:
        args += ["--tag", tag]
    return shlex.join(args)
