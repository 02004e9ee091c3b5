"""Muon (``optimizer=muon``): orthogonal steps on the filters at a fixed norm, Keras's Nesterov
SGD on the other weights, and a killed run that resumes as if it had not been."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Status
from app.core.schemas import parse_spec
from tests.support.factories import claim, spec_data
from tests.support.interruptions import killed_after_checkpoint
from worker import runner
from worker.muon import Muon, orthogonalise

TINY_MUON = {
    "optimizer": "muon", "width_1": 8, "width_2": 8, "width_3": 8, "batch_size": 50,
    # Neither lookahead's slow copy nor the shifts' generator is in a checkpoint, so with
    # either a resumed run would differ (docs/architecture.md, "Exact resume").
    "lookahead": False, "augment_translate": 0,
}  # fmt: skip


def muon(**changes: float) -> Muon:
    settings = dict(
        peak_learning_rate=0.5, filter_learning_rate=0.2, momentum=0.85, filter_momentum=0.6,
        weight_decay_rate=0.01,
    )  # fmt: skip
    return Muon(0.5, **{**settings, **changes})


@pytest.mark.parametrize("shape", [(576, 64), (64, 576), (100, 100)])
def test_orthogonalising_keeps_a_matrix_directions_and_evens_its_singular_values(shape) -> None:
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((shape[0], min(shape))))
    v, _ = np.linalg.qr(rng.standard_normal((shape[1], min(shape))))
    spread = np.geomspace(1e-3, 1, min(shape))  # three orders of magnitude
    matrix = ((u * spread) @ v.T).astype("float32")
    result = keras.ops.convert_to_numpy(orthogonalise(keras.ops.convert_to_tensor(matrix)))
    # In the matrix's own singular directions the result is diagonal: the same directions.
    in_its_directions = u.T @ result @ v
    values = np.diag(in_its_directions)
    off_diagonal = in_its_directions - np.diag(values)
    assert np.linalg.norm(off_diagonal) < 1e-3 * np.linalg.norm(values)
    # Every direction above a twentieth of the largest ends near 1; the rest are raised.
    assert np.all((values[spread >= 0.05] > 0.5) & (values[spread >= 0.05] < 1.25)), values
    assert values.max() / values.min() < 100  # from 1,000


def test_a_filter_step_is_orthogonal_and_starts_from_the_filters_at_unit_norm_per_channel() -> None:
    rng = np.random.default_rng(1)
    kernel = keras.Variable(100 * rng.standard_normal((3, 3, 4, 16)).astype("float32"))
    gradient = rng.standard_normal((3, 3, 4, 16)).astype("float32")
    optimizer = muon()
    optimizer.build([kernel])
    before = kernel.numpy().copy()
    optimizer.apply([gradient], [kernel])

    rescaled = before * (np.sqrt(16) / np.linalg.norm(before))
    step = (rescaled - kernel.numpy()).reshape(-1, 16)
    # The step's share of the filters is the filter rate (the schedule is at its peak here).
    singular = np.linalg.svd(step / 0.2, compute_uv=False)
    assert singular.min() > 0.5 and singular.max() < 1.25, singular
    assert np.linalg.norm(kernel.numpy()) == pytest.approx(4.0, rel=0.5)  # not 100x that
    # It descends: the step leans along the gradient.
    assert np.sum(step * gradient.reshape(-1, 16)) > 0


def test_other_weights_take_the_steps_of_keras_nesterov_sgd_with_weight_decay() -> None:
    rng = np.random.default_rng(2)
    start = rng.standard_normal((8, 10)).astype("float32")
    gradients = [rng.standard_normal((8, 10)).astype("float32") for _ in range(3)]
    ours, theirs = keras.Variable(start), keras.Variable(start)
    sgd = keras.optimizers.SGD(0.5, momentum=0.85, nesterov=True, weight_decay=0.01)
    mine = muon()
    for gradient in gradients:
        mine.apply([gradient], [ours])
        sgd.apply([gradient], [theirs])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture
def settings_with_data(data_dir: Path, tiny_cifar10: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tiny_cifar10))
    get_settings.cache_clear()
    return get_settings()


def test_a_muon_run_killed_after_a_checkpoint_resumes_to_the_same_epochs_and_model(
    settings_with_data, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filters' momentum lives in the checkpoint's optimizer, so the resumed run's epochs
    and weights equal the uninterrupted run's bit for bit."""

    def start() -> int:
        spec = parse_spec(spec_data("fast_cnn", epochs=2, **TINY_MUON))
        experiment = crud.create_experiment(session=session, spec=spec)
        session.commit()
        return experiment.id

    def run(experiment_id: int) -> None:
        lease = claim(session, experiment_id)
        session.commit()
        spec = parse_spec(crud.get_experiment(session=session, experiment_id=experiment_id).spec)
        runner.run_experiment(lease=lease, spec=spec, settings=settings_with_data)

    whole, interrupted = start(), start()
    run(whole)
    with killed_after_checkpoint(monkeypatch, epochs_done=1):
        run(interrupted)
    assert crud.requeue(
        session=session, experiment_id=interrupted, from_status=Status.running, attempt=1
    )
    run(interrupted)

    session.expire_all()
    fields = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    epochs = [
        [
            tuple(getattr(row, f) for f in fields)
            for row in crud.list_epochs(session=session, experiment_id=i)
        ]  # fmt: skip
        for i in (whole, interrupted)
    ]
    assert [row[0] for row in epochs[0]] == [1, 2]
    assert epochs[1] == epochs[0]
    models = [
        keras.models.load_model(settings_with_data.model_path(i), safe_mode=True)
        for i in (whole, interrupted)
    ]
    assert isinstance(models[0].optimizer, Muon)
    for mine, theirs in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
