"""Input the API refused unclearly or not at all: a column filter or header given twice, a
body sent to the preset launch (which takes none), an experiment id that is not a number, and
a body that is not JSON, or not sent as JSON."""

from __future__ import annotations

import json

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.core.schemas import parse_spec
from tests.support.clients import make_client
from tests.support.factories import claim, make_experiment, spec_data
from tests.support.pages import elements
from tests.support.seed_reports import seed_report

TWICE = "given 2 times; it takes one value"
JSON_HINT = "send JSON with content-type: application/json"
AS_JSON = {"content-type": "application/json"}


def _run(session: Session, name: str, val_accuracy: float, **hyperparameters: object) -> None:
    spec = parse_spec({**spec_data(**hyperparameters), "name": name})
    experiment = crud.create_experiment(session=session, spec=spec)
    session.commit()
    lease = claim(session, experiment.id)
    values = {"val_accuracy": val_accuracy, "accuracy": val_accuracy}
    crud.record_epoch(session=session, lease=lease, epoch=1, values=values)
    session.commit()


def _names(response: object) -> list[str]:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    return sorted(item["name"] for item in response.json()["items"])  # type: ignore[attr-defined]


def test_a_column_filter_given_twice_is_refused_naming_it(session: Session) -> None:
    """``hp.seed=0&hp.seed=2`` answered 200 with no runs (both had to hold): the column
    filters were not in the schema the repeat check read. The page, whose form sends the
    shown filters and then the one just typed, takes the last."""
    _run(session, "zero", 0.5, seed=0, learning_rate=0.001, optimizer="adam")
    _run(session, "two", 0.8, seed=2, learning_rate=0.003, optimizer="sgd")
    client = make_client()
    for name, first, second in (
        ("hp.seed", "0", "2"),
        ("hp.learning_rate.min", "0.001", "0.002"),
        ("best_val_accuracy.min", "0.1", "0.6"),
        ("hp.optimizer", "adam", "sgd"),
    ):
        alone = client.get("/api/experiments", params={name: first})
        assert _names(alone), (name, alone.text)
        twice = client.get("/api/experiments", params=[(name, first), (name, second)])
        assert twice.status_code == 422, (name, twice.text)
        assert twice.json()["errors"] == [{"field": name, "message": TWICE}]
        assert twice.json()["detail"] == f"{name}: {TWICE}"
    # Different parameters of one column still combine: a range.
    bounds = [("hp.seed.min", "1"), ("hp.seed.max", "2")]
    assert _names(client.get("/api/experiments", params=bounds)) == ["two"]
    # A repeat is named once, beside the other bad filters.
    mixed = [("hp.seed", "x"), ("hp.seed", "y"), ("hp.seed.max", "z")]
    errors = client.get("/api/experiments", params=mixed).json()["errors"]
    assert errors == [
        {"field": "hp.seed", "message": TWICE},
        {"field": "hp.seed.max", "message": "expected a number, got 'z'"},
    ]

    def page(params: list[tuple[str, str]]) -> list[str]:
        html = client.get("/", params=params)
        assert html.status_code == 200
        return [e.text for e in elements(html.text) if "row-link" in e.attrs.get("class", "")]

    assert page([("hp.seed", "0")]) == ["zero"]
    assert page([("hp.seed", "0"), ("hp.seed", "2")]) == ["two"]
    assert page([("hp.seed", "2"), ("hp.seed", "nonsense")]) == ["two"]
    html = client.get("/", params=[("hp.seed", "0"), ("hp.seed", "2")]).text
    chips = [e for e in elements(html) if e.attrs.get("data-filter") == "hp.seed"]
    assert len(chips) == 1 and "= 2" in chips[0].text


@pytest.mark.usefixtures("broker")
def test_the_preset_launch_refuses_a_body(session: Session, broker: redis.Redis) -> None:
    """Overrides sent to the preset launch were dropped and the preset launched as it is."""
    client = make_client()
    url = "/api/presets/quick-custom-cnn/launch"
    for body in (
        {"json": {"hyperparameters": {"epochs": -1}}},
        {"content": "garbage", "headers": {"content-type": "text/plain"}},
        {"json": {}},
    ):
        refused = client.post(url, **body)  # type: ignore[arg-type]
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["field"] == "body"
        assert error["message"].startswith("this route takes no body")
        assert "POST /api/experiments" in error["message"]
        assert "cifarlab launch --preset quick-custom-cnn --set key=value" in error["message"]
    assert crud.list_experiments(session=session)[1] == 0
    assert broker.llen("cifarlab") == 0
    launched = client.post(url)
    assert launched.status_code == 201, launched.text
    operation = client.get("/openapi.json").json()["paths"]["/api/presets/{name}/launch"]["post"]
    assert "requestBody" not in operation
    assert "takes no body" in operation["description"]


def test_an_experiment_id_that_is_not_a_number_is_a_422_naming_it(
    client: TestClient, session: Session
) -> None:
    """Experiment routes answered a bare ``404 Not Found`` where sweeps name the id."""
    experiment = make_experiment(session)
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, "/api/experiments/abc", json={"name": "x"})
        assert response.status_code == 422, (method, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["experiment_id"]
        assert "valid integer" in response.json()["detail"]
    assert client.get("/api/experiments/0").json()["errors"][0]["field"] == "experiment_id"
    assert client.get(f"/api/experiments/{experiment.id}").status_code == 200
    # The fixed paths beside it still name the method they take.
    for path in ("estimate", "bulk", "import"):
        response = client.get(f"/api/experiments/{path}")
        assert response.status_code == 405, (path, response.text)
        assert response.headers["allow"] == "POST"
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/experiments/{experiment_id}"]) == {"get", "patch", "delete"}
    # A browser opening the page gets a page, not JSON.
    page = client.get("/experiments/abc", headers={"accept": "text/html"})
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "experiment_id" in page.text


@pytest.mark.usefixtures("broker")
def test_a_body_that_is_not_json_says_so(client: TestClient, session: Session) -> None:
    """JSON sent as text/plain (or untyped, or as a form) was "request: Input should be a
    valid dictionary" with an empty field; bad JSON was "0: JSON decode error"."""
    experiment = make_experiment(session)
    spec = json.dumps(spec_data())
    targets = [
        ("POST", "/api/experiments"),
        ("PATCH", f"/api/experiments/{experiment.id}"),
        ("POST", "/api/sweeps"),
        ("POST", "/api/experiments/import"),
    ]
    for method, url in targets:
        for content_type in ("text/plain", None, "application/x-www-form-urlencoded"):
            headers = {"content-type": content_type} if content_type else {}
            response = client.request(method, url, content=spec, headers=headers)
            assert response.status_code == 422, (url, content_type, response.text)
            assert response.json() == {
                "detail": f"body: {JSON_HINT}",
                "errors": [{"field": "body", "message": JSON_HINT}],
            }, (url, content_type)
        bad = client.request(method, url, content="not json", headers=AS_JSON)
        assert bad.status_code == 422
        message = "not valid JSON (Expecting value at line 1 column 1)"
        assert bad.json() == {
            "detail": f"body: {message}",
            "errors": [{"field": "body", "message": message}],
        }
    cut = client.post("/api/experiments", content='{\n "name": ', headers=AS_JSON)
    assert cut.json()["detail"] == "body: not valid JSON (Expecting value at line 2 column 10)"
    listed = client.post("/api/experiments", json=[1, 2])
    assert listed.json()["detail"] == "body: Input should be a valid dictionary"
    assert crud.list_experiments(session=session)[1] == 1  # make_experiment's own
    assert client.post("/api/experiments", json=spec_data()).status_code == 201


@pytest.mark.usefixtures("broker")
def test_an_idempotency_key_given_twice_is_refused(session: Session) -> None:
    """The second key was dropped: a retry that sent the other one launched a second run."""
    client = make_client()
    keys = [("Idempotency-Key", "one"), ("Idempotency-Key", "two")]
    twice = client.post("/api/experiments", json=spec_data(), headers=keys)
    assert twice.status_code == 422, twice.text
    assert twice.json() == {
        "detail": f"Idempotency-Key: {TWICE}",
        "errors": [{"field": "Idempotency-Key", "message": TWICE}],
    }
    assert crud.list_experiments(session=session)[1] == 0
    once = client.post("/api/experiments", json=spec_data(), headers=keys[:1])
    assert once.status_code == 201, once.text


@pytest.mark.both_databases
def test_text_in_a_numeric_setting_matches_no_numeric_filter(
    backend: str, session: Session
) -> None:
    """An imported ``"epochs": "many"`` was read as 0 on SQLite: ``hp.epochs=0`` and
    ``hp.epochs.max=0`` listed it and it sorted before every number (PostgreSQL failed)."""
    _run(session, "trained", 0.5, learning_rate=0.001)
    client = make_client()
    imported = client.post("/api/experiments/import", json={
        "name": "many", "report_text": seed_report("custom-cnn"), "model": "custom_cnn",
        "hyperparameters": {"epochs": "many", "learning_rate": "fast"},
    })  # fmt: skip
    assert imported.status_code == 201, imported.text
    for params in ({"hp.epochs": "0"}, {"hp.epochs.max": "0"}, {"hp.learning_rate.max": "1"}):
        listed = client.get("/api/experiments", params=params)
        assert "many" not in _names(listed), params
    assert _names(client.get("/api/experiments", params={"hp.epochs.min": "1"})) == ["trained"]
    for order in ("asc", "desc"):
        for sort in ("hp.learning_rate", "hp.epochs"):
            params = {"sort": sort, "order": order}
            listed = client.get("/api/experiments", params=params).json()["items"]
            assert [item["name"] for item in listed] == ["trained", "many"], params
            filtered = client.get("/api/experiments", params={**params, "model": "custom_cnn"})
            assert [i["name"] for i in filtered.json()["items"]] == ["trained", "many"], params
    page = client.get("/", params={"hp.epochs": "0"}).text
    assert "many" not in [e.text for e in elements(page) if "row-link" in e.attrs.get("class", "")]
