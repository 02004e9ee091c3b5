"""One action on many experiments at once (the runs table's selection): add a tag, cancel,
delete. Each experiment goes through the same service a single click uses (update, cancel,
delete) with the same permission check, in its own transaction, so one refusal (not yours,
still running, gone) stops nothing else and the answer says, per id, what happened."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from app.core.schemas import ExperimentUpdate, error_message
from app.services.cancel import cancel
from app.services.delete import delete
from app.services.errors import Conflict
from app.services.update import update


class Action(enum.StrEnum):
    tag = "tag"
    cancel = "cancel"
    delete = "delete"


class Outcome(enum.StrEnum):
    done = "done"  # tagged, cancelled or deleted
    unchanged = "unchanged"  # already tagged, or already finished when cancelled
    forbidden = "forbidden"  # not the caller's to change
    not_found = "not_found"
    conflict = "conflict"  # not in a state that allows it (delete a running run)
    invalid = "invalid"  # the change is refused (a 21st tag)


@dataclass(frozen=True)
class Result:
    id: int
    outcome: Outcome
    detail: str


def apply(
    session: Session,
    ids: Sequence[int],
    action: Action,
    *,
    may_modify: Callable[[Experiment], bool],
    tag: str | None = None,
) -> list[Result]:
    """``action`` on each id in turn (each once, in the order given). ``may_modify``: the
    caller's permission check, as for one experiment."""
    if action is Action.tag and not tag:
        raise ValueError("tagging needs a tag")
    results = []
    for experiment_id in dict.fromkeys(ids):
        experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
        if experiment is None:
            results.append(Result(experiment_id, Outcome.not_found, "no such experiment"))
        elif not may_modify(experiment):
            detail = "only its owner or an admin can change it"
            results.append(Result(experiment_id, Outcome.forbidden, detail))
        else:
            results.append(_one(session, experiment, action, tag or ""))
    return results


def _one(session: Session, experiment: Experiment, action: Action, tag: str) -> Result:
    experiment_id = experiment.id
    if action is Action.tag:
        if tag in experiment.tags:
            return Result(experiment_id, Outcome.unchanged, f"already tagged {tag}")
        try:
            changes = ExperimentUpdate(tags=[*experiment.tags, tag])
        except ValidationError as exc:
            message = error_message(exc.errors()[0])
            return Result(experiment_id, Outcome.invalid, f"tags: {message}")
        update(session, experiment, changes.model_dump(exclude_unset=True))
        return Result(experiment_id, Outcome.done, f"tagged {tag}")
    if action is Action.cancel:
        before = experiment.status
        if before.finished:
            return Result(experiment_id, Outcome.unchanged, f"already {before}")
        cancel(session, experiment)
        if experiment.status.finished and experiment.status != "cancelled":
            return Result(experiment_id, Outcome.unchanged, f"{experiment.status} meanwhile")
        return Result(experiment_id, Outcome.done, f"{before}, now {experiment.status}")
    try:
        delete(session, experiment)
    except Conflict as exc:
        return Result(experiment_id, Outcome.conflict, str(exc))
    return Result(experiment_id, Outcome.done, "deleted")
