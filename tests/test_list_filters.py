"""The list's filters, parsed once (``app.web.list_filters``): GET /api/experiments refuses a
bad one naming it, the ``/`` page drops it, and both filter alike."""

from __future__ import annotations

import html as html_text
import re

from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Status
from app.core.schemas import parse_spec
from app.web.list_filters import ExperimentFilters
from tests.support.clients import make_client
from tests.support.factories import spec_data
from tests.support.pages import by_id, elements


def page_names(html: str) -> list[str]:
    return [e.text for e in elements(html) if "row-link" in e.attrs.get("class", "")]


def left_out(html: str) -> list[str]:
    """Each line of the page's alert about the filters it left out, as a person reads it."""
    items = re.findall(r"<li data-param=[^>]*>(.*?)</li>", html, flags=re.S)
    return [html_text.unescape(re.sub(r"<[^>]+>", "", item)) for item in items]


def test_the_page_drops_a_filter_that_does_not_parse() -> None:
    lenient, ignored = ExperimentFilters.lenient(
        {"sort": "nonsense", "status": "bogus", "q": " a "}
    )
    assert lenient == ExperimentFilters(q="a")
    assert [(item.param, item.text) for item in ignored] == [
        ("status", "bogus"), ("sort", "nonsense"),
    ]  # fmt: skip
    blank, none_ignored = ExperimentFilters.lenient({"tag": " ", "model": "", "order": "asc"})
    assert not blank.filtered and none_ignored == []


def test_the_api_and_the_page_filter_alike(session: Session) -> None:
    for name in ("alpha", "beta", "gamma"):
        experiment = crud.create_experiment(
            session=session, spec=parse_spec({**spec_data(), "name": name})
        )
        experiment.status = Status.failed if name == "beta" else Status.queued
    session.commit()
    client = make_client()
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


def test_the_api_matches_any_of_several_statuses_models_and_tags(session: Session) -> None:
    runs = {"a": ("custom_cnn", ["x"], Status.failed), "b": ("residual_cnn", ["y"], Status.queued),
            "c": ("custom_cnn", ["z"], Status.cancelled)}  # fmt: skip
    for name, (model, tags, status) in runs.items():
        spec = parse_spec({**spec_data(model), "name": name, "tags": tags})
        crud.create_experiment(session=session, spec=spec).status = status
    session.commit()
    client = make_client()

    def names(params: list[tuple[str, str]]) -> list[str]:
        listed = client.get("/api/experiments", params=params)
        assert listed.status_code == 200, listed.text
        return sorted(item["name"] for item in listed.json()["items"])

    assert names([("status", "failed"), ("status", "cancelled")]) == ["a", "c"]
    assert names([("model", "residual_cnn"), ("model", "custom_cnn")]) == ["a", "b", "c"]
    assert names([("tag", "y"), ("tag", "z")]) == ["b", "c"]
    assert names([("tag", "x"), ("tag", "z"), ("status", "cancelled")]) == ["c"]
    refused = client.get("/api/experiments", params=[("status", "failed"), ("status", "done")])
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "status"
    assert "unknown status 'done'" in refused.json()["detail"]


def test_a_single_valued_parameter_given_twice_is_refused_naming_it(session: Session) -> None:
    """Read as its last value, ``owner=ann&owner=bob`` listed bob's runs alone, silently
    (schemathesis: "schema-violating request accepted"). The list filters still repeat, and
    the page, whose URLs people edit by hand, still reads what it can."""
    for owner in ("ann", "bob"):
        spec = parse_spec({**spec_data(), "name": f"{owner}'s run"})
        crud.create_experiment(session=session, spec=spec)
    session.commit()
    client = make_client()

    twice = client.get("/api/experiments", params=[("owner", "ann"), ("owner", "bob")])
    assert twice.status_code == 422, twice.text
    assert twice.json()["errors"] == [
        {"field": "owner", "message": "given 2 times; it takes one value"}
    ]
    twice_each = [("limit", "1"), ("limit", "2"), ("sort", "name"), ("sort", "id")]
    both = client.get("/api/experiments", params=[*twice_each, ("status", "queued")])
    assert [e["field"] for e in both.json()["errors"]] == ["limit", "sort"]
    compared = client.get("/api/compare", params=[("ids", "1,2"), ("ids", "2,1")])
    assert compared.status_code == 422 and compared.json()["errors"][0]["field"] == "ids"

    repeated_filters = [("status", "queued"), ("status", "failed"), ("tag", "a"), ("tag", "b")]
    assert client.get("/api/experiments", params=repeated_filters).status_code == 200
    assert client.get("/", params=[("owner", "ann"), ("owner", "bob")]).status_code == 200


def test_the_page_says_which_filters_it_left_out_in_the_apis_words(session: Session) -> None:
    """A bad value in the page's address filtered nothing and said nothing, and the value
    typed in the column filter's box was gone: the rows still come, unfiltered by it, under
    an alert naming each parameter left out with the API's reason, the value back in its box."""
    for name in ("alpha", "beta"):
        crud.create_experiment(session=session, spec=parse_spec({**spec_data(), "name": name}))
    session.commit()
    client = make_client()
    bad = [("hp.learning_rate", "abc"), ("best_val_accuracy.min", "abc"), ("status", "bogus")]
    for param, text in bad:
        api = client.get("/api/experiments", params={param: text})
        assert api.status_code == 422
        html = client.get("/", params={"q": "a", param: text}).text
        assert sorted(page_names(html)) == ["alpha", "beta"]  # q=a applies; the bad value nothing
        alert = by_id(html, "filter-errors")
        assert alert.attrs["role"] == "alert"
        assert left_out(html) == [api.json()["detail"]]  # "hp.learning_rate: expected ..."

    # In the form's order (httpx's params would group a repeated name): hidden fields first.
    html = client.get("/?hp.learning_rate=0.001&hp.learning_rate.max=x&hp.learning_rate=abc").text
    assert left_out(html) == [
        "hp.learning_rate.max: expected a number, got 'x'",
        "hp.learning_rate: expected a number, got 'abc'",
    ]
    # The first one left out is back in the column filter's boxes, to correct.
    chosen = {
        e.attrs["value"]
        for e in elements(html)
        if e.tag == "option" and "selected" in e.attrs and "column-filter" in e.within
    }
    assert chosen == {"hp.learning_rate", "max"}
    value = by_id(html, "column-filter-value")
    assert (value.attrs["value"], value.attrs["aria-invalid"]) == ("x", "true")
    assert "filter-errors" not in {e.attrs.get("id") for e in elements(client.get("/").text)}
