"""The runs table's extra columns: any hyperparameter of any model, and the metrics a run
leaves behind. Both the list page and GET /api/experiments show, sort and filter on them, so
a name is checked here once (``find_column``) and crud turns it into SQL.

A hyperparameter column is ``hp.<name>`` and reads the stored spec's JSON; a metric column
is its own name. ``test_accuracy`` and ``macro_f1`` are the experiment's own columns;
``best_val_accuracy`` is the highest validation accuracy over its epochs.
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from app.core.zoo import MODELS

HP_PREFIX = "hp."


class Kind(enum.StrEnum):
    """How a column's values compare and how a filter's text is read."""

    number = "number"
    boolean = "boolean"
    text = "text"


@dataclass(frozen=True)
class Column:
    name: str  # as URLs and the API spell it: "hp.learning_rate", "best_val_accuracy"
    label: str
    kind: Kind
    hyperparameter: str | None = None  # the key in spec["hyperparameters"]
    group: str = "Metrics"  # the chooser's section

    def parse(self, text: str) -> float | bool | str:
        """A filter's value as this column holds it; ValueError says what was expected."""
        text = text.strip()
        if self.kind is Kind.number:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"expected a finite number, got {text!r}")
            return value
        if self.kind is Kind.boolean:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if not text:
            raise ValueError("expected a value")
        return text


def _kind(annotation: Any) -> Kind:
    """int, float, ``int | None``: a number; bool; a Literal of names: text."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation is bool:
        return Kind.boolean
    if annotation in (int, float):
        return Kind.number
    return Kind.text


def _hyperparameter_columns() -> dict[str, Column]:
    """Every hyperparameter any model of the zoo has, once, in the models' field order."""
    columns: dict[str, Column] = {}
    for info in MODELS.values():
        for key, field in info.hyperparameters.model_fields.items():
            name = HP_PREFIX + key
            if name not in columns:
                group = (field.json_schema_extra or {}).get("group", "Hyperparameters")  # type: ignore[union-attr]
                label = key.replace("_", " ")
                columns[name] = Column(name, label, _kind(field.annotation), key, str(group))
    return columns


METRICS = {
    "best_val_accuracy": Column("best_val_accuracy", "Best val accuracy", Kind.number),
    "test_accuracy": Column("test_accuracy", "Test accuracy", Kind.number),
    "macro_f1": Column("macro_f1", "Macro F1", Kind.number),
}
HYPERPARAMETERS = _hyperparameter_columns()
COLUMNS: dict[str, Column] = {**METRICS, **HYPERPARAMETERS}
"""Every column the table may add, by name."""


def find_column(name: str) -> Column | None:
    return COLUMNS.get(name)


Operator = Literal["eq", "min", "max"]


@dataclass(frozen=True)
class ColumnFilter:
    """``hp.learning_rate=0.001`` (eq), ``best_val_accuracy.min=0.8``, ``….max=…``: min and
    max are inclusive. Runs without the value (an imported report has no hyperparameters,
    a queued run no epochs) never match."""

    column: Column
    operator: Operator
    value: float | bool | str

    @property
    def text(self) -> str:
        """The value as a URL states it, read back by ``Column.parse`` to the same value."""
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, float) and self.value.is_integer():
            return str(int(self.value))
        return str(self.value)

    @property
    def param(self) -> str:
        """The query parameter that states it."""
        return self.column.name if self.operator == "eq" else f"{self.column.name}.{self.operator}"


def split_filter_param(param: str) -> tuple[str, Operator]:
    """A filter's query parameter as the column it names and how it compares:
    ``best_val_accuracy.min`` -> (``best_val_accuracy``, ``min``), ``hp.seed`` -> eq."""
    bounds: tuple[Operator, ...] = ("min", "max")
    for bound in bounds:
        if param.endswith("." + bound):
            return param[: -len(bound) - 1], bound
    return param, "eq"


def parse_filter(param: str, text: str) -> ColumnFilter | None:
    """The filter a query parameter states; None when the parameter names no column filter
    (``status``, ``page``); ValueError naming what is wrong when it tries to and fails."""
    name, operator = split_filter_param(param)
    column = find_column(name)
    if column is None:
        if name.startswith(HP_PREFIX):
            raise ValueError(f"no model has a hyperparameter {name[len(HP_PREFIX) :]!r}")
        if operator != "eq":
            raise ValueError(f"no column {name!r} to filter on")
        return None
    if operator != "eq" and column.kind is not Kind.number:
        raise ValueError(f"{name} is not a number: filter it with {name}=value")
    return ColumnFilter(column, operator, column.parse(text))  # type: ignore[arg-type]
