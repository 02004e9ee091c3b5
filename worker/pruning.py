"""A sweep's trial judged against its siblings after each epoch's row is written."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.core import crud
from app.core.db import session_scope
from app.core.pruning import Decision, decide, judges_at
from app.core.sweeps import Pruning

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialPruner:
    """The rule of the sweep ``experiment_id`` belongs to. Reads the siblings' values only at
    epochs the rule judges, one query each."""

    experiment_id: int
    sweep_id: int
    pruning: Pruning

    @classmethod
    def for_experiment(cls, experiment_id: int) -> TrialPruner | None:
        """Read once per run: None when the experiment is no sweep's trial, or its sweep
        prunes nothing (a rule changed later applies to trials started after)."""
        with session_scope() as session:
            found = crud.sweep_pruning(session=session, experiment_id=experiment_id)
        if found is None:
            return None
        sweep_id, pruning = found
        return cls(experiment_id=experiment_id, sweep_id=sweep_id, pruning=pruning)

    def judge(self, epoch: int, values: dict[str, float | None]) -> Decision | None:
        """``values`` are the epoch's recorded metrics; None when the rule does not judge
        this epoch."""
        if not judges_at(self.pruning, epoch):
            return None
        with session_scope() as session:
            others = crud.sibling_metrics(
                session=session, sweep_id=self.sweep_id, experiment_id=self.experiment_id,
                epoch=epoch, metric=self.pruning.metric,
            )  # fmt: skip
        decision = decide(
            self.pruning, epoch=epoch, value=values.get(self.pruning.metric), others=others
        )
        logger.info("experiment %s: %s", self.experiment_id, decision.reason)
        return decision
