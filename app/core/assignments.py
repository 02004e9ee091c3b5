"""`key=value` settings as a command line writes them (`--set`, `--grid`, `--random`): the
value read as JSON (numbers, null, true), or else as text. In the core, not the CLI, so a
script that trains without the CLI's packages reads `--set` exactly as `cifarlab launch` does
(scripts/fast_recipe_gpu.py)."""

from __future__ import annotations

import json
from typing import Any


def parse_value(raw: str) -> Any:
    """A value on the command line: JSON (numbers, null, true) or else text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def split_assignment(option: str, assignment: str, example: str) -> tuple[str, str]:
    """``key=raw``, or a ValueError that names ``option`` and shows ``example``."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{option} {assignment!r}: write it as key=value, e.g. {example}")
    return key.strip(), raw


def split_assignments(option: str, assignments: list[str], example: str) -> dict[str, str]:
    """Each ``key=raw`` of a repeatable option, by key, the raw text not yet read. A key given
    twice is refused naming both values: kept in a dict, the last won silently, so
    `--grid learning_rate=1e-3 --grid learning_rate=2e-3` swept 2e-3 alone."""
    found: dict[str, str] = {}
    for assignment in assignments:
        key, raw = split_assignment(option, assignment, example)
        if key in found:
            raise ValueError(f"{option} {key}: given twice ({found[key]} and {raw}); keep one")
        found[key] = raw
    return found


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set key=value`: values read as JSON (numbers, null, true) or else as text."""
    return {
        key: parse_value(raw)
        for key, raw in split_assignments("--set", assignments, "epochs=2").items()
    }
