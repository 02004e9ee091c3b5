"""Sweeps: a spec expands to validated trials, a bad one stores nothing, and the outbox sends
no more trials than the sweep's cap, on SQLite and PostgreSQL, through a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status, Sweep
from app.core.schemas import SpecError
from app.core.sweeps import expand, parse_sweep
from app.services import outbox, sweeps
from app.services.quotas import QuotaExceeded
from app.services.sweep_cache import SweepCache
from tests.support.factories import claim, sweep_data
from tests.support.settings import clear_caches

QUEUE = "cifarlab"


def test_a_grid_and_seeds_expand_to_every_combination_in_order() -> None:
    trials = expand(parse_sweep(sweep_data()))
    points = [trial.point for trial in trials]
    assert points == [
        {"learning_rate": lr, "seed": seed} for lr in (0.001, 0.003) for seed in (0, 1, 2)
    ]
    assert trials[4].spec.hyperparameters.learning_rate == 0.003
    assert trials[4].spec.hyperparameters.seed == 1
    assert trials[4].spec.hyperparameters.epochs == 2
    assert trials[4].spec.name == "lr sweep · learning_rate=0.003 · seed 1"


def test_random_draws_repeat_with_the_same_random_seed_and_stay_in_bounds() -> None:
    data = sweep_data(
        grid={},
        random={
            "learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1},
            "dense_units": {"distribution": "uniform", "low": 16, "high": 64},
            "optimizer": {"distribution": "choice", "values": ["adam", "sgd"]},
        },
        trials=8,
        seeds=2,
    )
    first = [t.point for t in expand(parse_sweep(data))]
    assert first == [t.point for t in expand(parse_sweep(data))]
    assert len(first) == 16
    assert all(1e-4 <= p["learning_rate"] <= 1e-1 for p in first)
    assert all(isinstance(p["dense_units"], int) and 16 <= p["dense_units"] <= 64 for p in first)
    assert {p["seed"] for p in first} == {0, 1}
    other = [t.point for t in expand(parse_sweep({**data, "random_seed": 1}))]
    assert other != first


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"grid": {"learning_rate": [0.001, 0.01, -1]}}, "grid.learning_rate[2]", "greater than 0"),
        ({"grid": {"learnin_rate": [0.1]}}, "grid.learnin_rate", "no hyperparameter learnin_rate"),
        ({"grid": {"seed": [1, 2]}}, "grid.seed", "seeds"),
        ({"grid": {"learning_rate": [0.1]},
          "random": {"learning_rate": {"distribution": "choice", "values": [1]}}, "trials": 1},
         "random.learning_rate", "already a grid axis"),
        ({"grid": {"learning_rate": []}}, "grid", "1 to 100 values"),
        ({"random": {"learning_rate": {"distribution": "uniform", "low": 1}}, "trials": 2},
         "random.learning_rate", "needs low and high"),
        ({"random": {"epochs": {"distribution": "uniform", "low": 0, "high": 3}}, "trials": 40},
         "random.epochs", "greater than or equal to 1"),
        ({"trials": 3}, "trials", "random axis"),
        ({"random": {"epochs": {"distribution": "choice", "values": [1]}}}, "trials", "draws"),
        ({"seeds": [1, 1]}, "seeds", "distinct"),
        # A repeated value would train the same trials twice, as a repeated seed would.
        ({"grid": {"learning_rate": [0.001, 0.003, 0.001]}}, "grid.learning_rate[2]",
         "repeats grid.learning_rate[0]; give each value once"),
        ({"grid": {"batch_size": [64, "64"]}}, "grid.batch_size[1]", "repeats grid.batch_size[0]"),
        ({"grid": {}, "random": {"optimizer": {"distribution": "choice",
                                               "values": ["adam", "sgd", "adam"]}}, "trials": 4},
         "random.optimizer.values[2]", "repeats random.optimizer.values[0]"),
        ({"seeds": 0}, "seeds", "give a count from 1 to 100, or a list of seeds"),
        ({"seeds": [-1, 0]}, "seeds.0", "greater than or equal to 0"),
        ({"model": "resnet9000"}, "model", "unknown model"),
        ({"hyperparameters": {"epochs": 0}}, "hyperparameters.epochs", "greater than or equal"),
        # Base values the trials replace are still the sweep's spec: refused as a launch is.
        ({"hyperparameters": {"seed": "abc"}, "seeds": 2}, "hyperparameters.seed",
         "valid integer"),
        ({"hyperparameters": {"learning_rate": -1}, "grid": {"learning_rate": [0.1]}},
         "hyperparameters.learning_rate", "greater than 0"),
        ({"grid": {"learning_rate": [1e-3, 3e-3], "dense_units": list(range(8, 108))},
          "seeds": 11}, "grid", "2200 trials"),
        ({"max_parallel": 0}, "max_parallel", "greater than or equal to 1"),
        ({"pruning": {"rule": "sometimes"}}, "pruning.rule", "median"),
    ],
)  # fmt: skip
def test_a_bad_sweep_names_the_axis_the_value_and_the_field(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as raised:
        expand(parse_sweep(sweep_data(**changes)))
    fields = {error.field: error.message for error in raised.value.errors}
    assert field in fields, raised.value
    assert words in fields[field]


def test_a_refused_sweep_stores_nothing(session: Session) -> None:
    bad = sweep_data(grid={"learning_rate": [0.001, 0.003, 0]})
    with pytest.raises(SpecError, match=r"grid\.learning_rate\[2\]"):
        sweeps.launch_sweep(session, bad)
    assert session.scalar(select(func.count()).select_from(Sweep)) == 0
    assert session.scalar(select(func.count()).select_from(Experiment)) == 0


def test_repeated_grid_values_are_refused_by_the_api_and_store_nothing(
    broker: redis.Redis, client: TestClient, session: Session
) -> None:
    response = client.post("/api/sweeps", json=sweep_data(grid={"learning_rate": [1e-3, 0.001]}))
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{
        "field": "grid.learning_rate[1]",
        "message": "repeats grid.learning_rate[0]; give each value once",
    }]  # fmt: skip
    assert session.scalar(select(func.count()).select_from(Experiment)) == 0
    assert broker.llen(QUEUE) == 0


def test_a_trials_error_is_named_by_the_axis_that_set_its_value() -> None:
    trials = expand(parse_sweep(sweep_data(
        grid={"learning_rate": [0.001, 0.003]},
        random={"dropout_rate": {"distribution": "uniform", "low": 0.1, "high": 0.5}},
        trials=1, seeds=[0],
    )))  # fmt: skip
    assert [t.origin("learning_rate") for t in trials] == [
        "grid.learning_rate[0]", "grid.learning_rate[1]"
    ]  # fmt: skip
    assert trials[1].origin("dropout_rate") == "random.dropout_rate"
    assert trials[1].origin("epochs") == "hyperparameters.epochs"


def _enqueued(session: Session, sweep_id: int) -> list[int]:
    session.expire_all()
    return [t.id for t in crud.sweep_trials(session=session, sweep_id=sweep_id) if t.enqueued_at]


@pytest.mark.both_databases
def test_the_outbox_sends_no_more_trials_than_the_cap(
    session: Session, broker: redis.Redis
) -> None:
    launched = sweeps.launch_sweep(session, sweep_data(max_parallel=2))
    ids = launched.experiment_ids
    assert len(ids) == 6 and launched.sent == 2
    assert _enqueued(session, launched.sweep.id) == ids[:2]
    assert broker.llen(QUEUE) == 2
    assert outbox.send_pending() == []  # the cap is full: the loop sends nothing more

    # One trial runs and finishes: exactly one more is sent, the next in launch order.
    lease = claim(session, ids[0])
    crud.end_attempt(session=session, lease=lease, status=Status.failed, error="boom")
    session.commit()
    assert outbox.send_pending() == [ids[2]]
    assert _enqueued(session, launched.sweep.id) == ids[:3]
    assert broker.llen(QUEUE) == 3


@pytest.mark.both_databases
def test_cancel_stops_queued_and_running_trials_and_retry_requeues_them(
    session: Session, broker: redis.Redis
) -> None:
    launched = sweeps.launch_sweep(session, sweep_data(seeds=[0], max_parallel=1))
    first, second = launched.experiment_ids
    claim(session, first)
    cancelled = sweeps.cancel_sweep(session, launched.sweep)
    assert cancelled == [first, second]
    view = sweeps.view(session, launched.sweep.id)
    assert view.counts == {Status.cancelled: 2}
    # Both can be retried, and go out one at a time under the cap.
    assert sweeps.retry_failed(session, launched.sweep) == [first, second]
    assert _enqueued(session, launched.sweep.id) == [first]


def test_the_view_reads_points_the_best_trial_counts_and_an_eta(
    session: Session, broker: redis.Redis
) -> None:
    launched = sweeps.launch_sweep(session, sweep_data(seeds=[0]))
    first, second = launched.experiment_ids
    for experiment_id, accuracies in ((first, [0.3, 0.5]), (second, [0.4, 0.45])):
        lease = claim(session, experiment_id)
        for epoch, accuracy in enumerate(accuracies, start=1):
            crud.record_epoch(
                session=session, lease=lease, epoch=epoch, values={"val_accuracy": accuracy}
            )
        session.commit()
    crud.end_attempt(session=session, lease=claim_lease(session, first), status=Status.failed)
    session.commit()
    view = sweeps.view(session, launched.sweep.id)
    assert [t.point for t in view.trials] == [
        {"learning_rate": 0.001, "seed": 0},
        {"learning_rate": 0.003, "seed": 0},
    ]
    assert [t.best_metric for t in view.trials] == [0.5, 0.45]
    assert view.best is not None and view.best.id == first
    assert view.counts == {Status.failed: 1, Status.running: 1}
    assert view.eta_seconds is not None and view.eta_seconds >= 0


def claim_lease(session: Session, experiment_id: int) -> crud.Lease:
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    assert experiment is not None
    session.refresh(experiment)
    return crud.Lease(experiment_id=experiment_id, attempt=experiment.attempts)


def test_a_sweep_counts_its_cap_against_the_active_experiments_limit(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_EXPERIMENTS_PER_USER", "4")
    clear_caches()
    with pytest.raises(QuotaExceeded, match="set max_parallel to at most 4"):
        sweeps.launch_sweep(session, sweep_data())
    assert session.scalar(select(func.count()).select_from(Experiment)) == 0


@pytest.mark.both_databases
def test_the_cache_keeps_a_view_until_its_sweep_changes(
    session: Session, broker: redis.Redis
) -> None:
    launched = sweeps.launch_sweep(session, sweep_data(seeds=[0], max_parallel=1))
    first, second = launched.experiment_ids
    cache = SweepCache()
    seen = cache.get(session, launched.sweep.id)
    assert cache.get(session, launched.sweep.id) is seen
    assert seen.part("n", lambda view: len(view.trials)) == 2
    assert seen.part("n", lambda view: -1) == 2  # made once per version

    lease = claim(session, first)  # a trial starts
    assert (started := cache.get(session, launched.sweep.id)) is not seen
    assert started.view.counts == {Status.running: 1, Status.queued: 1}
    crud.record_epoch(session=session, lease=lease, epoch=1, values={"val_accuracy": 0.4})
    session.commit()  # an epoch is recorded
    assert cache.get(session, launched.sweep.id).view.trials[0].best_metric == 0.4
    sweeps.cancel_sweep(session, launched.sweep)  # statuses change, nothing else
    assert cache.get(session, launched.sweep.id).view.counts == {Status.cancelled: 2}
    assert cache.get(session, launched.sweep.id).view.trials[1].id == second
