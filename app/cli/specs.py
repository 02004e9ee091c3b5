"""What `launch` and `sweep` send: a spec or a sweep body built from a preset (or a model's
defaults) and the command line's `--set`, `--grid`, `--random` and `--seeds`, or read from a
sweep file. The server validates what they build; these only read the command line."""

from __future__ import annotations

import enum
import json
import re
from pathlib import Path
from typing import Any

import yaml

from app.core.assignments import parse_assignments, parse_value, split_assignments
from app.core.naming import parse_named_spec
from app.core.presets import PRESETS


def base_spec(preset: str | None, model: str | None) -> dict[str, Any]:
    """A preset's spec, or ``model`` (default custom_cnn) with its defaults, as plain JSON:
    what `launch` and `sweep` start from."""
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"no preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        base = PRESETS[preset].spec.model_dump(mode="json")
        if model is not None and model != base["model"]:
            raise ValueError(f"preset {preset} trains {base['model']}; drop --model {model}")
        return base
    return {"name": "", "model": "custom_cnn" if model is None else model, "hyperparameters": {}}


def build_spec(
    *,
    preset: str | None,
    model: str | None,
    assignments: list[str],
    name: str | None,
    tags: list[str],
) -> dict[str, Any]:
    """A spec from a preset (or a model's defaults) with `--set` overrides, as plain JSON;
    without ``name``, named by what it changes (``app.core.naming``, as the server would)."""
    base = base_spec(preset, model)
    base["hyperparameters"].update(parse_assignments(assignments))
    base["name"] = name or ""
    base["tags"] = [*base.get("tags", []), *tags]
    return parse_named_spec(base).model_dump(mode="json")


class _SweepFileLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` (an exponent without a dot) as text; a sweep file writes
    learning rates that way, so here it is a number, as in JSON."""


_SweepFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_sweep_file(path: Path) -> Any:
    """A sweep as a YAML or JSON file, in the body ``POST /api/sweeps`` takes: a mapping."""
    if path.suffix.lower() not in {".yaml", ".yml", ".json"}:
        raise ValueError(f"{path}: give a .yaml, .yml or .json file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            body = json.loads(text)
        else:
            body = yaml.load(text, Loader=_SweepFileLoader)  # noqa: S506 (a SafeLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(body, dict):  # empty, null or a list: the API named only "request"
        raise ValueError(f"{path}: expected a sweep (name, model, grid, ...), not {body!r:.40}")
    return body


RANDOM_EXAMPLE = "learning_rate=log_uniform:1e-4:1e-1"


def parse_grid(axes: list[str]) -> dict[str, list[Any]]:
    """`--grid name=v1,v2,...`: each value read as `--set` reads one."""
    return {
        key: [parse_value(value.strip()) for value in raw.split(",")]
        for key, raw in split_assignments("--grid", axes, "learning_rate=1e-3,3e-3").items()
    }


def parse_random(axes: list[str]) -> dict[str, dict[str, Any]]:
    """`--random name=uniform:LOW:HIGH`, `name=log_uniform:LOW:HIGH` or `name=choice:A,B`."""
    drawn: dict[str, dict[str, Any]] = {}
    for key, raw in split_assignments("--random", axes, RANDOM_EXAMPLE).items():
        distribution, _, rest = raw.partition(":")
        low, sep, high = rest.partition(":")
        if distribution == "choice" and rest:
            values = [parse_value(value.strip()) for value in rest.split(",")]
            drawn[key] = {"distribution": distribution, "values": values}
        elif distribution in ("uniform", "log_uniform") and sep:
            drawn[key] = {"distribution": distribution, "low": parse_value(low),
                          "high": parse_value(high)}  # fmt: skip
        else:
            axis = f"{key}={raw}"
            raise ValueError(
                f"--random {axis!r}: write name=uniform:LOW:HIGH, name=log_uniform:LOW:HIGH "
                f"or name=choice:A,B, e.g. {RANDOM_EXAMPLE}"
            )
    return drawn


def parse_seeds(text: str) -> int | list[int]:
    """`--seeds 3`: seeds 0, 1 and 2; `--seeds 0,1,2` (or `7,` for one): those seeds."""
    parts = [part.strip() for part in text.split(",")]
    if "," in text:
        parts = [part for part in parts if part]
    if not parts or not all(part.isdigit() for part in parts):
        raise ValueError(f"--seeds {text!r}: give a count (3) or a list of seeds (0,1,2)")
    return int(parts[0]) if "," not in text else [int(part) for part in parts]


class PruneRule(enum.StrEnum):
    median = "median"
    asha = "asha"


def build_sweep(
    *,
    preset: str | None,
    model: str | None,
    assignments: list[str],
    grid: list[str],
    random: list[str],
    trials: int | None,
    seeds: str | None,
    max_parallel: int | None,
    prune: PruneRule | None,
    name: str | None,
    tags: list[str],
) -> dict[str, Any]:
    """A sweep from a preset (or a model's defaults), `--set` overrides and the axes, as the
    body of ``POST /api/sweeps``; the server validates it and every trial."""
    base = base_spec(preset, model)
    base["hyperparameters"].update(parse_assignments(assignments))
    sweep: dict[str, Any] = {
        "model": base["model"],
        "tags": [*base.get("tags", []), *tags],
        "hyperparameters": base["hyperparameters"],
        "grid": parse_grid(grid),
        "random": parse_random(random),
    }
    optional = {"name": name, "trials": trials, "max_parallel": max_parallel,
                "seeds": None if seeds is None else parse_seeds(seeds),
                "pruning": None if prune is None else {"rule": prune.value}}  # fmt: skip
    return sweep | {key: value for key, value in optional.items() if value is not None}
