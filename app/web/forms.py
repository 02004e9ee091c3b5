"""The launch form, generated from each model's hyperparameter JSON schema, and its presets.

Pure functions over the model zoo and the presets (no FastAPI, no database), so the page
route stays a thin shell and every rule here is testable on plain data. The form submits
strings; ``spec_from_form`` turns them into a spec dict for the same ``parse_spec`` the API
and CLI use, so a spec the form accepts is one the worker can run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel

from app.core.presets import PRESETS, Preset
from app.core.schemas import FieldError
from app.core.sweeps import MAX_SEEDS
from app.core.zoo import MODELS, ModelInfo

HP_PREFIX = "hp."
VARY_PREFIX = "vary."
"""A field's "vary" box: comma-separated values that make it a sweep's grid axis."""
SWEEP_FIELDS = ("seeds", "max_parallel")
UNVARIED = frozenset({"seed"})
"""Hyperparameters without a vary box: seeds are varied with the Seeds box."""
PRIMARY_GROUPS = ("Training", "Model")
OTHER_GROUP = "Other settings"
FAMILY_TITLES = {"from_scratch": "From scratch", "transfer": "Transfer learning"}
PRESET_KIND_TITLES = {
    "study": "The original study",
    "quick": "Quick (minutes on a CPU)",
    "beyond": "Beyond the study",
}


@dataclass(frozen=True)
class FormField:
    """One hyperparameter input; ``nullable`` fields submit an empty input as null."""

    key: str
    label: str
    help: str
    kind: Literal["number", "select", "text"]
    default: str
    nullable: bool
    group: str
    attributes: dict[str, str] = field(default_factory=dict)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def input_name(self) -> str:
        return HP_PREFIX + self.key

    @property
    def error_path(self) -> str:
        return f"hyperparameters.{self.key}"

    @property
    def vary_name(self) -> str | None:
        return None if self.key in UNVARIED else VARY_PREFIX + self.key

    @property
    def vary_error_path(self) -> str:
        """Where a sweep's errors about this field's values point: ``grid.learning_rate[2]``."""
        return f"grid.{self.key}"

    @property
    def vary_placeholder(self) -> str:
        choices = [value for value, _ in self.options if value]
        return ", ".join(choices[:4]) if choices else "e.g. 0.001, 0.003"


@dataclass(frozen=True)
class FieldGroup:
    title: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class HyperparameterForm:
    """The inputs of one hyperparameter class; the models that share the class share it."""

    key: str
    models: tuple[str, ...]
    groups: tuple[FieldGroup, ...]

    @property
    def fields(self) -> tuple[FormField, ...]:
        return tuple(f for group in self.groups for f in group.fields)

    def input_id(self, field: FormField) -> str:
        """Unique on the page, which holds every class's inputs (one fieldset each)."""
        return f"hp-{self.key}-{field.key}"

    def vary_id(self, field: FormField) -> str:
        return self.input_id(field) + "-vary"


# --- schema -> inputs ---------------------------------------------------------------------------


def _to_text(value: Any) -> str:
    """A value as an input holds it; booleans as the select's ``true``/``false`` options."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number_attributes(schema: dict[str, Any]) -> dict[str, str]:
    attributes = {"step": "1" if schema.get("type") == "integer" else "any"}
    for bound, names in (("min", ("minimum", "exclusiveMinimum")), ("max", ("maximum",))):
        value = next((schema[name] for name in names if name in schema), None)
        if value is not None:
            attributes[bound] = _to_text(value)
    return attributes


def _options(schema: dict[str, Any], nullable: bool) -> tuple[tuple[str, str], ...]:
    if schema.get("type") == "boolean":
        choices: list[tuple[str, str]] = [("true", "Yes"), ("false", "No")]
    else:
        choices = [(_to_text(value), _to_text(value)) for value in schema.get("enum", [])]
    return ((("", "—"),) if nullable else ()) + tuple(choices)


def form_field(key: str, prop: dict[str, Any]) -> FormField:
    """One JSON-schema property -> one input; ``anyOf [X, null]`` is an optional X."""
    variants: list[dict[str, Any]] = prop.get("anyOf", [prop])
    nullable = any(variant.get("type") == "null" for variant in variants)
    schema: dict[str, Any] = next((v for v in variants if v.get("type") != "null"), {})
    is_number = schema.get("type") in ("integer", "number")
    is_choice = schema.get("type") == "boolean" or "enum" in schema
    kind: Literal["number", "select", "text"] = (
        "number" if is_number else "select" if is_choice else "text"
    )
    return FormField(
        key=key,
        label=prop.get("title", key.replace("_", " ").capitalize()),
        help=prop.get("description", ""),
        kind=kind,
        default=_to_text(prop.get("default")),
        nullable=nullable,
        group=prop.get("group", OTHER_GROUP),
        attributes=_number_attributes(schema) if is_number else {},
        options=_options(schema, nullable) if is_choice else (),
    )


def grouped(fields: list[FormField]) -> tuple[FieldGroup, ...]:
    """Fields by their schema ``group``: the primary groups first, the rest as declared."""
    declared = list(dict.fromkeys(f.group for f in fields))
    rank = {title: PRIMARY_GROUPS.index(title) for title in PRIMARY_GROUPS}
    titles = sorted(declared, key=lambda title: rank.get(title, len(rank)))
    return tuple(FieldGroup(t, tuple(f for f in fields if f.group == t)) for t in titles)


@lru_cache
def hyperparameter_forms() -> tuple[HyperparameterForm, ...]:
    """One form per hyperparameter class, so nine transfer models do not repeat 35 inputs."""
    models_by_class: dict[type[BaseModel], list[str]] = {}
    for info in MODELS.values():
        models_by_class.setdefault(info.hyperparameters, []).append(info.name)
    forms = []
    for hyperparameters, names in models_by_class.items():
        properties = hyperparameters.model_json_schema().get("properties", {})
        fields = [form_field(key, prop) for key, prop in properties.items()]
        forms.append(HyperparameterForm(names[0], tuple(names), grouped(fields)))
    return tuple(forms)


def form_for(model: str) -> HyperparameterForm | None:
    return next((form for form in hyperparameter_forms() if model in form.models), None)


def _fields_of(model: str) -> tuple[FormField, ...]:
    form = form_for(model)
    return form.fields if form else ()


def model_choices() -> list[tuple[str, list[ModelInfo]]]:
    """The model select's option groups, by family."""
    families: dict[str, list[ModelInfo]] = {}
    for info in MODELS.values():
        families.setdefault(info.family, []).append(info)
    return [
        (FAMILY_TITLES.get(family, family.replace("_", " ").capitalize()), infos)
        for family, infos in families.items()
    ]


def open_groups(
    form: HyperparameterForm, values: dict[str, str], invalid_ids: set[str]
) -> set[str]:
    """Primary groups are open; another opens when it holds a changed value or an input in
    error (``invalid_ids``)."""
    opened = set(PRIMARY_GROUPS)
    for group in form.groups:
        for f in group.fields:
            changed = values.get(f.input_name, f.default).strip() != f.default
            varied = bool(f.vary_name and values.get(f.vary_name, "").strip())
            if changed or varied or {form.input_id(f), form.vary_id(f)} & invalid_ids:
                opened.add(group.title)
    return opened


# --- form values <-> specs ----------------------------------------------------------------------


def split_tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def spec_from_form(values: dict[str, str]) -> dict[str, Any]:
    """Form strings -> a spec dict. An empty input is left out so the default applies, except
    for a nullable field, where empty means null ("all images"). Numbers stay strings:
    pydantic's lax mode coerces them and names the field when it cannot."""
    model = values.get("model", "")
    nullable = {f.key for f in _fields_of(model) if f.nullable}
    hyperparameters: dict[str, Any] = {}
    for name, raw in values.items():
        if not name.startswith(HP_PREFIX):
            continue
        key, value = name.removeprefix(HP_PREFIX), raw.strip()
        if value:
            hyperparameters[key] = value
        elif key in nullable:
            hyperparameters[key] = None
    return {
        "name": values.get("name", ""),
        "model": model,
        "tags": split_tags(values.get("tags", "")),
        "hyperparameters": hyperparameters,
    }


def is_sweep(values: dict[str, str]) -> bool:
    """A setting given several values, or more than one seed, makes the form a sweep."""
    varied = any(k.startswith(VARY_PREFIX) and v.strip() for k, v in values.items())
    return varied or values.get("seeds", "").strip() not in ("", "1")


def _grid_value(text: str, is_number: bool) -> Any:
    """A number field's values as numbers, so the sweep stores and plots numbers (and can tell
    a log-scaled axis); anything that does not parse stays text for validation to name."""
    if is_number:
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                continue
    return text


def _integer(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def sweep_from_form(values: dict[str, str]) -> dict[str, Any]:
    """Form strings -> a sweep dict for ``app.services.sweeps.launch_sweep``: the spec as
    ``spec_from_form`` reads it is the base, each filled vary box a grid axis (empty pieces
    dropped, so a trailing comma is harmless), and N seeds count up from the form's seed."""
    spec = spec_from_form(values)
    kinds = {f.key: f.kind for f in _fields_of(spec["model"])}
    grid: dict[str, list[Any]] = {}
    for name, raw in values.items():
        pieces = [piece.strip() for piece in raw.split(",") if piece.strip()]
        if name.startswith(VARY_PREFIX) and pieces:
            key = name.removeprefix(VARY_PREFIX)
            grid[key] = [_grid_value(piece, kinds.get(key) == "number") for piece in pieces]
    base = {k: v for k, v in spec["hyperparameters"].items() if k not in grid}
    # Always a list: a bad count then reads "give 1 to 100 distinct seeds", not the errors of
    # both branches of the API's list-or-count field. (Both boxes are number inputs.)
    count = _integer(values.get("seeds", "").strip() or "1") or 0
    first = _integer(values.get(HP_PREFIX + "seed", "")) or 0
    seeds = list(range(first, first + min(max(count, 0), MAX_SEEDS + 1)))
    data = {**spec, "hyperparameters": base, "grid": grid, "seeds": seeds}
    if max_parallel := values.get("max_parallel", "").strip():
        data["max_parallel"] = max_parallel
    return data


def values_from_spec(spec: dict[str, Any]) -> dict[str, str]:
    """A stored spec -> form values (a copy's name is chosen by its page: ``copy_name``)."""
    values = {
        "name": str(spec.get("name", "")),
        "model": str(spec.get("model", "")),
        "tags": ", ".join(spec.get("tags", [])),
    }
    for key, value in spec.get("hyperparameters", {}).items():
        values[HP_PREFIX + key] = _to_text(value)
    return values


# --- errors next to their inputs ----------------------------------------------------------------


def _error_target(error_field: str, paths: list[str]) -> str | None:
    """The path of the input an error belongs to: ``tags.0`` belongs to ``tags``."""
    matches = [p for p in paths if error_field == p or error_field.startswith((p + ".", p + "["))]
    return max(matches, key=len, default=None)


def attach_errors(
    errors: list[FieldError], inputs: dict[str, str]
) -> tuple[dict[str, list[FieldError]], list[FieldError]]:
    """Errors by the id of the input each is shown next to, and those that belong to no
    input (the form's error summary lists them alone). ``inputs``: each input's id by the
    path its errors name."""
    attached: dict[str, list[FieldError]] = {}
    unattached: list[FieldError] = []
    for error in errors:
        target = _error_target(error.field, list(inputs))
        if target is None:
            unattached.append(error)
        else:
            attached.setdefault(inputs[target], []).append(error)
    return attached, unattached


def group_errors(
    errors: list[FieldError], model: str
) -> tuple[dict[str, list[FieldError]], list[FieldError]]:
    """The launch form's errors by the id of their input; a sweep's ``grid.learning_rate[2]``
    goes next to the learning rate's vary box."""
    inputs = {path: path for path in ("name", "model", "tags", *SWEEP_FIELDS)}
    form = form_for(model)
    if form is not None:
        for f in form.fields:
            inputs[f.error_path] = form.input_id(f)
            if f.vary_name:
                inputs[f.vary_error_path] = form.vary_id(f)
    return attach_errors(errors, inputs)


def form_context(values: dict[str, str], errors: list[FieldError]) -> dict[str, Any]:
    """What new.html needs to draw the form with ``values`` and ``errors`` in place; an
    unknown or missing model falls back to the first, so the page always has a form."""
    model = values.get("model", "")
    if model not in MODELS:
        model = next(iter(MODELS))
    chosen_form = form_for(model)
    attached, unattached = group_errors(errors, model)
    return {
        "model_choices": model_choices(),
        "forms": hyperparameter_forms(),
        "chosen": model,
        "chosen_form": chosen_form.key if chosen_form else "",
        "primary_groups": PRIMARY_GROUPS,
        "open_groups": open_groups(chosen_form, values, set(attached)) if chosen_form else set(),
        "values": values,
        "errors": errors,
        "attached": attached,
        "unattached": unattached,
        "sweep": is_sweep(values),
    }


# --- presets ------------------------------------------------------------------------------------


def preset_sections() -> list[tuple[str, list[Preset]]]:
    """Preset cards under their kind's title, in the order a newcomer reads them."""
    return [
        (title, [preset for preset in PRESETS.values() if preset.kind == kind])
        for kind, title in PRESET_KIND_TITLES.items()
        if any(preset.kind == kind for preset in PRESETS.values())
    ]


def study_preset(tags: list[str]) -> Preset | None:
    """The study preset a run was launched from (presets tag their runs with their name), so
    its page can set the result beside what the study published."""
    for tag in tags:
        preset = PRESETS.get(tag)
        if preset and preset.kind == "study" and preset.published_test_accuracy is not None:
            return preset
    return None


# --- a stored spec on the experiment page -------------------------------------------------------


@dataclass(frozen=True)
class SpecGroup:
    """One group of a stored spec's hyperparameters, for the experiment page."""

    title: str
    rows: tuple[tuple[str, str, bool], ...]  # key, shown value, changed from the default
    open: bool


def shown_value(value: Any) -> str:
    """A stored setting as a person reads it: yes/no, a dash for null."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def spec_groups(model: str, hyperparameters: dict[str, Any]) -> list[SpecGroup]:
    """Grouped like the form; groups with a value changed from its default start open."""
    form = form_for(model)
    values = {HP_PREFIX + key: _to_text(value) for key, value in hyperparameters.items()}
    opened = open_groups(form, values, set()) if form else set()
    groups = []
    for group in form.groups if form else ():
        rows = tuple(
            (f.key, shown_value(hyperparameters[f.key]), values[f.input_name] != f.default)
            for f in group.fields
            if f.key in hyperparameters
        )
        groups.append(SpecGroup(group.title, rows, group.title in opened))
    known = {f.key for f in _fields_of(model)}
    others = tuple((k, shown_value(v), False) for k, v in hyperparameters.items() if k not in known)
    if others:  # a spec stored before its model's class changed: still show all of it
        groups.append(SpecGroup(OTHER_GROUP, others, True))
    return groups


# --- importing a classification report ----------------------------------------------------------

IMPORT_FIELDS = (
    "name", "report_text", "confusion_matrix_text", "tags", "notes", "model", "hyperparameters",
)  # fmt: skip


def import_errors(
    errors: list[FieldError],
) -> tuple[dict[str, list[FieldError]], list[FieldError]]:
    """The import form's errors by its inputs, whose ids are their names."""
    return attach_errors(errors, {name: name for name in IMPORT_FIELDS})


class _NotFinite(ValueError):
    """NaN, Infinity or a float beyond float range, written as a number."""


def _finite_json(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers too large for a float (Python
    reads all three; JSON and PostgreSQL have none of them) and too deep a nesting, each as a
    ``ValueError`` that says so."""

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise _NotFinite(f"{number} is not a finite number")
        return value

    def refuse(constant: str) -> float:
        raise _NotFinite(f"{constant} is not a finite number")

    try:
        return json.loads(text, parse_float=finite, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _setting_value(key: str, text: str) -> Any:
    """``20`` and ``0.001`` as numbers, ``true`` as a boolean, anything else as its text; a
    ``ValueError`` naming ``key`` for NaN, Infinity and 1e999, which are not numbers to store."""
    try:
        value = _finite_json(text)
    except _NotFinite as exc:
        raise ValueError(f"{key}: {exc}") from None
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def settings_from_text(text: str) -> Any:
    """The import form's settings box: a JSON object as it is (validation names what is
    wrong with it), or ``name=value`` lines (commas work as separators too). A line without
    ``=``, and a value that is not a finite number where a number is written, is a
    ``ValueError`` naming it."""
    if text.strip().startswith("{"):
        try:
            return _finite_json(text)
        except ValueError as exc:
            raise ValueError(f"not a JSON object: {exc}") from None
    settings: dict[str, Any] = {}
    for piece in (p.strip() for p in text.replace(",", "\n").splitlines()):
        if not piece:
            continue
        key, equals, value = piece.partition("=")
        if not equals:
            raise ValueError(f"expected name=value, got {piece!r}")
        settings[key.strip()] = _setting_value(key.strip(), value.strip())
    return settings


def import_data(values: dict[str, str]) -> dict[str, Any]:
    """The import form's strings as the API's ``ReportImport`` body: tags split at commas,
    an empty matrix or model left out, the settings box read by ``settings_from_text``
    (``ValueError`` when it cannot be). ``app.services.importing`` validates and parses it."""
    data: dict[str, Any] = {key: values.get(key, "") for key in IMPORT_FIELDS}
    data["tags"] = split_tags(data["tags"])
    data["confusion_matrix_text"] = data["confusion_matrix_text"] or None
    data["model"] = data["model"].strip() or None
    data["hyperparameters"] = settings_from_text(data["hyperparameters"])
    return data
