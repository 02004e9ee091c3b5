"""Keyword-only functions over a session: every read and write the web, CLI and worker make."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Float,
    Row,
    ScalarSelect,
    Select,
    SQLColumnExpression,
    String,
    case,
    cast,
    delete,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, joinedload, undefer
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.core.columns import Column, ColumnFilter, Kind, find_column
from app.core.models import (
    IMPORTED_MODEL,
    EpochMetric,
    Evaluation,
    Experiment,
    Status,
    Sweep,
    User,
    Worker,
    utcnow,
)
from app.core.report_import import ImportedReport
from app.core.schemas import EpochMetricPublic, ExperimentSpec
from app.core.sweeps import Metric, Pruning, SweepSpec, Trial


@dataclass(frozen=True)
class PerImageResults:
    """What each test image got: for paired significance tests and the gallery."""

    fingerprint: str
    labels: list[int]
    predictions: list[int]
    confidences: list[float]


@dataclass(frozen=True)
class Lease:
    """One attempt's hold on a running experiment, the fence token of every worker write.

    ``claim_experiment`` numbers each start (``attempts``); a worker that stalls past the
    heartbeat timeout is requeued and another claims the next number. Every write a worker
    makes is conditional on ``attempts`` still being its own, so a stalled worker that wakes
    up cannot overwrite the run that took over."""

    experiment_id: int
    attempt: int


class LeaseLost(Exception):
    """This attempt no longer holds its experiment (requeued, retried, finished by another
    attempt): the worker stops and writes nothing more."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"experiment {lease.experiment_id}: attempt {lease.attempt} no longer holds it"
        )
        self.lease = lease


EPOCH_FIELDS = (
    "phase",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
    "images_per_second",
)


def create_experiment(
    *,
    session: Session,
    spec: ExperimentSpec,
    owner_id: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    sweep_id: int | None = None,
) -> Experiment:
    experiment = Experiment(
        owner_id=owner_id,
        sweep_id=sweep_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        name=spec.name,
        model=spec.model,
        tags=list(spec.tags),
        spec=spec.model_dump(mode="json"),
        status=Status.queued,
        total_epochs=spec.hyperparameters.planned_epochs,
    )
    session.add(experiment)
    session.flush()
    return experiment


SORTABLE: dict[str, InstrumentedAttribute[Any]] = {
    "created_at": Experiment.created_at,
    "name": Experiment.name,
    "model": Experiment.model,
    "status": Experiment.status,
    "test_accuracy": Experiment.test_accuracy,
    "macro_f1": Experiment.macro_f1,
    "parameters": Experiment.parameters,
    "current_epoch": Experiment.current_epoch,
    "training_seconds": Experiment.training_seconds,
}


def get_experiment(*, session: Session, experiment_id: int) -> Experiment | None:
    return session.get(Experiment, experiment_id)


def get_experiment_detail(*, session: Session, experiment_id: int) -> Experiment | None:
    """With its layer table and evaluation in the same query: its page and
    GET /api/experiments/{id} show both, and each lazy load was another round trip."""
    return session.get(
        Experiment,
        experiment_id,
        options=[undefer(Experiment.model_layers), joinedload(Experiment.evaluation)],
    )


class _JsonNumber(FunctionElement[float]):
    """The number a JSON path of a column holds, NULL where it holds anything else. A cast
    alone read an imported ``"epochs": "many"`` as 0 on SQLite (so ``hp.epochs=0`` matched
    it and it sorted first) and failed on PostgreSQL; text is no number, so it matches no
    numeric filter and sorts with the runs that have no value."""

    type = Float()
    name = "json_number"
    inherit_cache = True


@compiles(_JsonNumber)
def _json_number(element: _JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = element.clauses
    number = case((func.json_typeof(value) == "number", value.as_float()), else_=None)
    return compiler.process(number, **kw)


@compiles(_JsonNumber, "sqlite")
def _json_number_sqlite(element: _JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = element.clauses
    kind = func.json_type(value.left, value.right)
    number = case((kind.in_(("integer", "real")), value.as_float()), else_=None)
    return compiler.process(number, **kw)


def column_expression(column: Column) -> SQLColumnExpression[Any]:
    """A runs-table column as SQL, the same on SQLite and PostgreSQL. A hyperparameter reads
    the spec's JSON at one path (``json_extract`` / ``#>>``), cast to what it holds, so
    numbers sort as numbers (a number column's text, from an imported report, is NULL:
    ``_JsonNumber``); best val accuracy is the highest of the run's epochs."""
    if column.hyperparameter is not None:
        value = Experiment.spec[("hyperparameters", column.hyperparameter)]
        if column.kind is Kind.number:
            return _JsonNumber(value)
        cast_to = {Kind.boolean: value.as_boolean}
        extracted: SQLColumnExpression[Any] = cast_to.get(column.kind, value.as_string)()
        return extracted
    if column.name == "best_val_accuracy":
        return (
            select(func.max(EpochMetric.val_accuracy))
            .where(EpochMetric.experiment_id == Experiment.id)
            .correlate(Experiment)
            .scalar_subquery()
        )
    return SORTABLE[column.name]


def _column_condition(where: ColumnFilter) -> ColumnElement[bool]:
    expression = column_expression(where.column)
    if where.operator == "min":
        return expression >= where.value
    if where.operator == "max":
        return expression <= where.value
    return expression == where.value


def _any_of(values: str | Sequence[str] | None) -> list[str]:
    """One filter value or several, blanks left out (a blank filters nothing)."""
    given = [values] if isinstance(values, str) else list(values or ())
    return [value for value in given if value]


def list_experiments(
    *,
    session: Session,
    status: str | Sequence[str] | None = None,
    model: str | Sequence[str] | None = None,
    tag: str | Sequence[str] | None = None,
    q: str | None = None,
    owner: str | None = None,
    sweep_id: int | None = None,
    where: Sequence[ColumnFilter] = (),
    sort: str = "created_at",
    descending: bool = True,
    group_by_sweep: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Experiment], int]:
    """One page of the runs table and how many rows match; ``status``, ``model`` and ``tag``
    each match any of their values (one, or several). ``sort``: a key of ``SORTABLE``
    or a column of ``app.core.columns``; ``where``: filters on those columns.
    ``group_by_sweep`` puts each sweep's trials together (newest sweep first, runs of no
    sweep last), each group in the chosen order."""
    query = select(Experiment)
    if statuses := _any_of(status):
        query = query.where(Experiment.status.in_(statuses))
    if models := _any_of(model):
        query = query.where(Experiment.model.in_(models))
    if tags := _any_of(tag):
        # Tags are a JSON list; matching its quoted text works on SQLite and PostgreSQL alike.
        tags_text = cast(Experiment.tags, String)
        query = query.where(or_(*(tags_text.contains(f'"{one}"') for one in tags)))
    if owner:
        query = query.where(Experiment.owner.has(User.username == owner))
    if q:
        pattern = f"%{q}%"
        query = query.where(Experiment.name.ilike(pattern) | Experiment.notes.ilike(pattern))
    if sweep_id is not None:
        query = query.where(Experiment.sweep_id == sweep_id)
    for condition in where:
        query = query.where(_column_condition(condition))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if sort in SORTABLE:
        column: SQLColumnExpression[Any] = SORTABLE[sort]
        # Columns that cannot be NULL sort plainly, so PostgreSQL can read them in index order.
        nullable = bool(inspect(Experiment).columns[sort].nullable)
    else:
        known = find_column(sort)
        if known is None:
            raise ValueError(f"no column {sort!r} to sort by")
        column, nullable = column_expression(known), True
    key = column.desc() if descending else column.asc()
    # Experiments without a value yet go last whichever way the column sorts.
    if nullable:
        key = key.nulls_last()
    tiebreak = Experiment.id.desc() if descending else Experiment.id.asc()
    order: list[ColumnElement[Any]] = [key, tiebreak]
    if group_by_sweep:
        order = [Experiment.sweep_id.is_(None), Experiment.sweep_id.desc(), *order]
    # The order over ids alone, then the page's rows: sorting whole rows (a spec, a layer
    # table) took SQLite three times as long at 10,000 experiments (41 ms against 14).
    ids = session.scalars(query.with_only_columns(Experiment.id).order_by(*order).limit(limit)
                          .offset(offset)).all()  # fmt: skip
    return experiments_in_order(session=session, experiment_ids=ids), total


LIST_FILTERS = ("status", "model", "tag", "q", "owner", "sweep_id", "where")
"""The arguments of ``list_experiments`` that narrow the rows (the rest order them)."""

TableVersion: TypeAlias = tuple[int, int | None, datetime | None]


def table_version(*, session: Session) -> TableVersion:
    """How many experiments, the highest id and the newest launch: an insert raises the last
    two, a delete lowers the count, so any change to the set of experiments changes this."""
    # Three scalar subqueries: SQLite answers each from the table's count, its last rowid and
    # the created_at index; asked together in one SELECT it scanned the table (1.5 ms).
    count, highest, newest = session.execute(
        select(
            select(func.count()).select_from(Experiment).scalar_subquery(),
            select(func.max(Experiment.id)).scalar_subquery(),
            select(func.max(Experiment.created_at)).scalar_subquery(),
        )
    ).one()
    return int(count), highest, newest


def column_values(*, session: Session, column: Column) -> list[tuple[int, Any]]:
    """Every experiment's value in a runs-table column, as ``column_expression`` reads it."""
    rows = session.execute(select(Experiment.id, column_expression(column)))
    return [(int(experiment_id), value) for experiment_id, value in rows]


def experiments_in_order(*, session: Session, experiment_ids: Sequence[int]) -> list[Experiment]:
    """These experiments in this order; an id deleted meanwhile is left out."""
    if not experiment_ids:
        return []
    found = session.scalars(select(Experiment).where(Experiment.id.in_(experiment_ids)))
    by_id = {experiment.id: experiment for experiment in found}
    return [by_id[i] for i in experiment_ids if i in by_id]


def best_val_accuracies(*, session: Session, experiment_ids: Sequence[int]) -> dict[int, float]:
    """Each run's highest validation accuracy, for the rows a page shows: one grouped query
    over their epochs. Runs without a validated epoch are left out."""
    if not experiment_ids:
        return {}
    rows = session.execute(
        select(EpochMetric.experiment_id, func.max(EpochMetric.val_accuracy))
        .where(EpochMetric.experiment_id.in_(experiment_ids))
        .group_by(EpochMetric.experiment_id)
    )
    return {int(i): float(best) for i, best in rows if best is not None}


def sweep_names(*, session: Session, sweep_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(select(Sweep.id, Sweep.name).where(Sweep.id.in_(sweep_ids)))
    return {int(i): str(name) for i, name in rows}


EpochRow: TypeAlias = Row[Any]
"""An epoch as charts, diagnostics and the API read it: a plain row with EpochMetric's column
names. Building ORM objects for a comparison's hundreds of epochs took three times as long
as the query itself."""

_EPOCH_COLUMNS = tuple(column for column in EpochMetric.__table__.columns if column.name != "id")


def list_epochs(
    *, session: Session, experiment_id: int, after_epoch: int = 0
) -> Sequence[EpochRow]:
    return session.execute(
        select(*_EPOCH_COLUMNS)
        .where(EpochMetric.experiment_id == experiment_id, EpochMetric.epoch > after_epoch)
        .order_by(EpochMetric.epoch)
    ).all()


def list_epochs_of(*, session: Session, experiment_ids: Sequence[int]) -> dict[int, list[EpochRow]]:
    """Several experiments' epochs in one query (the compare page), each in epoch order."""
    epochs: dict[int, list[EpochRow]] = {i: [] for i in experiment_ids}
    rows = session.execute(
        select(*_EPOCH_COLUMNS)
        .where(EpochMetric.experiment_id.in_(experiment_ids))
        .order_by(EpochMetric.experiment_id, EpochMetric.epoch)
    )
    for row in rows:
        epochs[row.experiment_id].append(row)
    return epochs


TIMED_STATUSES = (Status.succeeded, Status.failed, Status.cancelled, Status.pruned)
"""Runs whose epochs measured a worker: every finished run that trained, whatever ended it."""


def timed_runs(*, session: Session, device: str, limit: int) -> Sequence[Experiment]:
    """The most recent finished runs on ``device`` with at least one timed epoch, newest
    first: what time estimates measure that kind of worker by."""
    timed = (
        select(EpochMetric.id)
        .where(
            EpochMetric.experiment_id == Experiment.id, EpochMetric.images_per_second.is_not(None)
        )
        .exists()
    )
    return session.scalars(
        select(Experiment)
        .where(Experiment.device == device, Experiment.status.in_(TIMED_STATUSES), timed)
        .order_by(Experiment.id.desc())
        .limit(limit)
    ).all()


def claim_experiment(
    *,
    session: Session,
    experiment_id: int,
    worker_host: str,
    device: str,
    worker_name: str | None = None,
) -> Lease | None:
    """Move queued -> running in one statement, so a redelivered task cannot start it twice.

    Returns the lease (the attempt number this claim took), or None when it was not queued."""
    now = utcnow()
    attempt = session.scalar(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == Status.queued)
        .values(
            status=Status.running,
            started_at=func.coalesce(Experiment.started_at, now),
            finished_at=None,
            heartbeat_at=now,
            worker_name=worker_name,
            worker_host=worker_host,
            device=device,
            attempts=Experiment.attempts + 1,
            error=None,
            run_phase=None,
            telemetry=None,
        )
        .returning(Experiment.attempts)
    )
    return None if attempt is None else Lease(experiment_id=experiment_id, attempt=attempt)


def _held(lease: Lease) -> tuple[ColumnElement[bool], ...]:
    """This attempt still holds the run: its number is still ``attempts`` and the run has not
    ended (running, or cancelled by a user while it ran)."""
    return (
        Experiment.id == lease.experiment_id,
        Experiment.attempts == lease.attempt,
        Experiment.status.in_([Status.running, Status.cancelled]),
        Experiment.finished_at.is_(None),
    )


def _write_held(*, session: Session, lease: Lease, values: dict[str, Any]) -> bool:
    """Update the experiment only while this attempt holds it (``_held``).

    Returns whether a cancel has been requested (the caller stops); raises ``LeaseLost`` when
    another attempt holds the run or it has ended, having written nothing. On PostgreSQL the
    UPDATE keeps the row locked until commit, and SQLite holds its write lock, so whatever
    else the transaction does happens while the lease is still held."""
    status = session.scalar(
        update(Experiment).where(*_held(lease)).values(**values).returning(Experiment.status)
    )
    if status is None:
        raise LeaseLost(lease)
    return bool(status == Status.cancelled)


def beat(*, session: Session, lease: Lease) -> bool:
    """The attempt's worker is alive (written from a thread beside training). Returns whether
    a cancel was requested; raises ``LeaseLost`` when the attempt no longer holds the run."""
    return _write_held(session=session, lease=lease, values={"heartbeat_at": utcnow()})


def lost_experiments(*, session: Session, silent_since: datetime) -> Sequence[Experiment]:
    return session.scalars(
        select(Experiment).where(
            Experiment.status == Status.running, Experiment.heartbeat_at < silent_since
        )
    ).all()


def requeue(
    *,
    session: Session,
    experiment_id: int,
    from_status: Status,
    attempt: int,
    silent_since: datetime | None = None,
) -> bool:
    """Back to queued, only if it is still the ``attempt`` in ``from_status`` that the caller
    saw (and still silent): of several web processes reaping at once, exactly one wins, and
    a run another worker has since claimed is left alone. The next claim takes a new attempt
    number, which fences off the old attempt's worker should it wake up."""
    condition = [
        Experiment.id == experiment_id,
        Experiment.status == from_status,
        Experiment.attempts == attempt,
    ]
    if silent_since is not None:
        condition.append(Experiment.heartbeat_at < silent_since)
    result = session.execute(
        update(Experiment)
        .where(*condition)
        .values(
            status=Status.queued, finished_at=None, error=None, epoch_progress=0.0,
            enqueued_at=None, enqueue_claimed_at=None,
        )
    )  # fmt: skip
    return bool(result.rowcount)  # type: ignore[attr-defined]


ACTIVE = (Status.queued, Status.running)


def _holds_a_slot(experiment: type[Experiment] | Any) -> ColumnElement[bool]:
    """Sent to the broker, or being sent: what a sweep's cap on parallel trials counts."""
    return experiment.status.in_(ACTIVE) & (
        experiment.enqueued_at.is_not(None) | experiment.enqueue_claimed_at.is_not(None)
    )


def _below_sweep_cap() -> ColumnElement[bool]:
    """True for an experiment of no sweep, or of a sweep with fewer trials holding a slot than
    its ``max_parallel`` (itself not counted, so a lapsed lease of its own can be retaken).
    Part of the claim's UPDATE, so however a trial is sent (launch, outbox loop, retry) the cap
    holds; two web processes claiming at the same instant may pass it by one."""
    sibling = aliased(Experiment)
    in_flight = (
        select(func.count())
        .select_from(sibling)
        .where(
            sibling.sweep_id == Experiment.sweep_id,
            sibling.id != Experiment.id,
            _holds_a_slot(sibling),
        )
        .scalar_subquery()
    )
    cap = select(Sweep.max_parallel).where(Sweep.id == Experiment.sweep_id).scalar_subquery()
    return Experiment.sweep_id.is_(None) | cap.is_(None) | (in_flight < cap)


def _unsent(claimed_before: datetime) -> list[Any]:
    """Queued, not taken by the broker, and nobody's send under way (or its lease ran out)."""
    return [
        Experiment.status == Status.queued,
        Experiment.enqueued_at.is_(None),
        (Experiment.enqueue_claimed_at.is_(None))
        | (Experiment.enqueue_claimed_at < claimed_before),
    ]


def _free_slots(*, session: Session, sweep_ids: set[int]) -> dict[int, int | None]:
    """Per sweep, how many more trials may be sent now (None: no cap), in one query each for
    the caps and the trials holding slots."""
    if not sweep_ids:
        return {}
    caps: dict[int, int | None] = {
        sweep_id: cap
        for sweep_id, cap in session.execute(
            select(Sweep.id, Sweep.max_parallel).where(Sweep.id.in_(sweep_ids))
        )
    }
    held: dict[int | None, int] = {
        sweep_id: count
        for sweep_id, count in session.execute(
            select(Experiment.sweep_id, func.count())
            .where(Experiment.sweep_id.in_(sweep_ids), _holds_a_slot(Experiment))
            .group_by(Experiment.sweep_id)
        )
    }
    return {
        i: None if caps.get(i) is None else max(0, (caps[i] or 0) - held.get(i, 0))
        for i in sweep_ids
    }


def unsent_experiments(*, session: Session, claimed_before: datetime, limit: int) -> list[int]:
    """The next experiments to send, in launch order, leaving out sweep trials past their
    sweep's cap. The cap is counted once per sweep here, not per waiting trial: a 1,000-trial
    sweep waiting behind a cap of 4 costs the outbox's loop two small queries."""
    waiting = session.execute(
        select(Experiment.id, Experiment.sweep_id)
        .where(*_unsent(claimed_before))
        .order_by(Experiment.id)
    )
    rows = list(waiting)
    free = _free_slots(session=session, sweep_ids={s for _, s in rows if s is not None})
    chosen: list[int] = []
    for experiment_id, sweep_id in rows:
        if sweep_id is not None and free[sweep_id] is not None:
            if free[sweep_id] == 0:
                continue
            free[sweep_id] = (free[sweep_id] or 0) - 1
        chosen.append(experiment_id)
        if len(chosen) == limit:
            break
    return chosen


def claim_send(*, session: Session, experiment_id: int, claimed_before: datetime) -> bool:
    """Take the lease on sending this experiment: of several web processes, one wins."""
    result = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, *_unsent(claimed_before), _below_sweep_cap())
        .values(enqueue_claimed_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def settle_send(*, session: Session, experiment_id: int, sent: bool) -> None:
    """After a send: taken by the broker, or the lease given back for the next try."""
    values = {"enqueued_at": utcnow()} if sent else {"enqueue_claimed_at": None}
    session.execute(update(Experiment).where(Experiment.id == experiment_id).values(**values))


def is_enqueued(*, session: Session, experiment_id: int) -> bool:
    """Whether the broker has taken this experiment's message (read now, not from the session's
    copy)."""
    enqueued_at = session.scalar(
        select(Experiment.enqueued_at).where(Experiment.id == experiment_id)
    )
    return enqueued_at is not None


def active_experiments(*, session: Session, owner_id: int | None) -> int:
    """Queued or running experiments of one owner (None: those launched without accounts).
    A sweep's trials count once sent: those waiting behind its ``max_parallel`` were counted
    when the sweep was launched, as the cap."""
    owner = Experiment.owner_id.is_(None) if owner_id is None else Experiment.owner_id == owner_id
    count = session.scalar(
        select(func.count())
        .select_from(Experiment)
        .where(
            owner,
            Experiment.status.in_(ACTIVE),
            Experiment.sweep_id.is_(None) | _holds_a_slot(Experiment),
        )
    )
    return int(count or 0)


def fail_lost(
    *, session: Session, experiment_id: int, attempt: int, silent_since: datetime, message: str
) -> bool:
    result = session.execute(
        update(Experiment)
        .where(
            Experiment.id == experiment_id,
            Experiment.status == Status.running,
            Experiment.attempts == attempt,
            Experiment.heartbeat_at < silent_since,
        )
        .values(status=Status.failed, finished_at=utcnow(), error=message)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def running_on_worker(*, session: Session, worker_name: str) -> Sequence[Experiment]:
    """Every run a worker holds (a worker may train several at once on CPU)."""
    return session.scalars(
        select(Experiment).where(
            Experiment.status == Status.running, Experiment.worker_name == worker_name
        )
    ).all()


def _interrupted(experiment_id: int, attempt: int) -> list[Any]:
    """Still running, in the attempt whose process died: not a later run of it."""
    return [
        Experiment.id == experiment_id,
        Experiment.status == Status.running,
        Experiment.attempts == attempt,
    ]


def requeue_interrupted(*, session: Session, experiment_id: int, attempt: int, reason: str) -> bool:
    """Back to queued after its process died, with the reason kept for its page."""
    result = session.execute(
        update(Experiment)
        .where(*_interrupted(experiment_id, attempt))
        .values(
            status=Status.queued,
            finished_at=None,
            error=None,
            epoch_progress=0.0,
            interruption=reason,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail_interrupted(*, session: Session, experiment_id: int, attempt: int, message: str) -> bool:
    """Failed after its last attempt's process died."""
    result = session.execute(
        update(Experiment)
        .where(*_interrupted(experiment_id, attempt))
        .values(status=Status.failed, finished_at=utcnow(), error=message, interruption=message)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_memory(*, session: Session, experiment_id: int, memory: dict[str, Any]) -> None:
    """The heartbeat's memory figures, quoted if the run's process is killed."""
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == Status.running)
        .values(memory=memory)
    )


def record_telemetry(*, session: Session, experiment_id: int, telemetry: dict[str, Any]) -> None:
    """The heartbeat's CPU, memory and GPU readings (``app.core.telemetry.Telemetry``), shown
    while the run lasts; written after the heartbeat's fenced beat, like the memory."""
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == Status.running)
        .values(telemetry=telemetry)
    )


def set_run_phase(*, session: Session, lease: Lease, phase: str) -> bool:
    """What the attempt is doing now (``app.core.run_phase.RunPhase``), fenced like every
    write of the attempt (``_write_held``); returns whether a cancel was requested."""
    return _write_held(
        session=session, lease=lease, values={"run_phase": phase, "heartbeat_at": utcnow()}
    )


def _queued_before(
    experiment_id: ColumnElement[int] | InstrumentedAttribute[int] | int,
) -> Select[int]:
    """How many queued experiments start before this one: the queue is oldest (lowest id)
    first."""
    ahead = aliased(Experiment)
    return (
        select(func.count())
        .select_from(ahead)
        .where(ahead.status == Status.queued, ahead.id < experiment_id)
    )


def queue_position(*, session: Session, experiment: Experiment) -> int | None:
    """1 for the next experiment to start; None when it is not waiting."""
    if experiment.status != Status.queued:
        return None
    return int(session.scalar(_queued_before(experiment.id)) or 0) + 1


_LIVE_EPOCH_COLUMNS = tuple(getattr(EpochMetric, name) for name in EpochMetricPublic.model_fields)


def read_live(*, session: Session, experiment_id: int, after_epoch: int) -> Sequence[Row[Any]]:
    """What the live page follows, in one statement (one consistent snapshot): the status,
    attempt and model size (a change means the page redraws its facts), the progress, phase,
    resource readings and place in the queue, whether the evaluation exists, and the epochs
    after ``after_epoch``, one row each (one row with ``epoch`` None when there are none).
    No rows: no such experiment."""
    position = case(
        (Experiment.status == Status.queued,
         _queued_before(Experiment.id).scalar_subquery() + 1),
        else_=None,
    )  # fmt: skip
    evaluated = (
        select(Evaluation.experiment_id).where(Evaluation.experiment_id == Experiment.id).exists()
    )
    return session.execute(
        select(
            Experiment.status, Experiment.attempts, Experiment.parameters,
            Experiment.current_epoch, Experiment.total_epochs, Experiment.epoch_progress,
            Experiment.run_phase, Experiment.telemetry,
            position.label("queue_position"), evaluated.label("has_evaluation"),
            *_LIVE_EPOCH_COLUMNS,
        )
        .outerjoin(
            EpochMetric,
            (EpochMetric.experiment_id == Experiment.id) & (EpochMetric.epoch > after_epoch),
        )
        .where(Experiment.id == experiment_id)
        .order_by(EpochMetric.epoch)
    ).all()  # fmt: skip


def see_worker(*, session: Session, name: str, hostname: str, pid: int, device: str) -> None:
    """Upsert the worker's row; its last_seen_at is what makes it count as online."""
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Worker).values(
        name=name, hostname=hostname, pid=pid, device=device, started_at=now, last_seen_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"hostname": hostname, "pid": pid, "device": device, "last_seen_at": now},
    )
    session.execute(statement)


def record_worker_restart(*, session: Session, name: str, reason: str) -> None:
    """Count a restart on the worker's row (the replacement keeps the name, so the row)."""
    session.execute(
        update(Worker)
        .where(Worker.name == name)
        .values(restarts=Worker.restarts + 1, last_exit=reason, started_at=utcnow())
    )


def forget_worker(*, session: Session, name: str) -> None:
    session.execute(delete(Worker).where(Worker.name == name))


def online_workers(*, session: Session, seen_since: datetime) -> Sequence[Worker]:
    return session.scalars(
        select(Worker).where(Worker.last_seen_at >= seen_since).order_by(Worker.name)
    ).all()


def running_on(*, session: Session, worker_names: Sequence[str]) -> dict[str, Experiment]:
    rows = session.scalars(
        select(Experiment).where(
            Experiment.status == Status.running, Experiment.worker_name.in_(worker_names)
        )
    ).all()
    return {row.worker_name or "": row for row in rows}


def record_epoch(*, session: Session, lease: Lease, epoch: int, values: dict[str, Any]) -> bool:
    """Upsert one epoch's row: a re-sent epoch replaces its row instead of adding one.

    The row is written only while the attempt still holds the run, in the same transaction
    as the fenced update of the experiment; a stale attempt gets ``LeaseLost`` and writes
    nothing. A whole epoch is written even when a cancel arrived during it (its checkpoint
    is saved too, so a retry continues after it). The experiment's ``training_seconds`` is
    set to the sum of its epoch rows' seconds after the upsert, in the same transaction: a
    re-sent epoch replaces its row, so the sum counts it once. Returns whether a cancel was
    requested."""
    values_now = {"current_epoch": epoch, "epoch_progress": 1.0, "heartbeat_at": utcnow()}
    cancel = _write_held(session=session, lease=lease, values=values_now)
    row: dict[str, Any] = {"experiment_id": lease.experiment_id, "epoch": epoch}
    row.update({key: values.get(key) for key in EPOCH_FIELDS if key in values})
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(EpochMetric).values(**row)
    statement = statement.on_conflict_do_update(
        index_elements=["experiment_id", "epoch"],
        set_={key: statement.excluded[key] for key in row if key not in ("experiment_id", "epoch")},
    )
    session.execute(statement)
    session.execute(
        update(Experiment)
        .where(Experiment.id == lease.experiment_id)
        .values(training_seconds=_training_seconds(lease.experiment_id))
    )
    return cancel


def _training_seconds(experiment_id: int) -> ScalarSelect[Any]:
    """The time inside the experiment's epochs as SQL: what ``Experiment.training_seconds``
    holds (migration 0013 filled it in the same way for older runs)."""
    return (
        select(func.sum(EpochMetric.seconds))
        .where(EpochMetric.experiment_id == experiment_id)
        .scalar_subquery()
    )


def record_progress(*, session: Session, lease: Lease, epoch: int, epoch_progress: float) -> bool:
    """Store progress within an epoch; returns whether a cancel has been requested and raises
    ``LeaseLost`` for a stale attempt."""
    return _write_held(
        session=session,
        lease=lease,
        values={"current_epoch": epoch, "epoch_progress": epoch_progress, "heartbeat_at": utcnow()},
    )


def set_model_info(
    *,
    session: Session,
    lease: Lease,
    parameters: int,
    trainable_parameters: int,
    layers: list[dict[str, Any]],
) -> bool:
    """The model summary, written like any other write of the attempt (see ``_write_held``)."""
    values = {
        "parameters": parameters,
        "trainable_parameters": trainable_parameters,
        "model_layers": layers,
    }
    return _write_held(session=session, lease=lease, values=values)


def save_evaluation(
    *,
    session: Session,
    lease: Lease,
    classes: list[str],
    confusion_matrix: list[list[int]] | None,
    report: dict[str, Any],
    per_image: PerImageResults | None = None,
    test_time_augmentation: str = "none",
) -> Evaluation:
    """Store the test-set result and mark the experiment succeeded, in one transaction, only
    while ``lease`` holds the run; raises ``LeaseLost`` otherwise, before writing anything.

    A cancel that arrived during this attempt's evaluation stands; the evaluation is kept
    all the same. The caller may put the model file in place before committing: the row
    stays locked until then."""
    accuracy = float(report["accuracy"])
    result = session.execute(
        update(Experiment)
        .where(*_held(lease))
        .values(
            status=case(
                (Experiment.status == Status.running, Status.succeeded), else_=Experiment.status
            ),
            finished_at=utcnow(),
            test_accuracy=accuracy,
            macro_f1=float(report["macro avg"]["f1-score"]),
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise LeaseLost(lease)
    evaluation = Evaluation(
        experiment_id=lease.experiment_id,
        accuracy=accuracy,
        classes=classes,
        confusion_matrix=confusion_matrix,
        report=report,
        test_size=int(sum(report[name]["support"] for name in classes)),
        test_time_augmentation=test_time_augmentation,
    )
    if per_image is not None:
        evaluation.test_set_fingerprint = per_image.fingerprint
        evaluation.labels = np.asarray(per_image.labels)
        evaluation.predictions = np.asarray(per_image.predictions)
        evaluation.confidences = np.asarray(per_image.confidences)
    session.merge(evaluation)
    return evaluation


def import_experiment(
    *,
    session: Session,
    name: str,
    tags: list[str],
    notes: str,
    imported: ImportedReport,
    owner_id: int | None = None,
    model: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> Experiment:
    """An experiment from a pasted report: it lists and compares like any other, no curves.
    ``model`` and ``hyperparameters``, when the report came with them, fill the columns the
    list filters on; ``report_digits`` keeps how precisely the report gave its scores."""
    model = model or IMPORTED_MODEL
    spec: dict[str, Any] = {
        "name": name, "model": model, "tags": tags, "report_digits": imported.digits,
    }  # fmt: skip
    if hyperparameters:  # none given: the spec says so by having none, as before
        spec["hyperparameters"] = hyperparameters
    experiment = Experiment(
        owner_id=owner_id,
        name=name,
        model=model,
        tags=tags,
        notes=notes,
        spec=spec,
        status=Status.imported,
        test_accuracy=imported.accuracy,
        macro_f1=float(imported.report["macro avg"]["f1-score"]),
        finished_at=utcnow(),
    )
    session.add(experiment)
    session.flush()
    session.add(
        Evaluation(
            experiment_id=experiment.id,
            accuracy=imported.accuracy,
            classes=imported.classes,
            confusion_matrix=imported.confusion_matrix,
            report=imported.report,
            test_size=imported.test_size,
        )
    )
    return experiment


def update_experiment(
    *, session: Session, experiment: Experiment, changes: dict[str, Any]
) -> Experiment:
    """Edit what people annotate (name, tags, notes); results never change after the fact."""
    for field in ("name", "tags", "notes"):
        if field in changes:
            setattr(experiment, field, changes[field])
    return experiment


def end_attempt(
    *, session: Session, lease: Lease, status: Status, error: str | None = None
) -> bool:
    """The worker's end of a run that did not succeed: running -> ``status`` (failed), or a
    cancel requested during this attempt -> cancelled with its finish time (the cancel stands
    over a later failure). Only while ``lease`` holds the run: a stale attempt changes nothing
    and gets False."""
    cancelled = Experiment.status == Status.cancelled
    result = session.execute(
        update(Experiment)
        .where(*_held(lease))
        .values(
            status=case((cancelled, Status.cancelled), else_=status),
            error=case((cancelled, None), else_=error),
            finished_at=utcnow(),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def request_cancel(*, session: Session, experiment: Experiment) -> bool:
    """A queued experiment never starts; a running one stops at its next batch.

    Conditional on the status and attempt read: a run that finished meanwhile keeps its
    outcome. Returns whether the cancel was recorded; ``experiment`` is brought up to date."""
    seen = experiment.status
    if seen.finished:
        return False
    values: dict[str, Any] = {"status": Status.cancelled}
    if experiment.started_at is None:
        values["finished_at"] = utcnow()
    result = session.execute(
        update(Experiment)
        .where(
            Experiment.id == experiment.id,
            Experiment.status == seen,
            Experiment.attempts == experiment.attempts,
        )
        .values(**values)
    )
    session.refresh(experiment)
    return bool(result.rowcount)  # type: ignore[attr-defined]


FINISHED = tuple(status for status in Status if status.finished)


def delete_finished(*, session: Session, experiment_id: int) -> bool:
    """Delete an experiment only if it is finished, in one conditional DELETE: a run that a
    retry requeued meanwhile is left alone. Epochs and evaluation go with it (ON DELETE
    CASCADE). Returns whether it was deleted."""
    result = session.execute(
        delete(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status.in_(FINISHED))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def create_sweep(
    *, session: Session, spec: SweepSpec, trials: Sequence[Trial], owner_id: int | None
) -> tuple[Sweep, list[Experiment]]:
    """The sweep and every trial as queued experiments, flushed in one transaction: a sweep
    is stored whole or not at all."""
    sweep = Sweep(
        owner_id=owner_id,
        name=spec.name,
        model=spec.model,
        spec=spec.model_dump(mode="json"),
        max_parallel=spec.max_parallel,
    )
    session.add(sweep)
    session.flush()
    experiments = [
        create_experiment(session=session, spec=trial.spec, owner_id=owner_id, sweep_id=sweep.id)
        for trial in trials
    ]
    return sweep, experiments


def get_sweep(*, session: Session, sweep_id: int) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def list_sweeps(
    *, session: Session, limit: int = 50, offset: int = 0
) -> tuple[Sequence[Sweep], int]:
    """Newest first."""
    total = session.scalar(select(func.count()).select_from(Sweep)) or 0
    rows = session.scalars(
        select(Sweep).order_by(Sweep.id.desc()).limit(limit).offset(offset)
    ).all()
    return rows, total


def sweep_trials(*, session: Session, sweep_id: int) -> Sequence[Experiment]:
    """A sweep's trials in launch order."""
    return session.scalars(
        select(Experiment).where(Experiment.sweep_id == sweep_id).order_by(Experiment.id)
    ).all()


TrialRow: TypeAlias = Row[Any]
"""A sweep's trial as its page reads it: ``Experiment``'s columns by name, no ORM object."""

_TRIAL_COLUMNS = (
    Experiment.id, Experiment.name, Experiment.status, Experiment.spec,
    Experiment.current_epoch, Experiment.total_epochs, Experiment.test_accuracy,
    Experiment.stop_reason, Experiment.error, Experiment.started_at, Experiment.finished_at,
)  # fmt: skip


def sweep_trial_rows(*, session: Session, sweep_id: int) -> Sequence[TrialRow]:
    """A sweep's trials in launch order, as plain rows."""
    return session.execute(
        select(*_TRIAL_COLUMNS).where(Experiment.sweep_id == sweep_id).order_by(Experiment.id)
    ).all()


SweepVersion: TypeAlias = tuple[Any, ...]


def sweep_version(*, session: Session, sweep_id: int) -> SweepVersion:
    """One aggregate row that changes when a trial is added or removed, changes status,
    starts an attempt, records an epoch or finishes: what a cached sweep view is checked
    against. Read through the ``sweep_id`` index, about a millisecond at 1,000 trials."""
    per_status = [func.sum(case((Experiment.status == status, 1), else_=0)) for status in Status]
    row = session.execute(
        select(
            func.count(), func.max(Experiment.id), func.sum(Experiment.current_epoch),
            func.sum(Experiment.attempts), func.max(Experiment.started_at),
            func.max(Experiment.finished_at), *per_status,
        ).where(Experiment.sweep_id == sweep_id)
    ).one()  # fmt: skip
    return tuple(row)


def sweep_status_counts(
    *, session: Session, sweep_ids: Sequence[int]
) -> dict[int | None, dict[Status, int]]:
    """How many trials of each sweep are in each status, in one grouped query."""
    counts: dict[int | None, dict[Status, int]] = {i: {} for i in sweep_ids}
    rows = session.execute(
        select(Experiment.sweep_id, Experiment.status, func.count())
        .where(Experiment.sweep_id.in_(sweep_ids))
        .group_by(Experiment.sweep_id, Experiment.status)
    )
    for sweep_id, status, count in rows:
        counts[sweep_id][Status(status)] = count  # the WHERE leaves no NULL sweep_id
    return counts


def sweep_pruning(*, session: Session, experiment_id: int) -> tuple[int, Pruning] | None:
    """The sweep an experiment is a trial of and its pruning rule, read once per run; None
    when it belongs to no sweep or its sweep prunes nothing."""
    row = session.execute(
        select(Sweep.id, Sweep.spec)
        .join(Experiment, Experiment.sweep_id == Sweep.id)
        .where(Experiment.id == experiment_id)
    ).first()
    if row is None:
        return None
    pruning = Pruning.model_validate(row.spec.get("pruning") or {})
    return None if pruning.rule == "none" else (row.id, pruning)


def sibling_metrics(
    *, session: Session, sweep_id: int, experiment_id: int, epoch: int, metric: Metric
) -> list[float]:
    """The other trials' ``metric`` at ``epoch``, in one query: every trial of the sweep that
    recorded that epoch, whatever its status now (a pruned trial's values still count)."""
    column = getattr(EpochMetric, metric)
    return list(
        session.scalars(
            select(column)
            .join(Experiment, Experiment.id == EpochMetric.experiment_id)
            .where(
                Experiment.sweep_id == sweep_id,
                Experiment.id != experiment_id,
                EpochMetric.epoch == epoch,
                column.is_not(None),
            )
        )
    )


def end_pruned(*, session: Session, lease: Lease, reason: str) -> bool:
    """The worker's end of a trial its sweep's rule stopped: running -> pruned with the
    reason in ``stop_reason``, its epochs kept. A cancel requested during this attempt stands
    (cancelled, no reason). Only while ``lease`` holds the run: a stale attempt changes
    nothing and gets False."""
    cancelled = Experiment.status == Status.cancelled
    result = session.execute(
        update(Experiment)
        .where(*_held(lease))
        .values(
            status=case((cancelled, Status.cancelled), else_=Status.pruned),
            stop_reason=case((cancelled, None), else_=reason),
            finished_at=utcnow(),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
