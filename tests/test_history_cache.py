"""Finished experiments' histories kept between comparisons: kept only while nothing about
the run changed, and bounded by the epochs they hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import EpochMetric, Experiment, Status
from app.services.comparison import History
from app.services.diagnostics import diagnose
from app.services.history_cache import HistoryCache
from tests.support.factories import claim, make_evaluated, make_experiment

LABELS = [i % 10 for i in range(100)]
EPOCHS = [{"loss": 1.0 / e, "accuracy": 0.1 * e, "val_loss": 1.2 / e, "val_accuracy": 0.09 * e}
          for e in range(1, 5)]  # fmt: skip
FINISHED = datetime(2026, 11, 1, tzinfo=UTC)


def finished(experiment_id: int, **changes: object) -> Experiment:
    values: dict[str, object] = {
        "status": Status.succeeded, "finished_at": FINISHED, "attempts": 1, "current_epoch": 4,
    }  # fmt: skip
    return Experiment(id=experiment_id, **(values | changes))


def history(epochs: int) -> History:
    return History(epochs, None, None, [], diagnose([]), [])


def test_a_finished_experiment_is_kept_until_its_run_changes() -> None:
    cache = HistoryCache()
    kept = history(4)
    cache.put(finished(1), kept)
    assert cache.get(finished(1)) is kept
    for change in (
        {"status": Status.failed},
        {"finished_at": FINISHED + timedelta(seconds=1)},
        {"attempts": 2},
        {"current_epoch": 5},
    ):
        assert cache.get(finished(1, **change)) is None, change


@pytest.mark.parametrize(
    "state", [{"status": Status.queued}, {"status": Status.running}, {"status": Status.cancelled,
                                                                       "finished_at": None}]
)  # fmt: skip
def test_unfinished_runs_are_never_kept(state: dict[str, object]) -> None:
    """A cancel is requested before the worker writes its last epoch and sets the finish time."""
    cache = HistoryCache()
    cache.put(finished(1, **state), history(4))
    assert len(cache) == 0 and cache.get(finished(1, **state)) is None


def test_the_least_recently_used_go_first_when_the_epochs_exceed_the_bound() -> None:
    cache = HistoryCache(max_epochs=10)
    for experiment_id in (1, 2):
        cache.put(finished(experiment_id), history(4))
    assert cache.get(finished(1)) is not None  # 1 is now the most recently used
    cache.put(finished(3), history(4))  # 12 epochs: 2 goes
    assert [cache.get(finished(i)) is not None for i in (1, 2, 3)] == [True, False, True]
    cache.put(finished(4), history(50))  # larger than the bound alone: kept, the rest go
    assert len(cache) == 1 and cache.get(finished(4)) is not None


# --- through the compare API, on a real database ---------------------------------------------


def epochs_shown(client: TestClient, ids: str, experiment: Experiment) -> int:
    data = client.get(f"/api/compare?ids={ids}").json()
    return next(e["epochs"] for e in data["experiments"] if e["id"] == experiment.id)


def test_a_finished_experiment_s_epochs_are_read_once(client: TestClient, session: Session) -> None:
    a = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS)
    b = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS[:2])
    ids = f"{a.id},{b.id}"
    first = client.get(f"/api/compare?ids={ids}").json()
    # rows removed behind the app's back, the run itself unchanged: the kept history stands
    session.execute(delete(EpochMetric).where(EpochMetric.experiment_id == a.id))
    session.commit()
    assert client.get(f"/api/compare?ids={ids}").json() == first


def test_a_retried_run_and_a_running_one_show_their_new_epochs(
    client: TestClient, session: Session
) -> None:
    a = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS)
    running = make_experiment(session)
    lease = claim(session, running.id)
    session.commit()
    ids = f"{a.id},{running.id}"
    assert (epochs_shown(client, ids, a), epochs_shown(client, ids, running)) == (4, 0)

    crud.record_epoch(session=session, lease=lease, epoch=1, values=EPOCHS[0])
    assert crud.requeue(
        session=session, experiment_id=a.id, from_status=Status.succeeded, attempt=a.attempts
    )
    session.commit()
    assert epochs_shown(client, ids, running) == 1
    again = claim(session, a.id)
    crud.record_epoch(session=session, lease=again, epoch=5, values=EPOCHS[0])
    assert crud.end_attempt(session=session, lease=again, status=Status.failed)
    session.commit()
    assert epochs_shown(client, ids, a) == 5
