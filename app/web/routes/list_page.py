"""The experiments list: filters (``app.web.list_filters``), sortable columns, pages.

Besides its own columns the table shows any metric or hyperparameter the person picks
(``cols=best_val_accuracy,hp.learning_rate``; the page's script remembers the choice), sorts
and filters on them, and can group a sweep's trials under one header row (``group=sweep``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import Response

from app.core import crud
from app.core.columns import (
    COLUMNS,
    HYPERPARAMETERS,
    METRICS,
    Column,
    ColumnFilter,
    Kind,
    split_filter_param,
)
from app.core.models import INTEGER_MAX, Status
from app.core.schemas import ExperimentSummary, summaries
from app.web.deps import SessionDep, SortedColumnsDep
from app.web.formatting import format_number, format_percent
from app.web.list_filters import (
    DEFAULT_SORT,
    ExperimentFilters,
    IgnoredFilter,
    PageFilters,
    page_filters,
)
from app.web.templating import PageViewerDep, page_router, templates

router = page_router()

PAGE_SIZE = 25
MAX_PAGE = INTEGER_MAX // PAGE_SIZE

# Each sortable column and the order its first click gives: names A-Z, numbers highest first.
FIRST_ORDER = {
    "name": "asc", "model": "asc", "status": "asc", "current_epoch": "desc",
    "test_accuracy": "desc", "macro_f1": "desc", "parameters": "desc",
    "training_seconds": "desc", "created_at": "desc",
}  # fmt: skip


def _list_url(filters: dict[str, str], page: int = 1) -> str:
    """Only what differs from the defaults goes in the URL, so the plain list stays ``/``."""
    query = {key: value for key, value in filters.items() if value}
    if (query.get("sort", DEFAULT_SORT), query.get("order", "desc")) == (DEFAULT_SORT, "desc"):
        query.pop("sort", None)
        query.pop("order", None)
    if page > 1:
        query["page"] = str(page)
    return "/?" + urlencode(query) if query else "/"


def _first_order(column: str) -> str:
    if column in FIRST_ORDER:
        return FIRST_ORDER[column]
    return "desc" if COLUMNS[column].kind is Kind.number else "asc"


def _sort_links(filters: dict[str, str], extra: Sequence[Column]) -> dict[str, str]:
    """A column's header link: the same column again flips its order, another starts at its
    own first order; either way back to page 1."""
    links = {}
    for column in [*FIRST_ORDER, *(c.name for c in extra)]:
        flipped = "asc" if filters["order"] == "desc" else "desc"
        order = flipped if filters["sort"] == column else _first_order(column)
        links[column] = _list_url({**filters, "sort": column, "order": order})
    return links


# The table's own columns: choosing them adds nothing.
CHOOSABLE = {name: column for name, column in COLUMNS.items() if name not in FIRST_ORDER}


def retyped_filter(ignored: Sequence[IgnoredFilter]) -> dict[str, str] | None:
    """The first column filter left out, as the column filter's boxes show it (column,
    operator, value), so the value typed there is still there to correct."""
    for item in ignored:
        name, operator = split_filter_param(item.param)
        if name in CHOOSABLE:
            return {"name": name, "operator": operator, "value": item.text}
    return None


def shown_columns(
    request: Request, filters: ExperimentFilters, where: Sequence[ColumnFilter]
) -> list[Column]:
    """The extra columns asked for (``cols``, unknown names left out), then the one sorted
    by and those filtered on, so what orders or narrows the rows is always on screen."""
    asked = [name.strip() for name in request.query_params.get("cols", "").split(",")]
    names = [*asked, str(filters.sort), *(f.column.name for f in where)]
    return [CHOOSABLE[name] for name in dict.fromkeys(names) if name in CHOOSABLE]


def cell(column: Column, experiment: ExperimentSummary) -> str:
    """What a row shows in an extra column: accuracies as percentages, settings as the spec
    states them (``0.001``, ``yes``); "—" where the run has no value."""
    if column.hyperparameter is not None:
        value = (experiment.spec.get("hyperparameters") or {}).get(column.hyperparameter)
    else:
        value = getattr(experiment, column.name)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column.hyperparameter is None:
        return format_percent(value) if "accuracy" in column.name else format_number(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class SweepGroup:
    """A sweep's trials on this page under one header row; ``sweep_id`` None: runs of no
    sweep (and, when not grouping, every row, with no header)."""

    sweep_id: int | None
    name: str = ""
    counts: dict[Status, int] = field(default_factory=dict)
    experiments: list[ExperimentSummary] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def sweep_groups(
    session: SessionDep, experiments: list[ExperimentSummary], grouped: bool
) -> list[SweepGroup]:
    """The page's rows in runs of the same sweep (``crud.list_experiments`` ordered them
    so), each with its whole sweep's status counts."""
    if not grouped:
        return [SweepGroup(sweep_id=None, experiments=experiments)]
    runs = [
        SweepGroup(sweep_id=sweep_id, experiments=list(rows))
        for sweep_id, rows in groupby(experiments, key=lambda e: e.sweep_id)
    ]
    ids = [group.sweep_id for group in runs if group.sweep_id is not None]
    counts = crud.sweep_status_counts(session=session, sweep_ids=ids) if ids else {}
    names = crud.sweep_names(session=session, sweep_ids=ids) if ids else {}
    for group in runs:
        if group.sweep_id is not None:
            group.counts = counts.get(group.sweep_id, {})
            group.name = names.get(group.sweep_id, "")
    return runs


@router.get("/")
def experiments_page(
    request: Request,
    session: SessionDep,
    sorted_columns: SortedColumnsDep,
    principal: PageViewerDep,
    parsed: Annotated[PageFilters, Depends(page_filters)],
    page: int = 1,
) -> Response:
    filters, where = parsed.filters, parsed.where
    page = min(max(page, 1), MAX_PAGE)
    items, total = sorted_columns.list_experiments(
        session, **filters.query(principal, where), limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )  # fmt: skip
    experiments = summaries(items)
    extra = shown_columns(request, filters, where)
    if METRICS["best_val_accuracy"] in extra:
        ids = [experiment.id for experiment in experiments]
        best = crud.best_val_accuracies(session=session, experiment_ids=ids)
        for experiment in experiments:
            experiment.best_val_accuracy = best.get(experiment.id)
    chosen = ",".join(column.name for column in extra)
    column_params = {f.param: f.text for f in where}
    shown = {**filters.as_strings(), **column_params, "cols": chosen}
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = {
        "experiments": experiments,
        "groups": sweep_groups(session, experiments, filters.group == "sweep"),
        "columns": extra,
        "cell": cell,
        "choosable": CHOOSABLE,
        "hyperparameter_groups": _by_group(HYPERPARAMETERS.values()),
        "column_filters": [
            (f, _list_url({k: v for k, v in shown.items() if k != f.param})) for f in where
        ],
        "column_params": column_params,
        "sweep_clear_url": _list_url({**shown, "sweep": ""}),
        "total": total,
        "filters": shown,
        "filtered": filters.filtered or bool(where),
        "ignored": parsed.ignored,
        "typed": {item.param: item.text for item in parsed.ignored},
        "retyped": retyped_filter(parsed.ignored),
        "sort_links": _sort_links(shown, extra),
        "page": page,
        "previous_url": _list_url(shown, page - 1) if page > 1 else None,
        "next_url": _list_url(shown, page + 1) if page < pages else None,
        "pages": pages,
        "principal": principal,
        "show_owners": principal.auth_required or principal.user is not None,
    }
    return templates.TemplateResponse(request, "experiments.html", context)


def _by_group(columns: Any) -> dict[str, list[Column]]:
    """The chooser's sections: the launch form's groups (Training, Optimizer, ...)."""
    groups: dict[str, list[Column]] = {}
    for column in columns:
        groups.setdefault(column.group, []).append(column)
    return groups
