"""A name for a run launched without one: what it changes from where it started.

Every client (the form, the API, the CLI) may leave the name blank; the launch service then
calls ``parse_named_spec``, so a list of runs reads "fast-90 · epochs=10 learning_rate=0.1"
or "custom_cnn · batch_size=64 dropout_rate=0.3" instead of one repeated default. The
settings keep their field names, so a name is also the ``--set`` that reproduces the run.
"""

from __future__ import annotations

from typing import Any

from app.core.presets import changes
from app.core.schemas import ExperimentSpec, parse_spec

SEPARATOR = " · "
MAX_NAME_CHARS = 120
"""Well inside the name's 200 characters, and still one line of the runs table."""
_PLACEHOLDER = "-"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def derived_name(spec: ExperimentSpec) -> str:
    """``start · key=value ...``: the settings that differ from the preset or the model's
    defaults, in the order the model declares them; just ``start`` when none does. Cut at a
    whole setting, with "…", to ``MAX_NAME_CHARS``."""
    changed = changes(spec)
    name = changed.preset.name if changed.preset is not None else spec.model
    settings = [f"{key}={_text(value)}" for key, value in changed.settings.items()]
    for index, change in enumerate(settings):
        joined = f"{name}{SEPARATOR if index == 0 else ' '}{change}"
        if len(joined) > MAX_NAME_CHARS - 2:
            return f"{name} …"
        name = joined
    return name


def is_blank(name: Any) -> bool:
    return name is None or (isinstance(name, str) and not name.strip())


def parse_named_spec(data: Any) -> ExperimentSpec:
    """``parse_spec``, except that a missing or blank name is derived (``derived_name``)
    instead of refused; raises ``SpecError`` naming each bad field as ``parse_spec`` does."""
    if not isinstance(data, dict) or not is_blank(data.get("name")):
        return parse_spec(data)
    spec = parse_spec({**data, "name": _PLACEHOLDER})
    return spec.model_copy(update={"name": derived_name(spec)})
