"""The `cifarlab launch` command line that launches an experiment's spec again: the
experiment page's "Copy as CLI command".

It starts from the preset the run came from or else from the model's defaults
(``app.core.presets.changes``, which the derived run name uses too), and names only the
hyperparameters that differ, each as ``--set key=value`` written so that the CLI reads back
the same value (``app.core.assignments.parse_value``: JSON, or else text). `cifarlab launch`
with this line builds the same spec (``tests/test_cli_command.py`` parses it back with the
CLI's own parser).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from app.core.presets import changes
from app.core.schemas import SpecError, parse_spec


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


def launch_command(spec_data: dict[str, Any]) -> str | None:
    """``cifarlab launch --preset ID --set k=v ... --name NAME --tag T`` (or ``--model M``
    where no preset matches), quoted for a POSIX shell; None when the stored spec no longer
    validates (a model since removed), so there is nothing the CLI would accept."""
    try:
        spec = parse_spec(spec_data)
    except SpecError:
        return None
    changed = changes(spec)
    preset = changed.preset
    if preset is not None:
        args = ["cifarlab", "launch", "--preset", preset.name]
        tags = [tag for tag in spec.tags if tag not in preset.spec.tags]
    else:
        args = ["cifarlab", "launch", "--model", spec.model]
        tags = list(spec.tags)
    for key, value in changed.settings.items():
        args += ["--set", f"{key}={_cli_value(value)}"]
    args += ["--name", spec.name]
    for tag in tags:
        args += ["--tag", tag]
    return shlex.join(args)
