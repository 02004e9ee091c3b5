"""A sweep's spec, and the trials it expands to: every trial validated before any is stored.

A sweep is a base spec (model and hyperparameters), axes that vary hyperparameters (a grid of
values, or random draws with a budget of ``trials``), and seeds. Its trials are the product
grid point x random draw x seed, in that order, each an ordinary ``ExperimentSpec``. The
form, the API, the CLI and the worker read the same ``SweepSpec``; an error names the axis,
the value's index and the field, as in ``grid.learning_rate[2]: Input should be greater
than 0``.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from app.core.naming import derived_name, is_blank
from app.core.schemas import (
    ExperimentSpec,
    FieldError,
    Name,
    SpecError,
    Tags,
    error_message,
    parse_spec,
)
from app.core.zoo import MODELS

MAX_TRIALS = 2_000
"""The most trials one sweep may hold: a 1,000-trial sweep fits with room; the list, the
sweep page and the outbox stay fast at that size (``cifarlab bench web``)."""
MAX_AXIS_VALUES = 100
MAX_SEEDS = 100
MAX_ERRORS = 20
"""A bad axis fails every trial it is in; its error is said once, and at most this many."""

SEED_MAX = 2**31 - 1
SeedValue = Annotated[int, Ge(0), Le(SEED_MAX)]
SEEDS_SCHEMA = {
    "anyOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": SEED_MAX},
         "minItems": 1, "maxItems": MAX_SEEDS, "uniqueItems": True},
        {"type": "integer", "minimum": 1, "maximum": MAX_SEEDS},
    ],
    "title": "Seeds",
}  # fmt: skip
"""What clients may send: a list of seeds or a count, as the validators read it."""
Metric = Literal["val_accuracy", "val_loss"]


class RandomAxis(BaseModel):
    """Draws for one hyperparameter: ``uniform`` or ``log_uniform`` between ``low`` and
    ``high`` (log-uniform for scales such as a learning rate), or a ``choice`` of values.
    Integer hyperparameters take the draw rounded to the nearest integer."""

    model_config = ConfigDict(extra="forbid")

    distribution: Literal["uniform", "log_uniform", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = Field(default=None, min_length=1, max_length=MAX_AXIS_VALUES)

    @model_validator(mode="after")
    def _bounds(self) -> RandomAxis:
        if self.distribution == "choice":
            if self.values is None:
                raise ValueError("a choice needs values")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"{self.distribution} needs low and high")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError("low must be below high, both finite")
        if self.distribution == "log_uniform" and self.low <= 0:
            raise ValueError("log_uniform needs low above 0")
        return self

    def draw(self, rng: random.Random) -> Any:
        if self.values is not None:
            return rng.choice(self.values)
        assert self.low is not None and self.high is not None  # checked by _bounds
        if self.distribution == "log_uniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


class Pruning(BaseModel):
    """Stopping bad trials at epoch boundaries; off unless a sweep asks for it.

    ``median``: after ``warmup_epochs``, stop a trial whose metric at an epoch is worse than
    the median of the other trials at that epoch, once ``min_trials`` others have reached it
    (Optuna's MedianPruner). ``asha``: asynchronous successive halving; at rungs of
    ``min_epochs`` x ``reduction_factor``^k epochs only the best 1/``reduction_factor`` of
    the trials that reached the rung go on (Li et al., 2018)."""

    model_config = ConfigDict(extra="forbid")

    rule: Literal["none", "median", "asha"] = "none"
    metric: Metric = "val_accuracy"
    warmup_epochs: int = Field(default=1, ge=0, le=500)
    min_trials: int = Field(default=3, ge=1, le=MAX_TRIALS)
    min_epochs: int = Field(default=1, ge=1, le=500)
    reduction_factor: int = Field(default=3, ge=2, le=10)


class SweepSpec(BaseModel):
    """What a sweep runs, as every client sends it."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    model: str
    tags: Tags = Field(default_factory=list, max_length=20)
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="The base every trial starts from."
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="Values to try for each hyperparameter, all combined."
    )
    random: dict[str, RandomAxis] = Field(
        default_factory=dict, description="Hyperparameters drawn at random, `trials` times."
    )
    trials: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="Random draws; needed with `random`."
    )
    seeds: Annotated[list[SeedValue], WithJsonSchema(SEEDS_SCHEMA)] = Field(
        default_factory=lambda: [0],
        description="Seeds each configuration runs with: a list, or a count (0, 1, ...).",
    )
    max_parallel: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="Trials running at once; empty: no cap."
    )
    pruning: Pruning = Field(default_factory=Pruning)
    random_seed: SeedValue = Field(default=0, description="Seeds the random draws, so they repeat.")

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in grid.items():
            if not 1 <= len(values) <= MAX_AXIS_VALUES:
                raise ValueError(f"{name}: give 1 to {MAX_AXIS_VALUES} values")
        return grid

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_list(cls, seeds: Any) -> Any:
        """A count is seeds 0, 1, ...: read here rather than as a union of the two forms,
        whose refusals named pydantic's branches (``seeds.list[constrained-int]``) twice."""
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if not 1 <= seeds <= MAX_SEEDS:
                raise ValueError(f"give a count from 1 to {MAX_SEEDS}, or a list of seeds")
            return list(range(seeds))
        return seeds

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if not 1 <= len(seeds) <= MAX_SEEDS or len(set(seeds)) != len(seeds):
            raise ValueError(f"give 1 to {MAX_SEEDS} distinct seeds")
        return seeds

    @property
    def varied(self) -> list[str]:
        """The hyperparameters this sweep varies, grid axes first (seeds not included)."""
        return [*self.grid, *self.random]

    def log_scaled(self, name: str) -> bool:
        """Whether an axis reads best on a log scale: drawn log-uniform, or grid values that
        are all positive and span a factor of 10 or more."""
        if name in self.random:
            return self.random[name].distribution == "log_uniform"
        numbers = [v for v in self.grid.get(name, []) if isinstance(v, int | float)]
        return bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) >= 10


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its validated spec, and where its varied values came from."""

    spec: ExperimentSpec
    point: dict[str, Any]
    """The varied hyperparameters' values and the seed, as the sweep page plots them."""
    origins: dict[str, str] = field(default_factory=dict)
    """Where each varied value was written (``grid.learning_rate[2]``, ``random.dropout_rate``),
    so a check made after expansion (a warm start's source) names it as ``expand`` does."""

    def origin(self, name: str) -> str:
        """Where this trial's value of hyperparameter ``name`` came from: its axis, or the base."""
        return self.origins.get(name, f"hyperparameters.{name}")


def parse_sweep(data: Any) -> SweepSpec:
    """Validate the sweep itself (not yet its trials); raises ``SpecError`` naming fields."""
    if not isinstance(data, dict):
        raise SpecError([FieldError(field="sweep", message="expected a JSON object")])
    unnamed = is_blank(data.get("name"))
    try:
        sweep = SweepSpec.model_validate({**data, "name": "-"} if unnamed else data)
    except ValidationError as exc:
        raise SpecError.from_validation_error(exc) from None
    if sweep.model not in MODELS:
        known = ", ".join(sorted(MODELS))
        message = f"unknown model {sweep.model!r}; choose one of: {known}"
        raise SpecError([FieldError(field="model", message=message)])
    if errors := _axis_errors(sweep):
        raise SpecError(errors)
    return sweep.model_copy(update={"name": _base_name(sweep)}) if unnamed else sweep


def _base_name(sweep: SweepSpec) -> str:
    """A blank sweep name, as a blank run name is: what the base changes from its preset or
    the model's defaults ("fast-90 · epochs=10"); each trial's name adds its values and seed.
    A base that does not validate gets the model's name (``expand`` then names its errors)."""
    base = {"name": "-", "model": sweep.model, "tags": sweep.tags,
            "hyperparameters": sweep.hyperparameters}  # fmt: skip
    try:
        return derived_name(parse_spec(base))
    except SpecError:
        return sweep.model


def _replaced_base_errors(sweep: SweepSpec) -> list[FieldError]:
    """Base values every trial replaces (the seed, the axes) are never in a trial's spec, so
    the trials' validation cannot see them; they are still the sweep's stored spec, and a
    single launch refuses the same value. Each is checked against its field alone."""
    fields = MODELS[sweep.model].hyperparameters.model_fields
    errors = []
    for name in ({"seed", *sweep.varied} & sweep.hyperparameters.keys()) & fields.keys():
        try:
            TypeAdapter(fields[name].rebuild_annotation()).validate_python(
                sweep.hyperparameters[name]
            )
        except ValidationError as exc:
            message = error_message(exc.errors()[0])
            errors.append(FieldError(field=f"hyperparameters.{name}", message=message))
    return errors


def _as_read(fields: dict[str, FieldInfo], name: str, values: list[Any]) -> list[Any]:
    """``values`` as the hyperparameter reads them (``"1"`` and ``1`` are one integer); a
    value it does not take stays as given, for ``expand`` to name its error."""
    if name not in fields:
        return values
    adapter: TypeAdapter[Any] = TypeAdapter(fields[name].rebuild_annotation())
    read = []
    for value in values:
        try:
            read.append(adapter.validate_python(value))
        except ValidationError:
            read.append(value)
    return read


def _repeated_values(sweep: SweepSpec) -> list[FieldError]:
    """A value given twice on one axis: on the grid it trains the same trials twice, in a
    choice it is drawn twice as often; neither is said anywhere, so each repeat is refused as
    a repeated seed is, naming where it was written first."""
    fields = MODELS[sweep.model].hyperparameters.model_fields
    axes = [(f"grid.{name}", name, values) for name, values in sweep.grid.items()]
    axes += [(f"random.{name}.values", name, axis.values)
             for name, axis in sweep.random.items() if axis.values is not None]  # fmt: skip
    errors = []
    for where, name, values in axes:
        read = _as_read(fields, name, values)
        for index, value in enumerate(read):
            first = next(earlier for earlier, other in enumerate(read) if other == value)
            if first < index:
                message = f"repeats {where}[{first}]; give each value once"
                errors.append(FieldError(field=f"{where}[{index}]", message=message))
    return errors


def _axis_errors(sweep: SweepSpec) -> list[FieldError]:
    """What no single field's validation can see: axes the model lacks, the seed as an axis,
    one hyperparameter on two axes, a value repeated on an axis (``_repeated_values``), a
    trial budget without random axes or the reverse, and base values the trials replace
    (``_replaced_base_errors``)."""
    known = set(hyperparameter_names(sweep.model))
    errors = [*_replaced_base_errors(sweep), *_repeated_values(sweep)]
    for kind, axes in (("grid", sweep.grid), ("random", sweep.random)):
        for name in axes:
            if name == "seed":
                message = "vary the seed with `seeds`, not with an axis"
            elif name not in known:
                message = f"{sweep.model} has no hyperparameter {name}"
            elif kind == "random" and name in sweep.grid:
                message = "already a grid axis; keep one"
            else:
                continue
            errors.append(FieldError(field=f"{kind}.{name}", message=message))
    if sweep.random and sweep.trials is None:
        errors.append(FieldError(field="trials", message="random axes need the number of draws"))
    if sweep.trials is not None and not sweep.random:
        errors.append(FieldError(field="trials", message="counts random draws; add a random axis"))
    return errors


def _integer_fields(model: str) -> set[str]:
    fields = MODELS[model].hyperparameters.model_fields
    return {name for name, info in fields.items() if info.annotation in (int, int | None)}


def _draws(sweep: SweepSpec) -> list[dict[str, Any]]:
    if not sweep.random:
        return [{}]
    rng = random.Random(sweep.random_seed)
    integers = _integer_fields(sweep.model)
    draws = []
    for _ in range(sweep.trials or 0):
        draw = {name: axis.draw(rng) for name, axis in sweep.random.items()}
        draws.append({k: round(v) if k in integers else v for k, v in draw.items()})
    return draws


def _label(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _trial_name(sweep: SweepSpec, point: dict[str, Any]) -> str:
    varied = " ".join(f"{k}={_label(point[k])}" for k in sweep.varied)
    name = f"{sweep.name} · {varied} · seed {point['seed']}" if varied else (
        f"{sweep.name} · seed {point['seed']}"
    )  # fmt: skip
    return name[:200]


def _where(error_field: str, origins: dict[str, str]) -> str:
    """``hyperparameters.learning_rate`` of a trial -> the axis that set it."""
    parts = error_field.split(".")
    if parts[0] != "hyperparameters" or len(parts) < 2 or parts[1] not in origins:
        return error_field
    return origins[parts[1]]


def expand(sweep: SweepSpec) -> list[Trial]:
    """Every trial's spec, validated; raises ``SpecError`` naming each bad axis value once,
    before anything is stored. Too many trials is refused the same way."""
    grid_points = list(itertools.product(*(enumerate(v) for v in sweep.grid.values())))
    draws = _draws(sweep)
    total = len(grid_points) * len(draws) * len(sweep.seeds)
    if total > MAX_TRIALS:
        message = (
            f"{len(grid_points)} grid points x {len(draws)} draws x {len(sweep.seeds)} "
            f"seeds make {total} trials; a sweep holds at most {MAX_TRIALS}"
        )
        raise SpecError([FieldError(field="grid", message=message)])
    trials: list[Trial] = []
    errors: dict[str, FieldError] = {}
    for grid_point in grid_points:
        grid_values = {name: value for name, (_, value) in zip(sweep.grid, grid_point, strict=True)}
        origins = {name: f"grid.{name}[{index}]"
                   for name, (index, _) in zip(sweep.grid, grid_point, strict=True)}  # fmt: skip
        origins.update({name: f"random.{name}" for name in sweep.random})
        for draw in draws:
            for seed in sweep.seeds:
                point = {**grid_values, **draw, "seed": seed}
                data = {
                    "name": _trial_name(sweep, point),
                    "model": sweep.model,
                    "tags": sweep.tags,
                    "hyperparameters": {**sweep.hyperparameters, **point},
                }
                try:
                    trials.append(Trial(spec=parse_spec(data), point=point, origins=origins))
                except SpecError as exc:
                    for error in exc.errors:
                        where = _where(error.field, origins)
                        errors.setdefault(where, FieldError(field=where, message=error.message))
                if len(errors) >= MAX_ERRORS:
                    raise SpecError(list(errors.values()))
    if errors:
        raise SpecError(list(errors.values()))
    return trials


def hyperparameter_names(model: str) -> list[str]:
    """What a sweep of ``model`` may vary: its hyperparameters, the seed aside."""
    fields = MODELS[model].hyperparameters.model_fields
    return [name for name in fields if name != "seed"]
