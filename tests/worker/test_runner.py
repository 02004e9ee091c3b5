"""The worker run, in-process on tiny data: epochs streamed, evaluation stored, cancel honoured."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import keras
import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Status
from app.core.schemas import parse_spec
from app.services import comparison
from app.services.comparison import CaveatKind
from tests.support.factories import claim, make_experiment, spec_data
from tests.support.interruptions import killed_after_checkpoint
from worker import data, runner
from worker.evaluation import evaluate_predictions, fingerprint_test_set

TINY = {"conv_blocks": 1, "filters": 8, "dense_units": 16, "batch_size": 32}


@pytest.fixture
def settings_with_data(data_dir: Path, tiny_cifar10: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tiny_cifar10))
    get_settings.cache_clear()
    return get_settings()


def claimed(session: Session, experiment_id: int) -> crud.Lease:
    """Claimed and committed, as the task does before it runs the experiment."""
    lease = claim(session, experiment_id)
    session.commit()
    return lease


def test_run_streams_epochs_and_stores_evaluation_and_model(
    settings_with_data, session: Session
) -> None:
    experiment = make_experiment(session, epochs=2, train_size=300, test_size=100, **TINY)
    outcome = runner.run_experiment(
        lease=claimed(session, experiment.id),
        spec=parse_spec(experiment.spec),
        settings=settings_with_data,
    )
    assert not outcome.cancelled
    session.expire_all()
    rows = crud.list_epochs(session=session, experiment_id=experiment.id)
    assert [row.epoch for row in rows] == [1, 2]
    for row in rows:
        assert None not in (row.loss, row.accuracy, row.val_loss, row.val_accuracy)
        assert row.learning_rate == pytest.approx(1e-3)
        assert row.seconds > 0 and row.images_per_second > 0
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert stored.status == Status.succeeded
    assert stored.parameters and stored.parameters > 0
    evaluation = stored.evaluation
    assert sum(map(sum, evaluation.confusion_matrix)) == 100 == evaluation.test_size
    assert [evaluation.report[name]["support"] for name in evaluation.classes] == [10.0] * 10
    model = keras.models.load_model(settings_with_data.model_path(experiment.id))
    assert model.count_params() == stored.parameters
    assert len(evaluation.predictions) == len(evaluation.labels) == 100
    assert sorted(evaluation.labels) == sorted(list(range(10)) * 10)
    correct = sum(p == t for p, t in zip(evaluation.predictions, evaluation.labels, strict=True))
    assert correct / 100 == pytest.approx(evaluation.accuracy)
    assert all(0.1 <= c <= 1.0 for c in evaluation.confidences)
    images = np.load(settings_with_data.test_images_path(evaluation.test_set_fingerprint))
    assert images.shape == (100, 32, 32, 3) and images.dtype == np.uint8


def test_split_and_subsets_are_stratified_and_disjoint(settings_with_data) -> None:
    from worker.data import load_cifar10

    dataset = load_cifar10(
        source=settings_with_data.cifar10_path, cache_dir=settings_with_data.dataset_cache_dir
    )
    spec = parse_spec(spec_data(train_size=300, test_size=100, validation_split=0.2))
    training, test = data.prepare_data(spec, dataset)
    assert (len(training.y_train), len(training.y_val), len(test.y_test)) == (240, 60, 100)
    assert np.bincount(training.y_val, minlength=10).tolist() == [6] * 10
    assert np.bincount(test.y_test, minlength=10).tolist() == [10] * 10


@pytest.mark.parametrize("test_size", [100, None])
def test_every_seed_is_scored_on_the_same_test_images(settings_with_data, test_size) -> None:
    """The seed picks the training images, not the test images, so runs of any two seeds
    can be compared image by image. Seed 0 keeps the test images it always had."""
    from worker.data import load_cifar10, stratified_indices

    dataset = load_cifar10(
        source=settings_with_data.cifar10_path, cache_dir=settings_with_data.dataset_cache_dir
    )
    prepared = {
        seed: data.prepare_data(
            parse_spec(spec_data(train_size=300, test_size=test_size, seed=seed)), dataset
        )
        for seed in (0, 7)
    }
    (train_0, test_0), (train_7, test_7) = prepared[0], prepared[7]
    assert fingerprint_test_set(test_0.x_test, test_0.y_test) == fingerprint_test_set(
        test_7.x_test, test_7.y_test
    )
    assert not np.array_equal(train_0.y_train, train_7.y_train)
    seed_0_before = stratified_indices(dataset.y_test, test_size, seed=0)
    np.testing.assert_array_equal(test_0.x_test, dataset.x_test[seed_0_before])


def test_runs_of_different_seeds_are_paired_in_a_comparison(
    settings_with_data, session: Session
) -> None:
    ids = []
    for seed in (0, 3):
        experiment = make_experiment(
            session, epochs=1, train_size=200, test_size=100, seed=seed, **TINY
        )
        lease = claimed(session, experiment.id)
        runner.run_experiment(
            lease=lease, spec=parse_spec(experiment.spec), settings=settings_with_data
        )
        ids.append(experiment.id)
    session.expire_all()
    experiments = comparison.load_for_comparison(session, ids)
    [pairing] = comparison.significance(experiments, experiments[0])
    assert pairing.untested is None and pairing.mcnemar is not None
    kinds = [caveat.kind for caveat in comparison.caveats(experiments)]
    assert CaveatKind.seeds in kinds and CaveatKind.test_images not in kinds


def test_cancel_request_stops_training_and_keeps_nothing_half_done(
    settings_with_data, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = make_experiment(session, epochs=3, train_size=300, test_size=100, **TINY)
    lease = claimed(session, experiment.id)
    crud.request_cancel(session=session, experiment=experiment)
    session.commit()
    monkeypatch.setattr("worker.callbacks.PROGRESS_INTERVAL_SECONDS", 0.0)
    outcome = runner.run_experiment(
        lease=lease, spec=parse_spec(experiment.spec), settings=settings_with_data
    )
    assert outcome.cancelled
    assert crud.list_epochs(session=session, experiment_id=experiment.id) == []
    assert not settings_with_data.model_path(experiment.id).exists()


def test_evaluation_matches_sklearn_table() -> None:
    y_true = np.array([0, 0, 1, 1, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 0]]
    result = evaluate_predictions(y_true, probabilities, ("a", "b", "c"))
    assert result.confusion_matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert result.report["accuracy"] == pytest.approx(0.6)
    assert result.report["b"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1-score": 0.8, "support": 2.0}
    )
    assert result.report["c"]["f1-score"] == 0.0
    assert set(result.report) == {"a", "b", "c", "accuracy", "macro avg", "weighted avg"}


def test_resume_from_checkpoint_continues_the_epoch_count(
    settings_with_data, session: Session
) -> None:
    from worker.builders import build_model
    from worker.checkpoints import Checkpoint, ResumePoint

    experiment = make_experiment(session, epochs=3, train_size=200, test_size=100, **TINY)
    spec = parse_spec(experiment.spec)
    interrupted = build_model(spec, settings_with_data)
    interrupted.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    checkpoint = Checkpoint(settings_with_data.experiment_dir(experiment.id))
    checkpoint.save(interrupted, ResumePoint(epochs_done=2, phase="train"), nullcontext)
    lease = claimed(session, experiment.id)
    runner.run_experiment(lease=lease, spec=spec, settings=settings_with_data)
    session.expire_all()
    rows = crud.list_epochs(session=session, experiment_id=experiment.id)
    assert [row.epoch for row in rows] == [3]
    assert crud.get_experiment(session=session, experiment_id=experiment.id).evaluation
    assert checkpoint.load() is None  # a finished run leaves no resume point behind


def offline_imagenet_file(weights_dir: Path) -> None:
    """A stand-in for Keras's MobileNetV2 ImageNet file, in the same legacy .h5 layout, so
    the CIFARLAB_WEIGHTS_DIR path is exercised offline (the real file is a download)."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    weights_dir.mkdir()
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    with h5py.File(weights_dir / name, "w") as file:
        save_weights_to_hdf5_group(file, base)


def test_transfer_runs_two_phases_with_continuing_epochs(
    settings_with_data, session: Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    offline_imagenet_file(tmp_path / "weights")
    monkeypatch.setenv("CIFARLAB_WEIGHTS_DIR", str(tmp_path / "weights"))
    get_settings.cache_clear()
    settings_with_data = get_settings()
    experiment = make_experiment(
        session,
        model="mobilenet_v2",
        epochs=1,
        fine_tune=True,
        fine_tune_epochs=1,
        fine_tune_layers=10,
        weights="imagenet",
        train_size=100,
        test_size=50,
        batch_size=50,
        image_size=32,
    )
    recorded: list[tuple[str, int]] = []
    original = runner.record_model

    def spy(lease: crud.Lease, model: keras.Model, phase: str) -> None:
        original(lease, model, phase)
        session.expire_all()
        stored = crud.get_experiment(session=session, experiment_id=lease.experiment_id)
        recorded.append((phase, stored.trainable_parameters))

    monkeypatch.setattr(runner, "record_model", spy)
    runner.run_experiment(
        lease=claimed(session, experiment.id), spec=parse_spec(experiment.spec),
        settings=settings_with_data,
    )  # fmt: skip
    session.expire_all()
    rows = crud.list_epochs(session=session, experiment_id=experiment.id)
    assert [(row.epoch, row.phase) for row in rows] == [(1, "train"), (2, "fine_tune")]
    (first, frozen), (second, unfrozen) = recorded
    assert (first, second) == ("train", "fine_tune")
    assert frozen < unfrozen
    assert crud.get_experiment(session=session, experiment_id=experiment.id).status == "succeeded"


def test_warm_start_continues_from_another_experiments_model(
    settings_with_data, session: Session
) -> None:
    first = make_experiment(session, epochs=1, train_size=200, test_size=100, **TINY)
    runner.run_experiment(
        lease=claimed(session, first.id), spec=parse_spec(first.spec), settings=settings_with_data
    )
    trained = keras.models.load_model(settings_with_data.model_path(first.id))
    follow_up = parse_spec(
        spec_data(epochs=1, train_size=200, test_size=100, warm_start_experiment_id=first.id,
                  **TINY)
    )  # fmt: skip
    started = runner.initial_model(follow_up, settings_with_data)
    for mine, theirs in zip(started.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    wrong_size = parse_spec(spec_data(image_size=48, warm_start_experiment_id=first.id, **TINY))
    with pytest.raises(ValueError, match="image_size"):
        runner.initial_model(wrong_size, settings_with_data)
    missing = parse_spec(spec_data(warm_start_experiment_id=999, **TINY))
    with pytest.raises(ValueError, match="no trained model"):
        runner.initial_model(missing, settings_with_data)


def test_a_resumed_run_repeats_an_uninterrupted_one_exactly(
    settings_with_data, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after epoch 2 and resumed, a seeded run's epochs equal an uninterrupted run's
    bit for bit: Adam's moments, the plateau's learning-rate cuts, EarlyStopping's counters,
    Dropout's masks and the batch order all come back from the checkpoint."""
    # A step size high enough that validation loss stalls: the plateau cuts within 4 epochs.
    hyperparameters = dict(
        epochs=4, train_size=200, test_size=100, learning_rate=0.1, reduce_lr_patience=0,
        early_stopping_patience=3, **TINY,
    )  # fmt: skip
    whole = make_experiment(session, **hyperparameters)
    runner.run_experiment(
        lease=claimed(session, whole.id), spec=parse_spec(whole.spec), settings=settings_with_data
    )
    interrupted = make_experiment(session, **hyperparameters)
    first = claimed(session, interrupted.id)
    with killed_after_checkpoint(monkeypatch, epochs_done=2):
        runner.run_experiment(
            lease=first, spec=parse_spec(interrupted.spec), settings=settings_with_data
        )
    assert crud.requeue(
        session=session, experiment_id=interrupted.id, from_status=Status.running, attempt=1
    )
    second = claimed(session, interrupted.id)
    runner.run_experiment(
        lease=second, spec=parse_spec(interrupted.spec), settings=settings_with_data
    )

    session.expire_all()
    fields = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    expected = [tuple(getattr(row, f) for f in fields) for row in crud.list_epochs(
        session=session, experiment_id=whole.id)]  # fmt: skip
    resumed = [tuple(getattr(row, f) for f in fields) for row in crud.list_epochs(
        session=session, experiment_id=interrupted.id)]  # fmt: skip
    assert [row[0] for row in expected] == [1, 2, 3, 4]
    assert len({row[-1] for row in expected}) > 1  # the plateau did cut the learning rate
    assert resumed == expected, (expected, resumed)
    evaluations = [
        crud.get_experiment(session=session, experiment_id=i).evaluation
        for i in (whole.id, interrupted.id)
    ]
    assert evaluations[0].predictions.tolist() == evaluations[1].predictions.tolist()
    models = [keras.models.load_model(settings_with_data.model_path(i))
              for i in (whole.id, interrupted.id)]  # fmt: skip
    for mine, theirs in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_run_that_had_stopped_early_resumes_to_its_evaluation(
    settings_with_data, session: Session
) -> None:
    """Killed after EarlyStopping ended the phase but before the evaluation: the resumed run
    trains no further epochs (an uninterrupted one would not have)."""
    from worker.builders import build_model
    from worker.checkpoints import Checkpoint, ResumePoint

    experiment = make_experiment(session, epochs=4, train_size=200, test_size=100, **TINY)
    spec = parse_spec(experiment.spec)
    model = build_model(spec, settings_with_data)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    stopped = {"wait": 3, "stopped_epoch": 1, "best": 2.0, "best_epoch": 0}
    point = ResumePoint(epochs_done=2, phase="train", schedule={"early_stopping": stopped})
    Checkpoint(settings_with_data.experiment_dir(experiment.id)).save(model, point, nullcontext)
    runner.run_experiment(
        lease=claimed(session, experiment.id), spec=spec, settings=settings_with_data
    )
    session.expire_all()
    assert crud.list_epochs(session=session, experiment_id=experiment.id) == []
    assert crud.get_experiment(session=session, experiment_id=experiment.id).status == "succeeded"
