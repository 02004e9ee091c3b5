"""The pruning rules as pure functions, median (Optuna's MedianPruner) and ASHA, and the
reads and the end they need from the database."""

from __future__ import annotations

import math

import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status
from app.core.pruning import decide, judges_at
from app.core.schemas import parse_spec
from app.core.sweeps import Pruning, expand, parse_sweep
from tests.support.factories import claim, spec_data


def median(**options: object) -> Pruning:
    return Pruning.model_validate({"rule": "median", **options})


def asha(**options: object) -> Pruning:
    return Pruning.model_validate({"rule": "asha", **options})


def test_median_prunes_a_trial_below_the_median_of_the_others_and_says_why() -> None:
    rule = median(warmup_epochs=1, min_trials=3)
    decision = decide(rule, epoch=3, value=0.31, others=[0.40, 0.42, 0.45, 0.2, 0.5])
    assert decision.prune
    assert decision.reason == (
        "pruned at epoch 3 because val_accuracy 0.31 is below the median 0.42 of 5 other "
        "trials at that epoch"
    )


def test_median_keeps_a_trial_at_or_above_the_median() -> None:
    rule = median(warmup_epochs=0, min_trials=1)
    assert not decide(rule, epoch=1, value=0.42, others=[0.40, 0.42, 0.45]).prune
    assert not decide(rule, epoch=1, value=0.9, others=[0.40, 0.42, 0.45]).prune


def test_median_of_an_even_count_is_the_midpoint() -> None:
    rule = median(warmup_epochs=0, min_trials=1)
    assert decide(rule, epoch=1, value=0.45, others=[0.4, 0.5]).prune is False
    assert decide(rule, epoch=1, value=0.449, others=[0.4, 0.5]).prune is True


def test_median_waits_for_warmup_and_for_enough_other_trials() -> None:
    rule = median(warmup_epochs=2, min_trials=3)
    assert [judges_at(rule, epoch) for epoch in (1, 2, 3)] == [False, False, True]
    assert not decide(rule, epoch=2, value=0.0, others=[0.9, 0.9, 0.9]).prune
    waiting = decide(rule, epoch=3, value=0.0, others=[0.9, 0.9])
    assert not waiting.prune
    assert "only 2 other trials reached epoch 3" in waiting.reason
    assert decide(rule, epoch=3, value=0.0, others=[0.9, 0.9, 0.9]).prune


def test_val_loss_is_lower_is_better() -> None:
    rule = median(metric="val_loss", warmup_epochs=0, min_trials=1)
    worse = decide(rule, epoch=2, value=1.9, others=[1.0, 1.2, 1.5])
    assert worse.prune
    assert "val_loss 1.9 is above the median 1.2 of 3 other trials" in worse.reason
    assert not decide(rule, epoch=2, value=0.8, others=[1.0, 1.2, 1.5]).prune


def test_a_diverged_trial_is_pruned_and_diverged_siblings_are_no_evidence() -> None:
    rule = median(metric="val_loss", warmup_epochs=0, min_trials=2)
    diverged = decide(rule, epoch=1, value=math.nan, others=[])
    assert diverged.prune and "NaN" in diverged.reason
    assert not decide(rule, epoch=1, value=5.0, others=[math.nan, 1.0]).prune  # 1 other


def test_no_rule_and_no_value_never_prune() -> None:
    assert not judges_at(Pruning(), 5)
    assert not decide(Pruning(), epoch=5, value=0.0, others=[1.0] * 10).prune
    assert not decide(median(warmup_epochs=0), epoch=1, value=None, others=[1.0] * 10).prune


def test_asha_judges_only_at_its_rungs() -> None:
    rule = asha(min_epochs=2, reduction_factor=3)
    assert [e for e in range(1, 60) if judges_at(rule, e)] == [2, 6, 18, 54]
    assert not decide(rule, epoch=3, value=0.0, others=[0.9] * 9).prune


@pytest.mark.parametrize(
    ("value", "pruned"),
    [(0.9, False), (0.8, False), (0.7, True), (0.1, True)],
)
def test_asha_keeps_the_best_third_of_the_values_at_a_rung(value: float, pruned: bool) -> None:
    # Six values at the rung, the trial's own included: the best two go on.
    rule = asha(min_epochs=1, reduction_factor=3)
    others = [0.85, 0.75, 0.5, 0.4, 0.3]
    assert decide(rule, epoch=3, value=value, others=others).prune is pruned


def test_asha_says_why_in_words() -> None:
    rule = asha(min_epochs=1, reduction_factor=3)
    decision = decide(rule, epoch=3, value=0.7, others=[0.85, 0.75, 0.5, 0.4, 0.3])
    assert decision.reason == (
        "pruned at epoch 3 because val_accuracy 0.7 is not in the best 1/3 of 6 trials at "
        "rung 1 (epoch 3) (it ranks 3; the best 2 reach 0.75)"
    )


def test_asha_with_fewer_values_than_the_factor_keeps_only_the_best_so_far() -> None:
    rule = asha(min_epochs=1, reduction_factor=3)
    assert not decide(rule, epoch=1, value=0.5, others=[]).prune  # the first to arrive
    assert not decide(rule, epoch=1, value=0.6, others=[0.5]).prune
    assert not decide(rule, epoch=1, value=0.5, others=[0.5]).prune  # a tie goes on
    assert decide(rule, epoch=1, value=0.4, others=[0.5]).prune


def test_asha_on_val_loss_keeps_the_lowest() -> None:
    rule = asha(metric="val_loss", min_epochs=1, reduction_factor=2)
    assert not decide(rule, epoch=2, value=0.9, others=[1.0, 1.5, 2.0]).prune
    assert decide(rule, epoch=2, value=1.2, others=[0.9, 1.0, 2.0]).prune


def three_trials(session: Session) -> list[Experiment]:
    data = {
        "name": "pruned",
        "model": "custom_cnn",
        "seeds": 3,
        "pruning": {"rule": "median", "warmup_epochs": 0, "min_trials": 1},
    }
    spec = parse_sweep(data)
    _, trials = crud.create_sweep(session=session, spec=spec, trials=expand(spec), owner_id=None)
    session.commit()
    return trials


@pytest.mark.both_databases
def test_siblings_values_at_an_epoch_are_read_in_one_query(backend: str, session: Session) -> None:
    first, second, third = three_trials(session)
    other_sweep = three_trials(session)[0]
    for experiment, values in (
        (first, {1: 0.5, 2: 0.6}),
        (second, {1: 0.4}),
        (third, {1: None}),
        (other_sweep, {1: 0.9}),
    ):
        lease = claim(session, experiment.id)
        for epoch, value in values.items():
            crud.record_epoch(
                session=session, lease=lease, epoch=epoch, values={"val_accuracy": value}
            )
    session.commit()
    found = crud.sweep_pruning(session=session, experiment_id=first.id)
    assert found is not None and found[0] == first.sweep_id and found[1].rule == "median"
    read = {
        "sweep_id": first.sweep_id, "experiment_id": third.id, "metric": "val_accuracy",
    }  # fmt: skip
    assert sorted(crud.sibling_metrics(session=session, epoch=1, **read)) == [0.4, 0.5]
    assert crud.sibling_metrics(session=session, epoch=2, **read) == [0.6]
    assert crud.sibling_metrics(session=session, epoch=3, **read) == []


@pytest.mark.both_databases
def test_a_pruned_end_keeps_its_reason_but_a_cancel_requested_meanwhile_wins(
    backend: str, session: Session
) -> None:
    pruned, cancelled, _ = three_trials(session)
    leases = [claim(session, pruned.id), claim(session, cancelled.id)]
    session.commit()
    crud.request_cancel(session=session, experiment=cancelled)
    for lease in leases:
        assert crud.end_pruned(session=session, lease=lease, reason="pruned at epoch 1 because")
    session.commit()
    session.expire_all()
    assert (pruned.status, pruned.stop_reason) == (Status.pruned, "pruned at epoch 1 because")
    assert pruned.finished_at is not None
    assert (cancelled.status, cancelled.stop_reason) == (Status.cancelled, None)
    assert not crud.end_pruned(session=session, lease=leases[0], reason="again")


def test_an_experiment_outside_a_sweep_or_in_one_without_pruning_has_no_rule(
    session: Session,
) -> None:
    experiment = crud.create_experiment(session=session, spec=parse_spec(spec_data()))
    spec = parse_sweep({"name": "plain", "model": "custom_cnn", "seeds": 1})
    _, (trial,) = crud.create_sweep(session=session, spec=spec, trials=expand(spec), owner_id=None)
    session.commit()
    assert crud.sweep_pruning(session=session, experiment_id=experiment.id) is None
    assert crud.sweep_pruning(session=session, experiment_id=trial.id) is None
