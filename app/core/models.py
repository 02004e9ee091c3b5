"""SQLAlchemy ORM: what an experiment is, and what its training leaves behind."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

INTEGER_MAX = 2**31 - 1
"""The largest id, epoch or count a column holds (PostgreSQL's ``integer``): the API refuses
bigger numbers up front, where the database driver failed with a 500."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# Class indices fit a byte (CIFAR-100 too); a softmax confidence needs no more than float32.
PER_IMAGE_DTYPES = {"labels": "u1", "predictions": "u1", "confidences": "<f4"}


class PackedArray(TypeDecorator[npt.NDArray[Any]]):
    """A 1-D numpy array kept as its raw little-endian bytes. 10,000 per-image predictions
    are 10 KB that load with one ``np.frombuffer``; as a JSON list they were three times the
    size and took milliseconds to parse on every comparison."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, dtype: str) -> None:
        super().__init__()
        self.dtype = np.dtype(dtype)

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        values = np.asarray(value)
        packed = values.astype(self.dtype)
        if self.dtype.kind in "iu" and not np.array_equal(packed, values):
            raise ValueError(f"values do not fit {self.dtype.name}: {values.min()}..{values.max()}")
        return packed.tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> npt.NDArray[Any] | None:
        if value is None:
            return None
        return np.frombuffer(value, dtype=self.dtype)

    def compare_values(self, x: Any, y: Any) -> bool:
        if x is None or y is None:
            return x is y
        return bool(np.array_equal(x, y))


NEVER_REUSED = {"sqlite_autoincrement": True}
"""Table options for rows whose ids people keep: links to /experiments/N and /compare, exported
CSVs, the CLI's history and token ids. Without AUTOINCREMENT SQLite numbers a new row max(id)+1,
so deleting the newest row handed its id (and its folder, deleted after the commit) to the next
one; PostgreSQL's sequences never reuse an id, and now neither does SQLite."""


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Status(enum.StrEnum):
    """Where an experiment stands; stored as its text (``"queued"``), no database enum type."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    imported = "imported"  # a pasted classification report: no run behind it
    pruned = "pruned"  # a sweep's trial stopped early for doing worse than its siblings

    @property
    def finished(self) -> bool:
        return self is not Status.queued and self is not Status.running


IMPORTED_MODEL = "imported"
"""The ``model`` of an imported report: no model of the zoo trained it, and clients filter
``GET /api/experiments?model=imported`` for them. Whether an experiment *is* imported is its
status (``Status.imported``); this name only fills the column."""


class StatusText(TypeDecorator[Status]):
    """``Status`` in Python, its text in the database: the same VARCHAR(16) the column always
    had, so neither a migration nor a database enum type is needed. Filters may pass plain
    text (``?status=`` is validated before it gets here)."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Status | str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Status | None:
        return None if value is None else Status(value)


USERNAME_LENGTH = 64
TOKEN_NAME_LENGTH = 100
"""The columns' lengths, which the sign-in form and the token commands check before writing."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A disabled account cannot sign in and its tokens are refused; it still counts as an
    # account, so disabling the last one never opens the server to everyone.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ApiToken(Base):
    """Only a hash of the token is kept; the token itself is shown once, when created."""

    __tablename__ = "api_tokens"
    __table_args__ = (NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(TOKEN_NAME_LENGTH))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    user: Mapped[User] = relationship()


class BrowserSession(Base):
    """A signed-in browser. The cookie carries a random id; only its hash is kept here, so
    deleting the row (logout, password change, disabling the user) ends the session even for
    a copy of the cookie."""

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class LoginFailure(Base):
    """One wrong password, counted against the account and the client address. In the
    database, so every web process sees the same count."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Sweep(Base):
    """A set of trials launched together: a base spec, the axes it varies, and seeds
    (``app.core.sweeps.SweepSpec``, stored whole in ``spec``). Each trial is an ordinary
    experiment pointing back here; the sweep keeps what applies to all of them: how many may
    run at once and the pruning rule."""

    __tablename__ = "sweeps"
    __table_args__ = (NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Trials sent to the workers at once; the rest wait in the outbox. None: no cap.
    max_parallel: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    owner: Mapped[User | None] = relationship(lazy="joined")


class Experiment(Base):
    __tablename__ = "experiments"
    # The list's default order, newest first: read from this index, not sorted from every row.
    __table_args__ = (
        Index("ix_experiments_created_at_id", "created_at", "id"),
        NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[Status] = mapped_column(StatusText(), index=True, default=Status.queued)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    worker_host: Mapped[str | None] = mapped_column(String(255), default=None)
    worker_name: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    device: Mapped[str | None] = mapped_column(String(255), default=None)
    current_epoch: Mapped[int] = mapped_column(Integer, default=0)
    epoch_progress: Mapped[float] = mapped_column(Float, default=0.0)
    total_epochs: Mapped[int] = mapped_column(Integer, default=0)
    parameters: Mapped[int | None] = mapped_column(Integer, default=None)
    trainable_parameters: Mapped[int | None] = mapped_column(Integer, default=None)
    # Read on the experiment's own page only; lists never load it.
    model_layers: Mapped[list[Any] | None] = mapped_column(JSON, default=None, deferred=True)
    test_accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    macro_f1: Mapped[float | None] = mapped_column(Float, default=None)
    # The running process's memory at its last heartbeat (app.core.memory.MemoryFigures as JSON):
    # what the message quotes when a worker is killed, most likely by the OOM killer.
    memory: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Why the last run was cut short (worker killed, restarted); kept after a resumed run ends.
    interruption: Mapped[str | None] = mapped_column(Text, default=None)
    # The launch outbox (app/services/outbox.py): a queued experiment whose message the broker has
    # not taken yet has no enqueued_at; the claim is a lease so one web process sends it.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    enqueue_claimed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    # "<owner>:<Idempotency-Key>", so a client's retried launch finds its first one.
    idempotency_key: Mapped[str | None] = mapped_column(String(300), default=None, unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # The sweep that launched it, if any; deleting a sweep would leave its runs standing.
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="SET NULL"), index=True, default=None
    )
    # Why a run stopped before its planned epochs without failing: "pruned at epoch 3 because".
    stop_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Wall time inside epochs (the sum of the epoch rows' seconds): queueing, idle time between
    # attempts, data loading and evaluation are not training.
    training_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    # What the running attempt is doing (app.core.run_phase.RunPhase: loading data, an
    # epoch of a phase, evaluating); None before a worker has said.
    run_phase: Mapped[str | None] = mapped_column(String(32), default=None)
    # The heartbeat's last CPU, memory and GPU readings (app.core.telemetry.Telemetry as JSON).
    telemetry: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    @property
    def wall_clock_seconds(self) -> float | None:
        """Started to finished on the clock: with a retry or a requeue this counts the time
        spent queued and idle between attempts, so it is not how long the run trained
        (``training_seconds`` is)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    owner: Mapped[User | None] = relationship(lazy="joined")

    @property
    def owner_name(self) -> str | None:
        return self.owner.username if self.owner else None

    epochs: Mapped[list[EpochMetric]] = relationship(
        back_populates="experiment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="EpochMetric.epoch",
    )
    evaluation: Mapped[Evaluation | None] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", passive_deletes=True
    )


class EpochMetric(Base):
    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("experiment_id", "epoch", name="uq_epoch_per_experiment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    epoch: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(32), default="train")
    loss: Mapped[float | None] = mapped_column(Float, default=None)
    accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    val_loss: Mapped[float | None] = mapped_column(Float, default=None)
    val_accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    learning_rate: Mapped[float | None] = mapped_column(Float, default=None)
    seconds: Mapped[float | None] = mapped_column(Float, default=None)
    images_per_second: Mapped[float | None] = mapped_column(Float, default=None)

    experiment: Mapped[Experiment] = relationship(back_populates="epochs")


class Evaluation(Base):
    __tablename__ = "evaluations"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    accuracy: Mapped[float] = mapped_column(Float)
    classes: Mapped[list[Any]] = mapped_column(JSON)
    confusion_matrix: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    test_size: Mapped[int] = mapped_column(Integer)
    # How each test image was predicted: "none" (once), "flip" (mean with its mirror image) or
    # "flip_translate" (also with 1-pixel shifts of both).
    test_time_augmentation: Mapped[str] = mapped_column(
        String(16), default="none", server_default="none"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Per test image, in evaluation order; None for imported reports.
    test_set_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    labels: Mapped[npt.NDArray[np.uint8] | None] = mapped_column(
        PackedArray(PER_IMAGE_DTYPES["labels"]), default=None, deferred=True
    )
    predictions: Mapped[npt.NDArray[np.uint8] | None] = mapped_column(
        PackedArray(PER_IMAGE_DTYPES["predictions"]), default=None, deferred=True
    )
    confidences: Mapped[npt.NDArray[np.float32] | None] = mapped_column(
        PackedArray(PER_IMAGE_DTYPES["confidences"]), default=None, deferred=True
    )

    experiment: Mapped[Experiment] = relationship(back_populates="evaluation")


class Worker(Base):
    """A Celery worker process that says it is alive; what the workers page lists."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    restarts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_exit: Mapped[str | None] = mapped_column(Text, default=None)  # why it last restarted


class LiveStream(Base):
    """An open live-events stream, so a per-user limit holds across web processes. A stream
    renews ``expires_at`` while open; a process that died leaves rows that expire."""

    __tablename__ = "live_streams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    viewer: Mapped[str] = mapped_column(String(100), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
