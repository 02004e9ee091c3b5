"""Launching an experiment, the same way from the form, the API and the CLI's API call."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Experiment, Status
from app.core.naming import parse_named_spec
from app.core.schemas import ExperimentSpec, FieldError, SpecError
from app.services import outbox
from app.services.quotas import check_active_experiments

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 200
BROKER_RETRY_AFTER_SECONDS = 10


class BrokerUnavailable(Exception):
    """The experiment is stored and queued, but the broker did not take it yet; the web's
    outbox loop sends it once the broker answers (app/services/outbox.py)."""

    def __init__(self, experiment: Experiment) -> None:
        broker = maybe_sanitize_url(get_settings().redis_url)
        super().__init__(
            f"experiment {experiment.id} is stored and queued, but the broker at {broker} did "
            "not answer; cifarlab sends it to the workers once the broker is back. Do not "
            f"launch it again (or resend with the same {IDEMPOTENCY_HEADER})."
        )
        self.experiment = experiment


WARM_START = "warm_start_experiment_id"


@dataclass(frozen=True)
class WarmStartRefusal:
    """Why a spec cannot start from the experiment it names, and the spec's settings that
    disagree with it (the warm start, then any other): a sweep names the one it varies."""

    message: str
    settings: tuple[str, ...] = (WARM_START,)


def warm_start_refusal(session: Session, spec: ExperimentSpec) -> WarmStartRefusal | None:
    """What the spec alone cannot know and the worker would fail on after the queue: the
    source must have a trained model of the same model taking the same input size (the fast
    family's network takes any, but its ``image_size`` is always 32). The worker loads the
    source's saved network whole, so its other shape settings (filters, widths, blocks) are
    the source's and cannot fail; it still checks the shapes itself
    (``worker.builders.load_warm_start``)."""
    source_id = spec.hyperparameters.warm_start_experiment_id
    if source_id is None:
        return None
    source = crud.get_experiment(session=session, experiment_id=source_id)
    if source is None or source.status != Status.succeeded:
        return WarmStartRefusal(
            f"experiment {source_id} has no trained model to start from; pick one that succeeded"
        )
    if source.model != spec.model:
        return WarmStartRefusal(f"experiment {source_id} trained {source.model}, not {spec.model}")
    trained_at = source.spec.get("hyperparameters", {}).get("image_size")
    size = spec.hyperparameters.image_size
    if isinstance(trained_at, int) and trained_at != size:
        return WarmStartRefusal(
            f"experiment {source_id} trained at image_size {trained_at}, not {size}; warm "
            "starts keep the input size",
            (WARM_START, "image_size"),
        )
    return None


def check_references(session: Session, spec: ExperimentSpec) -> None:
    """A single launch's ``warm_start_refusal``, named by its warm start field."""
    if (refusal := warm_start_refusal(session, spec)) is not None:
        field = f"hyperparameters.{WARM_START}"
        raise SpecError([FieldError(field=field, message=refusal.message)])


def _key_error(message: str) -> SpecError:
    return SpecError([FieldError(field=IDEMPOTENCY_HEADER, message=message)])


def _scoped_key(key: str, owner_id: int | None) -> str:
    """Keys are the client's own: two users may pick the same one."""
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise _key_error(f"use 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return f"{'-' if owner_id is None else owner_id}:{key}"


def _request_hash(spec_data: Any) -> str:
    return hashlib.sha256(json.dumps(spec_data, sort_keys=True, default=str).encode()).hexdigest()


def _replay(session: Session, scoped_key: str, request_hash: str) -> Experiment | None:
    """The experiment an earlier request with this key launched, if it was the same request."""
    experiment = session.scalar(select(Experiment).where(Experiment.idempotency_key == scoped_key))
    if experiment is None:
        return None
    if experiment.request_hash != request_hash:
        raise _key_error(
            f"this key launched experiment {experiment.id} with a different body; use a new "
            "key for a different launch"
        )
    return experiment


def _send(session: Session, experiment: Experiment) -> Experiment:
    if not outbox.send(session, experiment.id):
        raise BrokerUnavailable(experiment)
    session.refresh(experiment)
    return experiment


def launch(
    session: Session,
    spec_data: Any,
    *,
    owner_id: int | None = None,
    idempotency_key: str | None = None,
) -> Experiment:
    """Validate, store as queued, commit, then send: a queued id always has its row.

    With an ``idempotency_key``, the same request again returns the experiment the first one
    stored instead of a second one. A blank name is derived from what the spec changes
    (``app.core.naming``). Raises ``SpecError`` or ``QuotaExceeded`` before anything
    is stored, and ``BrokerUnavailable`` after (the experiment is kept and sent later).
    """
    scoped_key = request_hash = None
    if idempotency_key is not None:
        scoped_key, request_hash = _scoped_key(idempotency_key, owner_id), _request_hash(spec_data)
        if (earlier := _replay(session, scoped_key, request_hash)) is not None:
            return _send(session, earlier)  # sends it only if it is still waiting
    spec = parse_named_spec(spec_data)
    check_references(session, spec)
    check_active_experiments(session, owner_id)
    try:
        experiment = crud.create_experiment(
            session=session, spec=spec, owner_id=owner_id, idempotency_key=scoped_key,
            request_hash=request_hash,
        )  # fmt: skip
        session.commit()
    except IntegrityError:  # the same key, launched by a request running beside this one
        session.rollback()
        if scoped_key is None or request_hash is None:
            raise
        earlier = _replay(session, scoped_key, request_hash)
        if earlier is None:
            raise
        return _send(session, earlier)
    return _send(session, experiment)
