"""Whether a sweep's trial stops early, judged at an epoch boundary against its siblings.

Pure functions over numbers: the worker reads the siblings' values at the epoch (one query,
``crud.sibling_metrics``) and asks ``decide``; the reason comes back in words, for the
trial's ``stop_reason``. Two rules, as ``Pruning`` (app/core/sweeps.py) names them:

- ``median`` (Optuna's MedianPruner): after ``warmup_epochs``, a trial whose value at epoch
  k is worse than the median of the other trials' values at k stops, once at least
  ``min_trials`` others have reached k.
- ``asha`` (asynchronous successive halving, Li et al. 2018): rungs at ``min_epochs`` x
  ``reduction_factor``^i epochs; at a rung a trial goes on only if its value is among the
  best 1/``reduction_factor`` of every value recorded at that rung so far, its own included.
  With fewer values than ``reduction_factor`` that is the best one alone (as Optuna's
  SuccessiveHalvingPruner does: trials cannot be paused and promoted later).

``val_accuracy`` is higher-is-better, ``val_loss`` lower-is-better. A trial whose own value
is NaN (it diverged) stops at the first epoch its rule judges; siblings' NaNs are no
evidence and are left out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.sweeps import Pruning

LOWER_IS_BETTER = frozenset({"val_loss"})


@dataclass(frozen=True)
class Decision:
    """Whether to stop the trial, and why (or why not), in words a person reads."""

    prune: bool
    reason: str


def judges_at(pruning: Pruning, epoch: int) -> bool:
    """Whether ``pruning`` can stop a trial at ``epoch`` (1-based) at all: the worker reads
    the siblings only at those epochs."""
    if pruning.rule == "median":
        return epoch > pruning.warmup_epochs
    if pruning.rule == "asha":
        return _rung(pruning, epoch) is not None
    return False


def decide(
    pruning: Pruning, *, epoch: int, value: float | None, others: Sequence[float]
) -> Decision:
    """Judge a trial whose metric at ``epoch`` is ``value``, given the other trials' values
    at that epoch (``others``, the trial's own left out)."""
    metric = pruning.metric
    if not judges_at(pruning, epoch):
        return Decision(False, f"{pruning.rule} pruning does not judge epoch {epoch}")
    if value is None:
        return Decision(False, f"epoch {epoch} recorded no {metric}")
    if math.isnan(value):
        return Decision(True, f"pruned at epoch {epoch} because {metric} is NaN (it diverged)")
    known = [v for v in others if not math.isnan(v)]
    if pruning.rule == "median":
        return _median(pruning, epoch, value, known)
    return _asha(pruning, epoch, value, known)


def _better(metric: str, value: float, than: float) -> bool:
    return value < than if metric in LOWER_IS_BETTER else value > than


def _trials(count: int) -> str:
    return f"{count} other trial{'s' if count != 1 else ''}"


def _median(pruning: Pruning, epoch: int, value: float, others: list[float]) -> Decision:
    metric = pruning.metric
    if len(others) < pruning.min_trials:
        return Decision(
            False,
            f"only {_trials(len(others))} reached epoch {epoch}; the median rule waits for "
            f"{pruning.min_trials}",
        )
    median = statistics.median(others)
    side = "above" if metric in LOWER_IS_BETTER else "below"
    if _better(metric, median, value):
        return Decision(
            True,
            f"pruned at epoch {epoch} because {metric} {value:.4g} is {side} the median "
            f"{median:.4g} of {_trials(len(others))} at that epoch",
        )
    return Decision(
        False,
        f"{metric} {value:.4g} is not {side} the median {median:.4g} of "
        f"{_trials(len(others))} at epoch {epoch}",
    )


def _rung(pruning: Pruning, epoch: int) -> int | None:
    """The rung index whose epoch count is ``epoch``, or None between rungs."""
    rung, epochs = 0, pruning.min_epochs
    while epochs < epoch:
        rung, epochs = rung + 1, epochs * pruning.reduction_factor
    return rung if epochs == epoch else None


def _asha(pruning: Pruning, epoch: int, value: float, others: list[float]) -> Decision:
    metric = pruning.metric
    factor = pruning.reduction_factor
    recorded = len(others) + 1
    keep = max(recorded // factor, 1)
    ranked = sorted(others, reverse=metric not in LOWER_IS_BETTER)
    ahead = sum(1 for other in ranked if _better(metric, other, value))
    rung = _rung(pruning, epoch)
    where = f"rung {rung} (epoch {epoch})"
    if ahead < keep:
        return Decision(
            False,
            f"{metric} {value:.4g} ranks {ahead + 1} of {recorded} at {where}; the best "
            f"{keep} go on",
        )
    cutoff = ranked[keep - 1]
    return Decision(
        True,
        f"pruned at epoch {epoch} because {metric} {value:.4g} is not in the best 1/{factor} "
        f"of {recorded} trials at {where} (it ranks {ahead + 1}; the best {keep} reach "
        f"{cutoff:.4g})",
    )
