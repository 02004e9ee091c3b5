"""The REST API against a real database and a real Redis (no worker consumes the queue)."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import config, crud, queue
from app.core.models import Status
from app.embedded_redis import free_port
from app.services import accounts
from tests.support.factories import (
    claim,
    end_experiment,
    failed_experiment,
    make_experiment,
    spec_data,
)

pytestmark = [pytest.mark.both_databases, pytest.mark.usefixtures("broker")]

QUEUE = "cifarlab"


def queued_ids(broker: redis.Redis) -> list[int]:
    messages = [json.loads(raw) for raw in broker.lrange(QUEUE, 0, -1)]
    return [json.loads(base64.b64decode(m["body"]))[0][0] for m in messages]


def test_post_stores_queued_experiment_and_enqueues_its_id(
    client: TestClient, broker: redis.Redis
) -> None:
    response = client.post("/api/experiments", json=spec_data(epochs=3))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert body["spec"]["hyperparameters"]["epochs"] == 3
    assert body["spec"]["hyperparameters"]["batch_size"] == 128  # the model's default
    assert body["total_epochs"] == 3
    assert queued_ids(broker) == [body["id"]]
    assert client.get(f"/api/experiments/{body['id']}").json()["name"] == "tiny cnn"


@pytest.mark.parametrize(
    ("hyperparameters", "field"),
    [({"epochs": -1}, "hyperparameters.epochs"), ({"nesterov": True}, "hyperparameters.nesterov")],
)
def test_bad_spec_refused_naming_field_and_nothing_queued(
    client: TestClient, broker: redis.Redis, hyperparameters: dict, field: str
) -> None:
    response = client.post("/api/experiments", json=spec_data(**hyperparameters))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert field in response.json()["detail"]
    assert broker.llen(QUEUE) == 0
    assert client.get("/api/experiments").json() == {"items": [], "total": 0}


def test_malformed_json_is_a_422_with_a_message(client: TestClient) -> None:
    response = client.post(
        "/api/experiments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


def test_list_filters_and_paginates(client: TestClient, session: Session) -> None:
    for epochs in (1, 2, 3):
        make_experiment(session, epochs=epochs)
    first = make_experiment(session)
    end_experiment(session, first.id, Status.failed)
    session.commit()
    page = client.get("/api/experiments", params={"limit": 2, "offset": 0}).json()
    assert page["total"] == 4
    assert [item["id"] for item in page["items"]] == [4, 3]
    failed = client.get("/api/experiments", params={"status": "failed"}).json()
    assert [item["id"] for item in failed["items"]] == [first.id]
    assert client.get("/api/experiments", params={"tag": "test"}).json()["total"] == 4
    assert client.get("/api/experiments", params={"tag": "other"}).json()["total"] == 0
    assert client.get("/api/experiments", params={"status": "bogus"}).status_code == 422


def test_metrics_and_evaluation_as_in_the_contract(client: TestClient, session: Session) -> None:
    experiment = make_experiment(session, epochs=2)
    lease = claim(session, experiment.id)
    for epoch in (1, 2, 2):  # a re-sent epoch replaces its row
        crud.record_epoch(
            session=session,
            lease=lease,
            epoch=epoch,
            values={"loss": 1.0 / epoch, "accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.4},
        )
    session.commit()
    assert client.get(f"/api/experiments/{experiment.id}/evaluation").status_code == 404
    classes = ["a", "b"]
    report = {
        "a": {"precision": 1.0, "recall": 0.5, "f1-score": 0.667, "support": 2.0},
        "b": {"precision": 0.5, "recall": 1.0, "f1-score": 0.667, "support": 1.0},
        "accuracy": 0.667,
        "macro avg": {"precision": 0.75, "recall": 0.75, "f1-score": 0.667, "support": 3.0},
        "weighted avg": {"precision": 0.833, "recall": 0.667, "f1-score": 0.667, "support": 3.0},
    }
    crud.save_evaluation(
        session=session,
        lease=lease,
        classes=classes,
        confusion_matrix=[[1, 1], [0, 1]],
        report=report,
    )
    session.commit()
    epochs = client.get(f"/api/experiments/{experiment.id}/metrics").json()["epochs"]
    assert [row["epoch"] for row in epochs] == [1, 2]
    assert set(epochs[0]) >= {
        "epoch",
        "phase",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
    }
    evaluation = client.get(f"/api/experiments/{experiment.id}/evaluation").json()
    assert evaluation["confusion_matrix"] == [[1, 1], [0, 1]]
    assert evaluation["test_size"] == 3
    assert evaluation["report"]["macro avg"]["f1-score"] == 0.667
    summary = client.get(f"/api/experiments/{experiment.id}").json()
    assert (summary["status"], summary["test_accuracy"]) == ("succeeded", 0.667)


def test_unknown_experiment_is_404_with_message(client: TestClient) -> None:
    response = client.get("/api/experiments/999")
    assert response.status_code == 404
    assert "999" in response.json()["detail"]


def test_models_serve_hyperparameter_schema(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/api/models").json()}
    properties = models["custom_cnn"]["hyperparameters_schema"]["properties"]
    assert properties["epochs"]["minimum"] == 1
    assert properties["epochs"]["default"] == 20


def test_health_reports_broker_up_and_no_workers(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health == {"status": "degraded", "database": "ok", "broker": "ok", "workers": []}


def test_13_health_tells_anonymous_callers_a_status_and_admins_the_error(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error names the broker's host and port: only a signed-in admin reads it."""
    port = free_port()
    monkeypatch.setenv("CIFARLAB_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    config.get_settings.cache_clear()
    queue.get_celery.cache_clear()
    health = client.get("/api/health").json()
    assert health == {"status": "degraded", "database": "ok", "broker": "error", "workers": []}
    admin = accounts.create_user(session=session, username="root", password="p" * 12,
                                 is_admin=True)  # fmt: skip
    token = accounts.create_token(session=session, user=admin, name="test", expires_at=None)
    session.commit()
    as_admin = client.get("/api/health", headers={"Authorization": f"Bearer {token}"}).json()
    assert as_admin["broker"].startswith("error:") and str(port) in as_admin["broker"]
    assert str(port) not in client.get("/api/health").text


def test_cancel_queued_experiment_never_starts(client: TestClient, session: Session) -> None:
    experiment = make_experiment(session)
    body = client.post(f"/api/experiments/{experiment.id}/cancel").json()
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/experiments", "/api/experiments/{experiment_id}/metrics", "/api/health"} <= set(
        paths
    )
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text and "https://" not in docs.text.replace("https://fastapi", "")
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_delete_removes_rows_and_files_but_not_a_running_run(
    client: TestClient, session: Session, data_dir
) -> None:
    from app.core.config import get_settings

    experiment_id = make_experiment(session).id
    assert client.delete(f"/api/experiments/{experiment_id}").status_code == 409
    lease = claim(session, experiment_id)
    crud.record_epoch(session=session, lease=lease, epoch=1, values={"loss": 1.0})
    crud.end_attempt(session=session, lease=lease, status=Status.failed)
    session.commit()
    model = get_settings().model_path(experiment_id)
    model.parent.mkdir(parents=True)
    model.write_bytes(b"keras")
    downloaded = client.get(f"/api/experiments/{experiment_id}/model")
    assert downloaded.content == b"keras"
    assert "cifarlab-1-custom_cnn.keras" in downloaded.headers["content-disposition"]
    assert client.delete(f"/api/experiments/{experiment_id}").status_code == 204
    assert client.get(f"/api/experiments/{experiment_id}").status_code == 404
    assert not model.parent.exists()
    session.expire_all()
    assert crud.list_epochs(session=session, experiment_id=experiment_id) == []


def test_a_deleted_experiments_id_is_never_given_to_the_next(
    client: TestClient, session: Session
) -> None:
    """A bookmark, a /compare link, an exported CSV or the CLI's history names a run by its id,
    and the deleted run's folder goes after its row: deleting the newest run must not hand its
    id to the next launch (SQLite gave it max(id)+1; PostgreSQL's sequence never did)."""
    oldest, newest = failed_experiment(session).id, failed_experiment(session).id
    assert client.delete(f"/api/experiments/{newest}").status_code == 204
    launched = client.post("/api/experiments", json=spec_data())
    assert launched.status_code == 201
    assert launched.json()["id"] > newest > oldest


def test_model_download_404_before_training(client: TestClient, session: Session) -> None:
    experiment = make_experiment(session)
    response = client.get(f"/api/experiments/{experiment.id}/model")
    assert response.status_code == 404 and "no trained model" in response.json()["detail"]


def test_oversized_body_is_a_413_not_a_500(client: TestClient) -> None:
    from app.web.limits import MAX_BODY_BYTES

    spec = spec_data()
    spec["name"] = "x" * (MAX_BODY_BYTES + 10)
    response = client.post("/api/experiments", json=spec)
    assert response.status_code == 413 and "send less" in response.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(3):
            yield b" " * (MAX_BODY_BYTES // 2)

    streamed = client.post(
        "/api/experiments", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.get("/api/experiments").json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n" * 201, "model": "custom_cnn"},
        {"name": "n", "model": "custom_cnn", "tags": ["t" * 41]},
        {"name": "n", "model": "custom_cnn", "tags": [str(i) for i in range(21)]},
        {"name": "n", "model": "custom_cnn", "hyperparameters": {"image_size": 601}},
        {"name": "n", "model": "custom_cnn", "hyperparameters": {"batch_size": 5000}},
        ["not", "an", "object"],
        "just a string",
    ],
)
def test_out_of_bounds_input_is_a_422_with_a_message(client: TestClient, body: object) -> None:
    response = client.post("/api/experiments", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]
