"""The list's filters, parsed once (``app.web.list_filters``): GET /api/experiments refuses a
bad one naming it, the ``/`` page drops it, and both filter alike."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Status
from app.core.schemas import parse_spec
from app.web.list_filters import ExperimentFilters
from app.web.main import create_app
from tests.support.factories import spec_data
from tests.support.pages import elements


def page_names(html: str) -> list[str]:
    return [e.text for e in elements(html) if "row-link" in e.attrs.get("class", "")]


def test_the_page_drops_a_filter_that_does_not_parse() -> None:
    lenient = ExperimentFilters.lenient({"sort": "nonsense", "status": "bogus", "q": " a "})
    assert lenient == ExperimentFilters(q="a")
    assert not ExperimentFilters.lenient({"tag": " ", "model": "", "order": "asc"}).filtered


def test_the_api_and_the_page_filter_alike(session: Session) -> None:
    for name in ("alpha", "beta", "gamma"):
        experiment = crud.create_experiment(
            session=session, spec=parse_spec({**spec_data(), "name": name})
        )
        experiment.status = Status.failed if name == "beta" else Status.queued
    session.commit()
    client = TestClient(create_app())
    query = {"q": "a", "owner": "me", "sort": "name", "order": "asc"}
    listed = client.get("/api/experiments", params=query)
    assert listed.status_code == 200, listed.text
    assert [item["name"] for item in listed.json()["items"]] == ["alpha", "beta", "gamma"]
    assert page_names(client.get("/", params=query).text) == ["alpha", "beta", "gamma"]
    # The page's form sends empty fields, which filter nothing; the API documents `status`
    # as one of the statuses, so it refuses an empty one (schemathesis found it accepted).
    form = {**query, "status": "", "q": " a "}
    assert page_names(client.get("/", params=form).text) == ["alpha", "beta", "gamma"]
    blank = client.get("/api/experiments", params={"status": ""})
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "status"
    failed = {"status": "failed", "sort": "nonsense"}
    assert page_names(client.get("/", params=failed).text) == ["beta"]
    refused = client.get("/api/experiments", params=failed)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "sort"
