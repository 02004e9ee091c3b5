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


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set key=value`: values read as JSON (numbers, null, true) or else as text."""
    return {
        key: parse_value(raw)
        for key, raw in (
            split_assignment("--set", assignment, "epochs=2") for assignment in assignments
        )
    }
