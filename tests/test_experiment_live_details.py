"""The experiment page's live details: the phase instead of "Epoch 0/3", the estimate of the
time left, the heartbeat's CPU and memory readings, the tail of the run's own log, the
"Copy as CLI command" button, and the curves above the run's facts."""

from __future__ import annotations

import shlex

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.run_log import run_log_path
from app.core.telemetry import GpuFigures, Telemetry
from app.web.routes import events
from tests.support.factories import claim, finished_experiment, make_experiment
from tests.support.pages import XSS, by_id, elements

READINGS = Telemetry(
    cpu_percent=150.0, cpu_count=2, process_rss_bytes=2**30, memory_used_bytes=4 * 2**30,
    memory_total_bytes=8 * 2**30,
)  # fmt: skip


def running_in_epoch_two(session: Session) -> int:
    """Epoch 1 of 3 done in 10 s (100 images/s), epoch 2 half done, a heartbeat's readings."""
    experiment = make_experiment(session, epochs=3, test_size=100)
    lease = claim(session, experiment.id)
    crud.set_run_phase(session=session, lease=lease, phase="train")
    values = {"loss": 2.0, "accuracy": 0.3, "seconds": 10.0, "images_per_second": 100.0}
    crud.record_epoch(session=session, lease=lease, epoch=1, values=values)
    crud.record_progress(session=session, lease=lease, epoch=2, epoch_progress=0.5)
    crud.record_telemetry(
        session=session, experiment_id=experiment.id, telemetry=READINGS.as_json()
    )
    session.commit()
    return experiment.id


def test_a_running_page_shows_its_phase_estimate_and_readings(
    client: TestClient, session: Session
) -> None:
    experiment_id = running_in_epoch_two(session)
    html = client.get(f"/experiments/{experiment_id}").text
    assert by_id(html, "phase").text == "epoch 2/3"
    assert by_id(html, "progress-detail").text == "50% of this epoch · 50% overall"
    # 10 s x 1.5 epochs left + 100 test images at 100 images/s
    assert by_id(html, "remaining").text == "· about 15 s left"
    assert "hidden" not in by_id(html, "resources").attrs
    assert "CPU 150% of 2 cores · process 1.0 GiB · machine 4.0 GiB of 8.0 GiB" in html


def test_the_live_stream_carries_the_phase_estimate_and_readings(session: Session) -> None:
    experiment_id = running_in_epoch_two(session)
    state = events.StreamState(last_epoch=0)
    sent = events.poll(experiment_id, state)
    assert sent is not None
    opening = next(e for e in sent if e.startswith("event: experiment"))
    outlook = events.ExperimentEvent.model_validate_json(opening.split("data: ", 1)[1]).outlook
    assert (outlook.phase, outlook.remaining) == ("epoch 2/3", "about 15 s left")
    assert outlook.resources == READINGS.describe()
    assert events.poll(experiment_id, state) == []  # nothing moved: nothing sent
    lease = crud.Lease(experiment_id=experiment_id, attempt=1)
    crud.set_run_phase(session=session, lease=lease, phase="evaluating")
    session.commit()
    moved = events.poll(experiment_id, state)
    assert moved is not None and len(moved) == 1 and moved[0].startswith("event: progress")
    progress = events.ProgressEvent.model_validate_json(moved[0].split("data: ", 1)[1])
    assert (progress.phase, progress.remaining) == ("evaluating", "about 5 s left")


def test_a_queued_page_says_queued_without_an_estimate(
    client: TestClient, session: Session
) -> None:
    experiment = make_experiment(session)
    html = client.get(f"/experiments/{experiment.id}").text
    assert by_id(html, "phase").text == "queued"
    assert "hidden" in by_id(html, "remaining").attrs
    assert "hidden" in by_id(html, "resources").attrs


def test_the_curves_come_before_the_run_facts(client: TestClient, session: Session) -> None:
    experiment = finished_experiment(session)
    html = client.get(f"/experiments/{experiment.id}").text
    assert html.index('id="accuracy-chart"') < html.index('id="facts"')
    assert html.index('id="progress"') < html.index('id="accuracy-chart"')


def test_the_copy_button_holds_the_launch_command(client: TestClient, session: Session) -> None:
    experiment = finished_experiment(session, name=f"quote's {XSS}")
    html = client.get(f"/experiments/{experiment.id}").text
    command = by_id(html, "copy-cli").attrs["data-command"]
    words = shlex.split(command)
    assert words[:4] == ["cifarlab", "launch", "--model", "custom_cnn"]
    assert words[words.index("--name") + 1] == f"quote's {XSS}"
    assert XSS not in html  # escaped in the attribute and the shown command


def test_the_log_tail_is_served_as_text_and_drawn_escaped(
    client: TestClient, session: Session
) -> None:
    experiment = finished_experiment(session)
    assert client.get(f"/experiments/{experiment.id}/log").text == ""
    path = run_log_path(get_settings(), experiment.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"line {i}\n" for i in range(150)) + f"{XSS}\n")
    response = client.get(f"/experiments/{experiment.id}/log")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert len(lines) == 100 and lines[0] == "line 51" and lines[-1] == XSS
    html = client.get(f"/experiments/{experiment.id}").text
    assert "line 149" in by_id(html, "run-log").text and XSS not in html
    assert client.get("/experiments/999999/log").status_code == 404


def test_the_workers_page_and_api_show_the_running_runs_readings(
    client: TestClient, session: Session
) -> None:
    crud.see_worker(session=session, name="celery@gpu-1", hostname="gpu-1", pid=41, device="GPU")
    experiment = make_experiment(session)
    crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="gpu-1", device="GPU",
        worker_name="celery@gpu-1",
    )  # fmt: skip
    gpu = GpuFigures(0, "NVIDIA H200", 87.0, 30 * 2**30, 140 * 2**30)
    readings = Telemetry(**{**READINGS.as_json(), "gpus": (gpu,)})
    crud.record_telemetry(
        session=session, experiment_id=experiment.id, telemetry=readings.as_json()
    )
    session.commit()
    html = client.get("/workers/live").text
    shown = [e.text for e in elements(html) if "data-resources" in e.attrs]
    assert shown == readings.describe()
    assert shown[1] == "GPU 0 (NVIDIA H200) 87% · 30.0 GiB of 140.0 GiB"
    [worker] = client.get("/api/workers").json()
    assert worker["resources"] == shown


def test_the_api_gives_a_phase_only_while_the_run_is_running(
    client: TestClient, session: Session
) -> None:
    running = running_in_epoch_two(session)
    assert client.get(f"/api/experiments/{running}").json()["run_phase"] == "train"
    finished = finished_experiment(session)
    finished.run_phase = "evaluating"  # the last phase the worker reported, as a row keeps it
    session.commit()
    assert client.get(f"/api/experiments/{finished.id}").json()["run_phase"] is None
