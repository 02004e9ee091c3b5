"""Time before launch (#15): estimates from the epochs past runs recorded, per worker kind."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.costs import MACS_PER_32PX_IMAGE, TRAINING_PASSES, macs_per_32px_image
from app.core.models import Experiment
from app.core.schemas import parse_spec
from app.core.zoo import MODELS
from app.services.estimates import estimate, weighted_median
from tests.support.factories import online_worker, spec_data, timed_run

CPU = "CPU (2 cores)"
GPU = "GPU: NVIDIA Test"

# The first epoch builds the graph: slow here on purpose, it must not count.
WARM_UP_THEN_100 = [5.0, 100.0, 100.0, 100.0]


def spec(model: str = "custom_cnn", **hyperparameters: Any) -> Any:
    return parse_spec(spec_data(model, **hyperparameters))


def test_same_model_scales_by_pixels_and_training_images(session: Session) -> None:
    online_worker(session, "w1", CPU)
    timed_run(session, device=CPU, images_per_second=WARM_UP_THEN_100, image_size=32)
    result = estimate(session, spec(image_size=64, train_size=1000, epochs=4))
    [cpu] = result.devices
    # 4x the pixels: 25 images/s; 800 training images; 1.25x for validation and callbacks.
    assert cpu.epoch_seconds == pytest.approx(800 / 25 * 1.25)
    assert cpu.total_seconds == pytest.approx(4 * 800 / 25 * 1.25)
    assert result.train_images == 800 and result.planned_epochs == 4
    assert cpu.basis == f"from 1 past run of custom_cnn on {CPU}"
    assert cpu.workers == 1 and not cpu.has_gpu and result.warning is None


def test_recent_runs_of_the_model_win_over_other_models_and_devices(session: Session) -> None:
    online_worker(session, "w1", CPU)
    timed_run(session, device=CPU, images_per_second=[50.0, 50.0], model="residual_cnn")
    for speed in (90.0, 100.0, 110.0):
        timed_run(session, device=CPU, images_per_second=[speed, speed])
    timed_run(session, device=GPU, images_per_second=[9000.0, 9000.0])  # another kind
    [cpu] = estimate(session, spec(train_size=1000)).devices
    assert cpu.epoch_seconds == pytest.approx(800 / 100 * 1.25)  # the median run
    assert cpu.basis == f"from 3 past runs of custom_cnn on {CPU}"


def test_other_models_runs_scale_by_the_cost_table(session: Session) -> None:
    online_worker(session, "w1", CPU)
    timed_run(session, device=CPU, images_per_second=WARM_UP_THEN_100, model="residual_cnn")
    [cpu] = estimate(session, spec("custom_cnn", train_size=1000)).devices
    residual, custom = spec("residual_cnn"), spec("custom_cnn")
    speed = (
        100
        * macs_per_32px_image("residual_cnn", residual.hyperparameters)
        / macs_per_32px_image("custom_cnn", custom.hyperparameters)
    )
    assert cpu.epoch_seconds == pytest.approx(800 / speed * 1.25)
    assert cpu.basis == f"scaled by cost per image from 1 past run of residual_cnn on {CPU}"
    assert cpu.summary.endswith("(scaled by cost per image from 1 past run of residual_cnn)")


def test_fine_tuning_costs_a_full_backward_pass_over_the_frozen_phase(session: Session) -> None:
    online_worker(session, "w1", GPU)
    timed_run(
        session, device=GPU, images_per_second=[400.0, 400.0], model="mobilenet_v2",
        image_size=128, epochs=2,
    )  # fmt: skip
    result = estimate(
        session,
        spec("mobilenet_v2", image_size=128, epochs=2, fine_tune=True, fine_tune_epochs=3),
    )
    frozen, fine_tune = result.devices[0].phases
    assert (frozen.phase, frozen.epochs, fine_tune.phase, fine_tune.epochs) == (
        "train", 2, "fine_tune", 3,
    )  # fmt: skip
    assert frozen.epoch_seconds == pytest.approx(160 / 400 * 1.25)
    assert fine_tune.epoch_seconds == pytest.approx(frozen.epoch_seconds * TRAINING_PASSES)
    assert result.planned_epochs == 5


def test_a_fast_run_on_crops_is_priced_at_the_crops_pixels(session: Session) -> None:
    online_worker(session, "w1", CPU)
    # A past run whose two crop epochs (24 px) trained twice as fast as its full-size ones.
    timed_run(
        session, device=CPU, images_per_second=[180.0, 180.0, 100.0, 100.0], model="fast_cnn",
        epochs=4, crop_epochs=2, train_size=1000,
    )  # fmt: skip
    # Both sizes agree on the worker's speed: (32/24)**2 = 1.78x the pixels, 1.8x the time.
    [cpu] = estimate(
        session, spec("fast_cnn", epochs=10, crop_epochs=6, crop_size=16, train_size=1000)
    ).devices
    crops, full = cpu.phases
    full_size = 950 / 100 * 1.25  # 5% validation
    assert (crops.phase, crops.epochs, full.phase, full.epochs) == ("crops", 6, "train", 4)
    assert full.epoch_seconds == pytest.approx(full_size, rel=0.02)
    assert crops.epoch_seconds == pytest.approx(full_size / 4, rel=0.02)  # a quarter the pixels
    assert cpu.total_seconds == pytest.approx(6 * crops.epoch_seconds + 4 * full.epoch_seconds)
    assert cpu.summary.startswith(f"{CPU}: about 3 s per epoch on crops, then 12 s per epoch,")


def test_no_runs_on_a_worker_kind_says_how_to_get_an_estimate(session: Session) -> None:
    online_worker(session, "w1", GPU)
    timed_run(session, device=CPU, images_per_second=[100.0])  # no worker of this kind is online
    result = estimate(session, spec())
    [gpu] = result.devices
    assert gpu.device == GPU and gpu.has_gpu
    assert gpu.epoch_seconds is None and gpu.total_seconds is None
    assert "No estimate yet" in gpu.basis and "Quick: custom CNN" in gpu.basis


def test_no_worker_online_gives_no_figures(session: Session) -> None:
    timed_run(session, device=CPU, images_per_second=[100.0])
    result = estimate(session, spec())
    assert result.devices == [] and "No worker is online" in result.note


def _slow_cpu_run(session: Session) -> Experiment:
    return timed_run(session, device=CPU, images_per_second=[10.0, 10.0])


def test_hours_on_cpu_only_workers_are_warned_about(session: Session) -> None:
    online_worker(session, "w1", CPU)
    _slow_cpu_run(session)
    # All 50,000 images, 40,000 after validation: 5,000 s an epoch, 50 epochs ~ 69 h.
    result = estimate(session, spec(train_size=None, epochs=50))
    assert result.warning is not None
    assert result.warning.startswith("About 69 h on the CPU worker: consider a quick preset")
    short = estimate(session, spec(train_size=200, epochs=2))
    assert short.warning is None


def test_no_cpu_warning_when_a_gpu_worker_is_online(session: Session) -> None:
    online_worker(session, "w1", CPU)
    online_worker(session, "w2", GPU)
    _slow_cpu_run(session)
    result = estimate(session, spec(train_size=None, epochs=50))
    assert result.warning is None
    figures = {d.device: d.total_seconds is not None for d in result.devices}
    assert figures == {CPU: True, GPU: False}


def test_sweep_runs_as_many_trials_at_once_as_workers_and_max_parallel_allow(
    session: Session,
) -> None:
    online_worker(session, "w1", CPU)
    online_worker(session, "w2", CPU)
    _slow_cpu_run(session)
    one = estimate(session, spec()).devices[0]
    [two_workers] = estimate(session, spec(), trials=6).devices
    [capped] = estimate(session, spec(), trials=6, max_parallel=1).devices
    assert one.total_seconds is not None and one.sweep_seconds is None
    assert two_workers.workers == 2
    assert two_workers.sweep_seconds == pytest.approx(3 * one.total_seconds)
    assert capped.sweep_seconds == pytest.approx(6 * one.total_seconds)
    assert "for the 6 trials, 2 at a time" in two_workers.summary


def test_every_model_has_a_cost() -> None:
    assert set(MACS_PER_32PX_IMAGE) == set(MODELS)


# --- the API and the form ----------------------------------------------------------------------


@pytest.mark.both_databases
def test_api_estimates_a_spec_without_launching_it(
    client: TestClient, session: Session, backend: str
) -> None:
    online_worker(session, "w1", CPU)
    timed_run(session, device=CPU, images_per_second=WARM_UP_THEN_100)
    response = client.post(
        "/api/experiments/estimate?trials=2", json=spec_data(train_size=1000, epochs=4)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    [cpu] = body["devices"]
    assert cpu["epoch_seconds"] == pytest.approx(800 / 100 * 1.25)
    assert cpu["total_seconds"] == pytest.approx(4 * 800 / 100 * 1.25)
    assert cpu["sweep_seconds"] == pytest.approx(2 * cpu["total_seconds"])
    assert body["trials"] == 2 and body["warning"] is None
    assert client.get("/api/experiments").json()["total"] == 1  # only the past run


@pytest.mark.both_databases
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (spec_data(epochs=0), "hyperparameters.epochs"),
        (spec_data("no_such_model"), "model"),
    ],
)
def test_api_refuses_a_bad_spec_naming_the_field(
    client: TestClient, backend: str, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/experiments/estimate", json=body)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert client.get("/api/experiments").json()["total"] == 0


def test_api_estimates_a_spec_without_a_name_as_launch_takes_it(client: TestClient) -> None:
    body = spec_data(epochs=4)
    del body["name"]
    response = client.post("/api/experiments/estimate", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["trials"] == 1


def test_openapi_documents_the_estimate(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/experiments/estimate"]["post"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/TimeEstimatePublic"}


def test_launch_form_has_a_place_for_the_estimate(client: TestClient) -> None:
    html = client.get("/experiments/new").text
    assert 'id="launch-estimate"' in html
    assert 'data-estimate-url="/api/experiments/estimate"' in html


def test_a_from_scratch_model_is_costed_by_its_own_widths(session: Session) -> None:
    """airbench94's middle blocks are twice the narrow network's width: its epochs take about
    2.2x as long on the same worker, which the model name alone would not tell."""
    online_worker(session, "w1", CPU)
    narrow = {"width_2": 128, "width_3": 128, "train_size": 1000}
    timed_run(session, device=CPU, images_per_second=[100.0, 100.0], model="fast_cnn", **narrow)
    [as_run] = estimate(session, spec("fast_cnn", **narrow)).devices
    [wide] = estimate(session, spec("fast_cnn", train_size=1000)).devices
    assert as_run.epoch_seconds == pytest.approx(950 / 100 * 1.25)
    assert wide.epoch_seconds / as_run.epoch_seconds == pytest.approx(118.15 / 54.24, rel=1e-3)
    assert macs_per_32px_image("custom_cnn", spec().hyperparameters) == pytest.approx(
        MACS_PER_32PX_IMAGE["custom_cnn"], rel=1e-3
    )


def test_a_tiny_run_does_not_drag_a_full_size_estimate(session: Session) -> None:
    """Three tiny runs spent their epochs on fixed costs (30 images/s, 4x overhead): six
    timed epochs against the full run's three. Weighted by images, the full run decides."""
    online_worker(session, "w1", CPU)
    for _ in range(3):
        timed_run(session, device=CPU, images_per_second=[30.0] * 3, overhead=4.0)
    timed_run(session, device=CPU, images_per_second=WARM_UP_THEN_100, train_size=50_000)
    [cpu] = estimate(session, spec(train_size=50_000)).devices
    assert cpu.epoch_seconds == pytest.approx(40_000 / 100 * 1.25)
    assert "likely too long" not in cpu.basis


def test_an_estimate_from_only_small_runs_says_it_is_likely_too_long(session: Session) -> None:
    online_worker(session, "w1", CPU)
    timed_run(session, device=CPU, images_per_second=WARM_UP_THEN_100)  # 160 training images
    [cpu] = estimate(session, spec(train_size=50_000)).devices
    assert "at most 160 training images, so likely too long" in cpu.basis
    assert "likely too long" in cpu.summary


def test_weighted_median_counts_each_value_by_its_weight() -> None:
    assert weighted_median([1.0, 2.0, 3.0], [1, 1, 1]) == 2.0
    assert weighted_median([30.0, 30.0, 100.0], [160, 160, 40_000]) == 100.0
    assert weighted_median([5.0, 1.0], [1, 1]) == 1.0  # the lower on an exact tie
