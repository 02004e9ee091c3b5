"""The sweep pages through the web app on a real database and a real Redis: the page with its
counts, parallel coordinates and trial table, the JSON it polls, its Cancel and Retry forms,
the list, and the launch form turning varied settings into a sweep (no browser, no worker)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status, Sweep
from app.core.sweeps import expand, parse_sweep
from app.services import accounts, sweeps
from app.services.sweeps import TrialView
from app.web import sweep_charts
from tests.support.clients import PASSWORD, make_client, signed_in
from tests.support.factories import claim
from tests.support.pages import (
    by_id,
    described_input,
    elements,
    error_summary,
    field_errors,
    form,
    inputs,
    post_form,
)

pytestmark = pytest.mark.usefixtures("broker")


def sweep_data(**changes: Any) -> dict[str, Any]:
    return {
        "name": "lr sweep",
        "model": "custom_cnn",
        "hyperparameters": {"epochs": 2, "train_size": 200, "test_size": 100},
        "grid": {"learning_rate": [0.001, 0.01, 0.1]},
        "seeds": [0, 1],
        **changes,
    }


def train(
    session: Session, experiment_id: int, accuracies: list[float], end: Status | None
) -> None:
    """Write epochs as a worker would, and end the trial with ``end`` (None: still running)."""
    lease = claim(session, experiment_id)
    for epoch, accuracy in enumerate(accuracies, start=1):
        crud.record_epoch(
            session=session, lease=lease, epoch=epoch,
            values={"val_accuracy": accuracy, "accuracy": accuracy, "loss": 1.0, "val_loss": 1.0},
        )  # fmt: skip
    session.commit()
    if end is not None:
        crud.end_attempt(
            session=session, lease=lease, status=end, error="boom" if end is Status.failed else None
        )
        session.commit()


def page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="sweep-data">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def launch(session: Session, **changes: Any) -> list[int]:
    """Six trials (learning rates 0.001, 0.01, 0.1 x seeds 0, 1): one succeeded, one pruned,
    one failed, one running, two queued."""
    launched = sweeps.launch_sweep(session, sweep_data(**changes))
    ids = launched.experiment_ids
    train(session, ids[0], [0.3, 0.5], Status.succeeded)
    train(session, ids[1], [0.2], Status.pruned)
    train(session, ids[2], [0.1], Status.failed)
    train(session, ids[3], [0.4], None)
    return ids


def rows(html: str) -> list[dict[str, str]]:
    """The trial table's rows: each cell's text by its column header."""
    table = html[html.index('id="trials"') : html.index("</table>", html.index('id="trials"'))]
    headers = [
        re.sub(r"<[^>]+>|↕", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", table)
    ]
    found = []
    for row in re.findall(r"<tr data-trial=.*?</tr>", table, re.S):
        texts = [
            " ".join(re.sub(r"<[^>]+>", " ", c).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        found.append(dict(zip(headers, texts, strict=True)))
    return found


def test_the_page_shows_counts_the_best_trial_parallel_coordinates_and_the_table(
    client: TestClient, session: Session
) -> None:
    ids = launch(session)
    sweep_id = session.scalar(select(Sweep.id))
    response = client.get(f"/sweeps/{sweep_id}")
    assert response.status_code == 200
    html = response.text
    counts = {e.attrs["data-count"]: e.text for e in elements(html) if "data-count" in e.attrs}
    assert counts == {"queued": "2", "running": "1", "done": "1", "pruned": "1", "failed": "1"}
    assert by_id(html, "best-link").attrs["href"] == f"/experiments/{ids[0]}"
    assert by_id(html, "eta").text  # in words, known once a trial has finished
    scatter = by_id(html, "scatter-0").attrs  # an aria-label counts only with a role
    assert scatter["role"] == "img" and "against" in scatter["aria-label"]

    data = page_data(html)
    parcoords = data["figures"]["parcoords-chart"]["data"][0]
    assert parcoords["type"] == "parcoords"
    learning_rate, seed, metric = parcoords["dimensions"]
    # Four trials have a metric; the log-scaled axis holds log10 values, labelled in the
    # original units, with ticks for every value of the grid.
    assert learning_rate["label"] == "learning_rate (log)"
    assert learning_rate["values"] == pytest.approx([-3, -3, -2, -2])
    assert learning_rate["ticktext"] == ["0.001", "0.01", "0.1"]
    assert learning_rate["tickvals"] == pytest.approx([-3, -2, -1])
    assert seed["values"] == [0, 1, 0, 1]
    assert metric["label"] == "best val accuracy"
    assert metric["values"] == [0.5, 0.2, 0.1, 0.4]
    scatter = data["figures"]["scatter-0"]
    assert scatter["layout"]["xaxis"]["type"] == "log"
    assert scatter["data"][0]["x"] == [0.001, 0.001, 0.01, 0.01]

    table = rows(html)
    assert [r["Trial"] for r in table] == [f"#{i}" for i in ids]
    assert [r["learning_rate"] for r in table] == ["0.001", "0.001", "0.01", "0.01", "0.1", "0.1"]
    assert [r["Status"].split()[0] for r in table] == [
        "succeeded", "pruned", "failed", "running", "queued", "queued",
    ]  # fmt: skip
    assert table[0]["Epoch"] == "2/2" and table[0]["best val accuracy"] == "0.5000"
    assert table[2]["Status"] == "failed boom"
    # Selection goes to /compare; Cancel and Retry are there for the owner (open access).
    assert by_id(html, "compare-button").attrs.get("disabled") is not None
    assert by_id(html, "compare-groups").attrs.get("hidden") is not None  # one succeeded
    assert "hidden" not in by_id(html, "cancel-form").attrs
    assert "hidden" not in by_id(html, "retry-form").attrs


def test_a_pruned_trial_shows_why_and_seed_groups_link_the_succeeded_trials(
    client: TestClient, session: Session
) -> None:
    launched = sweeps.launch_sweep(session, sweep_data(grid={"learning_rate": [0.001]}))
    first, second = launched.experiment_ids
    train(session, first, [0.5], Status.succeeded)
    train(session, second, [0.4], Status.succeeded)
    experiment = session.get(Experiment, second)
    assert experiment is not None
    experiment.stop_reason = "pruned at epoch 1 because 0.40 is below the median 0.45"
    session.commit()
    html = client.get(f"/sweeps/{launched.sweep.id}").text
    assert rows(html)[1]["Status"].endswith("below the median 0.45")
    groups = by_id(html, "compare-groups")
    assert "hidden" not in groups.attrs
    assert groups.attrs["href"] == f"/compare?ids={first}%2C{second}&group=seed"


@pytest.mark.both_databases
def test_the_live_json_carries_counts_cells_and_figures_and_stops_when_all_finished(
    client: TestClient, session: Session, backend: str
) -> None:
    ids = launch(session)
    sweep_id = session.scalar(select(Sweep.id))
    live = client.get(f"/sweeps/{sweep_id}/live").json()
    assert live["active"] is True
    assert live["counts"] == {"queued": 2, "running": 1, "done": 1, "pruned": 1, "failed": 1}
    assert live["best"]["id"] == ids[0]
    running = next(t for t in live["trials"] if t["id"] == ids[3])
    assert running == {
        "id": ids[3], "status": "running", "epoch": 1, "epochs": 2, "best": 0.4, "test": None,
        "note": "",
    }  # fmt: skip
    assert set(live["figures"]) == {"parcoords-chart", "scatter-0"}
    assert len(json.dumps(live)) < 8000  # no HTML: small enough to poll every 2 s

    sweeps.cancel_sweep(session, session.get(Sweep, sweep_id))  # type: ignore[arg-type]
    live = client.get(f"/sweeps/{sweep_id}/live").json()
    assert live["active"] is False
    assert live["counts"]["failed"] == 4
    assert live["eta"] == "all trials finished"


def test_cancel_and_retry_forms_change_the_trials_and_come_back_to_the_page(
    client: TestClient, session: Session
) -> None:
    launch(session)
    sweep_id = session.scalar(select(Sweep.id))
    response = post_form(client, f"/sweeps/{sweep_id}/cancel", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/sweeps/{sweep_id}"
    session.expire_all()
    statuses = session.scalars(select(Experiment.status).order_by(Experiment.id)).all()
    assert statuses.count(Status.cancelled) == 3  # the running one and the two queued
    assert statuses[0] is Status.succeeded and statuses[1] is Status.pruned

    response = post_form(client, f"/sweeps/{sweep_id}/retry", follow_redirects=False)
    assert response.status_code == 303
    session.expire_all()
    statuses = session.scalars(select(Experiment.status).order_by(Experiment.id)).all()
    assert statuses.count(Status.queued) == 4  # the failed one and the three cancelled
    # Without the session's CSRF token nothing changes.
    assert client.post(f"/sweeps/{sweep_id}/cancel").status_code == 403


def test_only_the_sweep_page_lets_plotly_compile_its_webgl_charts(
    client: TestClient, session: Session
) -> None:
    """Parallel coordinates are WebGL drawn by regl, which needs ``'unsafe-eval'``."""
    launch(session)
    policy = client.get("/sweeps/1").headers["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-eval';" in policy
    for other in ("/sweeps", "/", "/experiments/1"):
        assert "unsafe-eval" not in client.get(other).headers["Content-Security-Policy"]


def test_unknown_sweeps_are_404(client: TestClient) -> None:
    assert client.get("/sweeps/999").status_code == 404
    assert client.get("/sweeps/999/live").status_code == 404
    assert post_form(client, "/sweeps/999/cancel").status_code == 404


def test_the_list_shows_each_sweep_with_its_counts(client: TestClient, session: Session) -> None:
    launch(session)
    html = client.get("/sweeps").text
    row = html[html.index('<tr data-sweep="1">') :]
    row = row[: row.index("</tr>")]
    assert '<a class="row-link" href="/sweeps/1">lr sweep</a>' in row
    assert 'data-count="queued">2<' in row and 'data-count="done">1<' in row
    assert 'href="/sweeps"' in client.get("/").text  # in the top navigation


# --- the launch form -----------------------------------------------------------------------------


def test_the_form_has_a_vary_box_per_setting_and_seeds_and_max_parallel(
    client: TestClient,
) -> None:
    shown = inputs(client.get("/experiments/new").text)
    assert {"vary.learning_rate", "vary.optimizer", "seeds", "max_parallel"} <= set(shown)
    assert "vary.seed" not in shown  # seeds are varied with the Seeds box
    html = client.get("/experiments/new").text  # each box named for its setting, not "Vary"
    assert "<summary>Vary</summary>" not in html
    assert '<summary aria-label="Vary Learning Rate">Vary</summary>' in html


def test_posting_a_grid_launches_a_sweep_and_redirects_to_its_page(
    client: TestClient, session: Session, broker: redis.Redis
) -> None:
    values = form(**{"vary.learning_rate": "0.001, 0.003,", "seeds": "2", "hp.seed": "5",
                     "max_parallel": "1"})  # fmt: skip
    response = post_form(client, "/experiments/new", values, follow_redirects=False)
    assert response.status_code == 303
    sweep = session.scalars(select(Sweep)).one()
    assert response.headers["location"] == f"/sweeps/{sweep.id}"
    assert sweep.spec["grid"] == {"learning_rate": [0.001, 0.003]}
    assert sweep.spec["seeds"] == [5, 6] and sweep.max_parallel == 1
    view = sweeps.view(session, sweep.id)
    assert [t.point for t in view.trials] == [
        {"learning_rate": lr, "seed": seed} for lr in (0.001, 0.003) for seed in (5, 6)
    ]
    trial = session.get(Experiment, view.trials[0].id)
    assert trial is not None and trial.spec["hyperparameters"]["epochs"] == 3
    assert broker.llen("cifarlab") == 1  # the cap: one at a time
    assert client.get(response.headers["location"]).status_code == 200


def test_a_sweep_left_unnamed_is_named_for_what_its_base_changes(
    client: TestClient, session: Session
) -> None:
    """The Name help says a blank name names what you changed; a sweep was refused instead
    ("name: String should have at least 1 character")."""
    values = form(name=" ", seeds="2", **{"vary.learning_rate": "0.001, 0.003"})
    response = post_form(client, "/experiments/new", values, follow_redirects=False)
    assert response.status_code == 303, response.text
    sweep = session.scalars(select(Sweep)).one()
    base = "custom_cnn · epochs=3 batch_size=64 test_size=500"  # what the form's base changes
    assert sweep.name == base
    trial = session.scalars(select(Experiment).order_by(Experiment.id)).first()
    assert trial is not None and trial.name == f"{base} · learning_rate=0.001 · seed 0"
    unnamed = {k: v for k, v in sweep_data(hyperparameters={}).items() if k != "name"}
    assert parse_sweep(unnamed).name == "custom_cnn"  # the API and a sweep file alike


def test_seeds_alone_make_a_sweep(client: TestClient, session: Session) -> None:
    response = post_form(client, "/experiments/new", form(seeds="3"), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/sweeps/")
    assert session.scalar(select(func.count()).select_from(Experiment)) == 3


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"vary.learning_rate": "0.001, 0.01, -1"}, "grid.learning_rate[2]", "greater than 0"),
        ({"vary.learning_rate": "0.001, fast"}, "grid.learning_rate[1]", "valid number"),
        ({"vary.optimizer": "adam, sgdd"}, "grid.optimizer[1]", "adam"),
        ({"seeds": "0"}, "seeds", "give 1 to 100 distinct seeds"),
        ({"seeds": "101"}, "seeds", "give 1 to 100 distinct seeds"),
        ({"seeds": "2", "max_parallel": "0"}, "max_parallel", "greater than or equal to 1"),
    ],
)  # fmt: skip
def test_a_bad_grid_value_is_named_on_the_form_and_stores_nothing(
    client: TestClient, session: Session, changes: dict[str, str], field: str, words: str
) -> None:
    response = post_form(client, "/experiments/new", form(**changes))
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert field in errors and words in errors[field], errors
    box = described_input(response.text, field)  # the box is marked and described by it
    assert f"#{box.attrs['id']}" in error_summary(response.text)[1]  # linked from the summary
    assert "sweep was not launched" in response.text
    shown = inputs(response.text)
    for name, value in changes.items():
        assert shown[name]["value"] == value  # the input is kept as typed
    assert session.scalar(select(func.count()).select_from(Sweep)) == 0
    assert session.scalar(select(func.count()).select_from(Experiment)) == 0


def test_without_a_varied_setting_the_form_still_launches_one_experiment(
    client: TestClient, session: Session
) -> None:
    response = post_form(client, "/experiments/new", form(seeds="1"), follow_redirects=False)
    assert response.status_code == 303
    assert re.fullmatch(r"/experiments/\d+", response.headers["location"])
    assert session.scalar(select(func.count()).select_from(Sweep)) == 0


def test_text_axes_are_categories_and_a_random_log_axis_ticks_by_decade() -> None:
    spec = parse_sweep(
        sweep_data(
            grid={"optimizer": ["adam", "sgd"]},
            random={"learning_rate": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-1}},
            trials=10,
        )
    )
    trials = [
        TrialView(
            id=i,
            name=f"t{i}",
            status=Status.succeeded,
            point=trial.point,
            current_epoch=2,
            total_epochs=2,
            best_metric=i / 100,
            test_accuracy=None,
            stop_reason=None,
            error=None,
            started_at=None,
            finished_at=None,
        )  # fmt: skip
        for i, trial in enumerate(expand(spec))
    ]
    figure = sweep_charts.parallel_coordinates(spec, trials)
    optimizer, learning_rate, seed, metric = figure["data"][0]["dimensions"]
    assert optimizer["ticktext"] == ["adam", "sgd"] and optimizer["tickvals"] == [0, 1]
    assert optimizer["values"] == [0 if t.point["optimizer"] == "adam" else 1 for t in trials]
    assert learning_rate["label"] == "learning_rate (log)"
    assert learning_rate["ticktext"][0] in {"1e-05", "0.0001"}
    assert all(-5 <= v <= -1 for v in learning_rate["values"])
    assert sweep_charts.scatter(spec, "optimizer", trials)["data"][0]["x"][:2] == ["adam", "adam"]
    assert sweep_charts.scatter(spec, "learning_rate", trials)["layout"]["xaxis"]["type"] == "log"
    assert sweep_charts.parallel_coordinates(spec, [])["data"] == []  # nothing scored yet


def test_only_the_owner_or_an_admin_sees_and_may_use_cancel_and_retry(session: Session) -> None:
    users = {}
    for name, admin in (("alice", False), ("bob", False), ("root", True)):
        user = accounts.create_user(
            session=session, username=name, password=PASSWORD, is_admin=admin
        )
        users[name] = user.id
    session.commit()
    launched = sweeps.launch_sweep(session, sweep_data(), owner_id=users["alice"])
    url = f"/sweeps/{launched.sweep.id}"
    bob = signed_in("bob")
    html = bob.get(url).text
    assert 'id="cancel-form"' not in html and 'id="retry-form"' not in html
    assert post_form(bob, f"{url}/cancel").status_code == 403
    session.expire_all()
    assert not session.scalars(
        select(Experiment).where(Experiment.status == Status.cancelled)
    ).all()
    for name in ("alice", "root"):
        assert 'id="cancel-form"' in signed_in(name).get(url).text
    signed_out = make_client().get(url, follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")
