"""The experiments list's filters, parsed once for GET /api/experiments and the ``/`` page.

The API takes them as typed query parameters and refuses a bad one with 422 naming it; the
page, whose URLs people edit by hand, drops a bad one, shows the rest, and says what it left
out in the API's words (``page_filters``).
Filters on the table's extra columns (``hp.learning_rate=0.001``, ``best_val_accuracy.min=0.8``,
``app.core.columns``) are named by their column, so they come from the query string as a
whole (``column_filters``), with the same two rules.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, field_validator

from app.core import crud
from app.core.columns import COLUMNS, ColumnFilter, parse_filter
from app.core.models import Status
from app.core.schemas import RowId, error_message
from app.web.auth import Principal
from app.web.single_values import repeated

# The experiment's own columns, then every metric and hyperparameter column.
SortKey = enum.StrEnum(  # type: ignore[misc]
    "SortKey", {key: key for key in (*crud.SORTABLE, *COLUMNS)}
)
DEFAULT_SORT = SortKey("created_at")
KNOWN_STATUSES = [status.value for status in Status]


@dataclass(frozen=True)
class IgnoredFilter:
    """A filter the page left out: its query parameter, the value given (shown again in its
    box, to correct) and why, in the words of the API's 422 for the same parameter."""

    param: str
    text: str
    message: str


def _ignored(error: Mapping[str, Any]) -> IgnoredFilter:
    """A validation error, as the API's handler words it, of a filter the page leaves out."""
    param = ".".join(str(part) for part in error["loc"] if part != "query")
    return IgnoredFilter(
        param=param, text=str(error.get("input", "")), message=error_message(error)
    )


class ExperimentFilters(BaseModel):
    """What to list and in which order; pagination stays with each caller (the API's
    limit and offset, the page's page number)."""

    status: Status | None = None
    model: str | None = None
    tag: str | None = None
    owner: str | None = Field(default=None, description="A username, or `me`")
    q: str | None = Field(default=None, max_length=200, description="Text in name or notes")
    sweep: RowId | None = Field(default=None, description="Only this sweep's trials")
    sort: SortKey = Field(
        default=DEFAULT_SORT,
        description="Column to sort by: an experiment's column, a metric "
        "(`best_val_accuracy`) or a hyperparameter (`hp.learning_rate`)",
    )
    order: Literal["asc", "desc"] = "desc"
    group: Literal["sweep"] | None = Field(
        default=None, description="`sweep`: each sweep's trials together, newest sweep first"
    )

    @field_validator("status", mode="before")
    @classmethod
    def _statuses(cls, value: Any) -> Any:
        """Checked before the type, for the page's one status and the API's several alike, so
        a bad one reads the same on both (pydantic's enum error listed the statuses quoted)
        and the API's error names ``status``, not ``status.1``."""
        for text in value if isinstance(value, list) else [value]:
            if text is not None and text not in KNOWN_STATUSES:
                known = ", ".join(KNOWN_STATUSES)
                raise ValueError(f"unknown status {text!r}; choose from {known}")
        return value

    @classmethod
    def lenient(cls, params: Mapping[str, str]) -> tuple[ExperimentFilters, list[IgnoredFilter]]:
        """The filters a hand-edited URL names, leaving out any that do not parse (an unknown
        sort column sorts by the default), and those left out. The page's form sends every
        field, empty ones as ``""``: those filter nothing. The API states no such rule, so it
        refuses ``status=``."""
        given = {name: params[name].strip() for name in cls.model_fields if name in params}
        data = {name: value for name, value in given.items() if value}
        try:
            return cls.model_validate(data), []
        except ValidationError as exc:
            errors = [error for error in exc.errors() if error["loc"]]
            bad = {error["loc"][0] for error in errors}
            kept = cls.model_validate({k: v for k, v in data.items() if k not in bad})
            return kept, [_ignored(error) for error in errors]

    @property
    def filtered(self) -> bool:
        return any((self.status, self.model, self.tag, self.q, self.owner, self.sweep))

    def owner_name(self, principal: Principal) -> str | None:
        """``me`` is whoever is signed in; with nobody signed in it filters nothing."""
        if self.owner == "me":
            return principal.user.username if principal.user else None
        return self.owner

    def query(self, principal: Principal, where: Sequence[ColumnFilter] = ()) -> dict[str, Any]:
        """Keyword arguments for ``crud.list_experiments``; ``where``: the column filters."""
        return {
            "status": self.status, "model": self.model, "tag": self.tag, "q": self.q,
            "owner": self.owner_name(principal), "sweep_id": self.sweep, "where": where,
            "sort": str(self.sort), "descending": self.order == "desc",
            "group_by_sweep": self.group == "sweep",
        }  # fmt: skip

    def as_strings(self) -> dict[str, str]:
        """For the page's links and inputs: each filter as text, ``""`` when unset."""
        return {name: "" if value is None else str(value) for name, value in self}


class ApiExperimentFilters(ExperimentFilters):
    """The API's filters: ``status``, ``model`` and ``tag`` may each be repeated
    (``?status=failed&status=cancelled``) and match any of their values; different filters
    must all match. A status that is not one is a 422 naming ``status`` (``_statuses``)."""

    status: list[str] = Field(  # type: ignore[assignment]
        default_factory=list,
        description="Any of these statuses; repeat to give several",
        json_schema_extra={"items": {"type": "string", "enum": [s.value for s in Status]}},
    )
    model: list[str] = Field(  # type: ignore[assignment]
        default_factory=list, description="Any of these models; repeat to give several"
    )
    tag: list[str] = Field(  # type: ignore[assignment]
        default_factory=list, description="Any of these tags; repeat to give several"
    )


def _parsed_filters(
    pairs: Sequence[tuple[str, str]],
) -> tuple[list[ColumnFilter], list[dict[str, Any]]]:
    """The column filters ``pairs`` (a query string's name and value, in order) state, and
    an error for each one that does not parse."""
    parsed, errors = [], []
    for name, text in pairs:
        try:
            found = parse_filter(name, text)
        except ValueError as exc:
            error = {"loc": ("query", name), "msg": str(exc), "type": "value_error", "input": text}
            errors.append(error)
            continue
        if found is not None:
            parsed.append(found)
    return parsed, errors


def column_filters(request: Request) -> list[ColumnFilter]:
    """The API's column filters; a bad one, or a hyperparameter no model has, is a 422
    naming the parameter. Each takes one value: ``hp.seed=0&hp.seed=2`` matched no run at
    all (both had to hold), so a repeat is a 422 naming it, as the schema's own parameters'
    are (``app.web.single_values``); several values of one setting are a range
    (``hp.seed.min=0&hp.seed.max=2``)."""
    params = request.query_params
    pairs = params.multi_items()
    counts = {name: len(params.getlist(name)) for name, _ in pairs}
    parsed, errors = _parsed_filters([(n, t) for n, t in pairs if counts[n] == 1])
    repeats = [
        repeated("query", name, count)
        for name, count in counts.items()
        if count > 1 and _names_a_filter(name)
    ]
    if repeats or errors:
        raise RequestValidationError([*repeats, *errors])
    return parsed


def _names_a_filter(name: str) -> bool:
    """Whether a query parameter is a column filter, or tries to be (``hp.nope``)."""
    try:
        return parse_filter(name, "0") is not None
    except ValueError:
        return True


def lenient_column_filters(request: Request) -> tuple[list[ColumnFilter], list[IgnoredFilter]]:
    """The page's column filters, and the bad ones, which filter nothing, as do the form's
    empty fields. A filter given twice takes its last value that parses: the form sends the
    filters already shown as hidden fields and the one just typed after them, so a new value
    for a shown filter replaces it rather than both having to hold."""
    given = [(n, t) for n, t in request.query_params.multi_items() if t.strip()]
    parsed, errors = _parsed_filters(given)
    last: dict[str, ColumnFilter] = {}
    for found in parsed:
        last.pop(found.param, None)  # keeps the order in which the values came
        last[found.param] = found
    return list(last.values()), [_ignored(error) for error in errors]


@dataclass(frozen=True)
class PageFilters:
    """What the ``/`` page lists by, and each filter it left out. A bad value in a URL people
    edit by hand should not empty the page, nor be dropped unsaid: the rows come unfiltered
    by it and the page names it, with the API's reason, above them."""

    filters: ExperimentFilters
    where: list[ColumnFilter]
    ignored: list[IgnoredFilter]


def page_filters(request: Request) -> PageFilters:
    filters, ignored = ExperimentFilters.lenient(request.query_params)
    where, ignored_columns = lenient_column_filters(request)
    return PageFilters(filters=filters, where=where, ignored=[*ignored, *ignored_columns])
