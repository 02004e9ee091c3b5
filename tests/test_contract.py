"""Issue 12 items 14a and 15: security headers, and an OpenAPI document that says what the
API really answers (error bodies, statuses, datetimes with their zone, Allow on 405)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.web.security_headers import inline_script_hashes
from tests.support.factories import make_experiment


def _script_src(response: object) -> str:
    policy = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    return re.search(r"script-src ([^;]*)", policy).group(1)  # type: ignore[union-attr]


def test_14a_pages_and_api_carry_security_headers(client: TestClient) -> None:
    for path in ("/", "/api/experiments", "/static/app.css", "/login"):
        response = client.get(path)
        assert _script_src(response) == "'self'", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"


def test_14a_docs_pages_allow_exactly_their_own_inline_script(client: TestClient) -> None:
    """Swagger UI starts from one inline script: the policy names it by hash, nothing else."""
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        hashes = inline_script_hashes(response.content)
        assert _script_src(response) == "'self'" + "".join(f" 'sha256-{h}'" for h in hashes)
    assert inline_script_hashes(client.get("/docs").content)  # Swagger UI has one


def test_15_405_lists_every_method_of_the_path(client: TestClient, session: Session) -> None:
    experiment = make_experiment(session)
    response = client.options(f"/api/experiments/{experiment.id}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


def test_15_datetimes_carry_their_utc_offset(client: TestClient, session: Session) -> None:
    """SQLite returns timestamps without a zone; the API says they are UTC."""
    experiment = make_experiment(session)
    session.expire_all()
    for body in (
        client.get(f"/api/experiments/{experiment.id}").json(),
        client.get("/api/experiments").json()["items"][0],
    ):
        assert body["created_at"].endswith(("Z", "+00:00")), body["created_at"]


def test_15_openapi_documents_error_bodies_as_they_are(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/experiments/{experiment_id}"]["patch"]
    for status in ("404", "409", "422", "429"):
        assert status in operation["responses"], status
    ref = operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    validation = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(validation["required"]) == {"detail", "errors"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    response = client.patch("/api/experiments/1", json={"tags": None})
    assert set(response.json()) == {"detail", "errors"}
    compare = client.get("/api/compare?ids=1")
    assert compare.status_code == 422 and compare.json()["errors"][0]["field"] == "ids"


def test_openapi_documents_the_comparison_and_the_statuses(client: TestClient) -> None:
    """GET /api/compare names its bodies (ComparisonPublic, or SeedGroupsPublic with
    group=seed) field by field, and an experiment's ``status`` lists the values it takes."""
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/api/compare"]["get"]["responses"]["200"]["content"]
    refs = [option["$ref"] for option in content["application/json"]["schema"]["anyOf"]]
    components = schema["components"]["schemas"]
    comparison, groups = (components[ref.rsplit("/", 1)[1]] for ref in refs)
    assert set(groups["required"]) == {"baseline_id", "groups", "comparisons", "warnings"}
    assert set(comparison["required"]) == {
        "baseline_id", "experiments", "warnings", "per_class", "hyperparameters",
        "significance", "diagnostics", "curves", "confusion_matrices",
    }  # fmt: skip
    pairing = components["PairingPublic"]
    assert set(pairing["required"]) == {"a", "b", "text"}  # the test only where one ran
    status = components["ExperimentPublic"]["properties"]["status"]["$ref"]
    assert "imported" in components[status.rsplit("/", 1)[1]]["enum"]


def test_a_string_of_the_wrong_form_is_refused_in_words_not_with_its_regex(
    client: TestClient,
) -> None:
    """The schema keeps each pattern for clients; the 422 says what to write instead, and the
    pattern itself stays checkable in the OpenAPI document."""
    report = "\n".join(["precision recall f1-score support", "", "accuracy 0.5 10"])
    refused = {
        "ids": client.get("/api/compare?ids=1"),
        "model": client.post(
            "/api/experiments/import", json={"name": "x", "report_text": report, "model": "vgg 16"}
        ),
        "hyperparameters.1st_rate.[key]": client.post(
            "/api/experiments/import",
            json={"name": "x", "report_text": report, "hyperparameters": {"1st_rate": 3}},
        ),
    }
    words = {
        "ids": "give two or more experiment ids, comma-separated: 1,2",
        "model": "use letters, digits, '_', '.' and '-', starting with a letter or a digit",
        "hyperparameters.1st_rate.[key]": "use letters, digits and '_', not starting with a digit",
    }
    for field, response in refused.items():
        assert response.status_code == 422, field
        (error,) = response.json()["errors"]
        assert error["field"] == field
        assert error["message"].startswith(words[field])
        assert "pattern" not in response.json()["detail"] and "\\" not in error["message"]
    query = client.get("/openapi.json").json()["paths"]["/api/compare"]["get"]["parameters"]
    assert re.fullmatch(next(p for p in query if p["name"] == "ids")["schema"]["pattern"], "1,2")


def test_a_validators_own_message_reaches_the_client_without_pydantics_prefix(
    client: TestClient,
) -> None:
    status = client.get("/api/experiments?status=bogus").json()["errors"]
    assert status[0]["message"].startswith("unknown status 'bogus'; choose from queued")
    axis = {"distribution": "log_uniform", "low": 0, "high": 1}
    sweep = {"name": "s", "model": "custom_cnn", "random": {"learning_rate": axis}}
    response = client.post("/api/sweeps", json=sweep)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "random.learning_rate", "message": "log_uniform needs low above 0"}
    ]
