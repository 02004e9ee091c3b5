"""The runs table's pages, with the order of each hyperparameter column kept by the web
process between requests.

Sorting by a hyperparameter reads every experiment's spec: at 10,000 experiments SQLite spent
30-40 ms on ``json_extract`` alone for each page, and 20 readers queued behind it. A spec
never changes after launch, so the order of all experiments by a hyperparameter stays right
until an experiment is added or deleted. ``SortedColumns`` keeps that order per column,
versioned by the number of experiments, the highest id and the newest launch time (any
insert or delete changes one of them, even one that reuses a deleted id), and answers the
unfiltered list from it with two small queries. A filtered list, a text column (whose order
the database's collation decides) and the metrics, which change as runs train, are sorted by
the database (``crud.list_experiments``). Each web process has its own cache
(``app.state.sorted_columns``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.core import crud
from app.core.columns import Column, Kind, find_column
from app.core.models import Experiment


@dataclass(frozen=True)
class _Order:
    version: crud.TableVersion
    ascending: list[int]  # ids with a value, by (value, id)
    without: list[int]  # ids without one (an imported report, another model), by id


def _cacheable(column: Column | None, query: dict[str, Any]) -> bool:
    unfiltered = not any(query.get(name) for name in crud.LIST_FILTERS)
    return (
        unfiltered
        and not query.get("group_by_sweep")
        and column is not None
        and column.hyperparameter is not None
        and column.kind is not Kind.text
    )


class SortedColumns:
    """Each hyperparameter column's order over all experiments, rebuilt when the table's
    version changes. Thread-safe: one rebuild at a time; a read takes the last one whole."""

    def __init__(self) -> None:
        self._orders: dict[str, _Order] = {}
        self._lock = threading.Lock()

    def list_experiments(
        self, session: Session, *, limit: int, offset: int, **query: Any
    ) -> tuple[Sequence[Experiment], int]:
        """What ``crud.list_experiments`` answers for the same arguments."""
        column = find_column(str(query.get("sort", "")))
        if not _cacheable(column, query) or column is None:
            return crud.list_experiments(session=session, limit=limit, offset=offset, **query)
        order = self._order(session, column)
        if query.get("descending", True):
            ids = [*reversed(order.ascending), *reversed(order.without)]
        else:
            ids = [*order.ascending, *order.without]
        page = ids[offset : offset + limit]
        return crud.experiments_in_order(session=session, experiment_ids=page), len(ids)

    def _order(self, session: Session, column: Column) -> _Order:
        version = crud.table_version(session=session)
        order = self._orders.get(column.name)
        if order is not None and order.version == version:
            return order
        with self._lock:
            order = self._orders.get(column.name)
            if order is not None and order.version == version:
                return order
            # Read after the version: a row added meanwhile only makes the next read rebuild.
            values = crud.column_values(session=session, column=column)
            ascending = sorted((i for i, v in values if v is not None), key=_by_value(values))
            without = sorted(i for i, v in values if v is None)
            order = _Order(version=version, ascending=ascending, without=without)
            self._orders[column.name] = order
            return order


def _by_value(values: Sequence[tuple[int, Any]]) -> Any:
    """The sort key of an id: its value, then the id, as the database orders them."""
    by_id = dict(values)
    return lambda experiment_id: (by_id[experiment_id], experiment_id)
