"""What issue 16 asked of the pages around the data: plotly.js compressed on the wire, a way
back from /docs, the phone menu, the list's density and sticky selection, owner notes, the
launch form's defaults, and imported reports that carry a model and their own digits."""

from __future__ import annotations

import gzip

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.models import Status
from app.services import accounts
from app.web.templating import PLOTLY_JS_URL
from tests.support.clients import PASSWORD, signed_in
from tests.support.factories import make_experiment
from tests.support.pages import by_id, elements, field_errors, post_form

PLOTLY_BYTES = 4_000_000
"""plotly.min.js is about 4.8 MB as it is."""


def test_plotly_is_gzipped_for_clients_that_accept_it_and_keeps_its_etag(
    client: TestClient,
) -> None:
    zipped = client.get(PLOTLY_JS_URL, headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    on_the_wire = int(zipped.headers["content-length"])
    assert on_the_wire < PLOTLY_BYTES / 2
    assert len(zipped.content) > PLOTLY_BYTES  # httpx decoded it: the whole script
    etag = zipped.headers["etag"]
    again = client.get(PLOTLY_JS_URL, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    plain = client.get(PLOTLY_JS_URL, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert int(plain.headers["content-length"]) > PLOTLY_BYTES
    assert plain.content == zipped.content
    # A cache that stored the other encoding still validates: the script is the same.
    assert client.get(PLOTLY_JS_URL, headers={"If-None-Match": etag}).status_code == 304
    refused = client.get(PLOTLY_JS_URL, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_plotly_gzip_is_a_real_gzip_stream(client: TestClient) -> None:
    with client.stream("GET", PLOTLY_JS_URL, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert len(raw) < PLOTLY_BYTES / 2 and b"plotly" in gzip.decompress(raw)[:5000]


def test_docs_page_leads_back_to_the_app_with_local_assets_only(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert '<a id="back-to-app" href="/"' in docs.text and '<html lang="en">' in docs.text
    assert "swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs/oauth2-redirect").status_code == 200


# --- the phone menu ------------------------------------------------------------------------------


def test_every_page_link_is_in_the_phone_menu_too(client: TestClient) -> None:
    html = client.get("/workers").text
    wide = html[html.index('<nav class="nav nav-wide"') : html.index("</nav>")]
    menu = html[html.index('<details class="nav-menu"') : html.index("</details>")]
    links = ("/", "/experiments/new", "/sweeps", "/workers", "/docs")
    for part in (wide, menu):
        assert [e.attrs["href"] for e in elements(part) if e.tag == "a"] == list(links)
        current = [e.text for e in elements(part) if e.attrs.get("aria-current") == "page"]
        assert current == ["Workers"]
    assert "<script" not in menu  # a <details> menu: no script needed


# --- who may cancel or delete, and why not -------------------------------------------------------


@pytest.fixture
def alice(session: Session) -> int:
    """Accounts exist (alice, no admin): runs from before them have no owner."""
    user = accounts.create_user(
        session=session, username="alice", password=PASSWORD, is_admin=False
    )
    session.commit()
    return user.id


def test_runs_without_an_owner_say_why_there_is_no_cancel_or_delete(
    session: Session, alice: int
) -> None:
    orphan = make_experiment(session)
    orphan.status = Status.failed
    theirs = make_experiment(session)
    theirs.owner_id = accounts.create_user(
        session=session, username="bob", password=PASSWORD, is_admin=False
    ).id
    mine = make_experiment(session)
    mine.owner_id = alice
    session.commit()
    client = signed_in("alice")
    page = client.get(f"/experiments/{orphan.id}").text
    assert 'id="delete"' not in page and 'id="cancel"' not in page
    assert "No owner: created before accounts existed; only an admin can cancel or delete" in (
        by_id(page, "owner-note").text
    )
    note = by_id(client.get(f"/experiments/{theirs.id}").text, "owner-note").text
    assert note == "Launched by bob: only they or an admin can cancel or delete this experiment."
    own_page = client.get(f"/experiments/{mine.id}").text
    assert 'id="owner-note"' not in own_page and 'id="delete"' in own_page
    listed = client.get("/").text
    (cell,) = [e for e in elements(listed) if "no-owner" in e.attrs.get("class", "").split()]
    assert cell.text == "no owner" and "only an admin" in cell.attrs["title"]


# --- imported reports: their own digits, a model and settings -------------------------------------

TWO_DIGIT_REPORT = """              precision    recall  f1-score   support

         cat       0.80      0.40      0.53        10
         dog       0.60      0.90      0.72        10

    accuracy                           0.65        20
   macro avg       0.70      0.65      0.63        20
weighted avg       0.70      0.65      0.63        20
"""
FOUR_DIGIT_REPORT = """              precision    recall  f1-score   support

         cat     0.8000    0.4000    0.5333        10
         dog     0.6000    0.9000    0.7200        10

    accuracy                         0.6500        20
   macro avg     0.7000    0.6500    0.6267        20
weighted avg     0.7000    0.6500    0.6267        20
"""


def _import(client: TestClient, report: str, **fields: object) -> int:
    body = {"name": "study run", "report_text": report, **fields}
    response = client.post("/api/experiments/import", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _report_cells(html: str) -> list[str]:
    return [e.text for e in elements(html[html.index('id="report"') :]) if e.tag == "td"][:4]


def test_imported_scores_show_the_digits_the_report_had(client: TestClient) -> None:
    two = client.get(f"/experiments/{_import(client, TWO_DIGIT_REPORT)}").text
    assert _report_cells(two)[:3] == ["0.80", "0.40", "0.53"]
    facts = {e.attrs["data-fact"]: e.text for e in elements(two) if "data-fact" in e.attrs}
    assert (facts["test_accuracy"], facts["macro_f1"]) == ("65%", "0.63")
    four = client.get(f"/experiments/{_import(client, FOUR_DIGIT_REPORT)}").text
    assert _report_cells(four)[:3] == ["0.8000", "0.4000", "0.5333"]
    facts = {e.attrs["data-fact"]: e.text for e in elements(four) if "data-fact" in e.attrs}
    assert (facts["test_accuracy"], facts["macro_f1"]) == ("65.00%", "0.6267")
    listed = client.get("/?status=imported").text
    accuracies = [e.text for e in elements(listed) if e.attrs.get("data-column") == "test_accuracy"]
    assert sorted(accuracies) == ["65%", "65.00%"]


def test_an_import_with_a_model_and_settings_lists_with_trained_runs(
    client: TestClient, session: Session
) -> None:
    trained = make_experiment(session, learning_rate=0.001)
    settings = {"epochs": 20, "learning_rate": 0.001, "optimizer": "adam"}
    imported = _import(client, TWO_DIGIT_REPORT, model="custom_cnn", hyperparameters=settings)
    _import(client, TWO_DIGIT_REPORT)  # no model: not a custom_cnn
    found = client.get("/api/experiments", params={"model": "custom_cnn"}).json()
    assert {item["id"] for item in found["items"]} == {trained.id, imported}
    by_rate = client.get("/api/experiments", params={"hp.learning_rate": "0.001"}).json()
    assert {item["id"] for item in by_rate["items"]} == {trained.id, imported}
    detail = client.get(f"/api/experiments/{imported}").json()
    assert detail["status"] == "imported" and detail["model"] == "custom_cnn"
    assert detail["spec"]["hyperparameters"] == settings
    page = client.get(f"/experiments/{imported}").text
    assert by_id(page, "facts") and "Custom CNN" in page
    shown = {e.attrs["data-setting"]: e.text for e in elements(page) if "data-setting" in e.attrs}
    assert shown == {"epochs": "20", "learning_rate": "0.001", "optimizer": "adam"}


def test_bad_import_settings_are_refused_naming_the_field(client: TestClient) -> None:
    cases = [
        ({"model": "not a model name!"}, "model"),
        ({"hyperparameters": {"bad key": 1}}, "hyperparameters"),
        ({"hyperparameters": {"depth": [1, 2]}}, "hyperparameters.depth"),
    ]
    for fields, where in cases:
        body = {"name": "x", "report_text": TWO_DIGIT_REPORT, **fields}
        response = client.post("/api/experiments/import", json=body)
        assert response.status_code == 422, fields
        assert any(e["field"].startswith(where) for e in response.json()["errors"]), response.text
    assert client.get("/api/experiments").json()["total"] == 0


def test_the_import_form_takes_a_model_and_name_value_settings(client: TestClient) -> None:
    values = {
        "name": "study cnn", "report_text": TWO_DIGIT_REPORT, "model": "custom_cnn",
        "hyperparameters": "epochs=20\nlearning_rate=0.001\noptimizer = adam\nbatch_norm=true",
    }  # fmt: skip
    response = post_form(client, "/experiments/import", values, follow_redirects=False)
    assert response.status_code == 303
    experiment_id = response.headers["location"].rsplit("/", 1)[1]
    spec = client.get(f"/api/experiments/{experiment_id}").json()["spec"]
    assert spec["hyperparameters"] == {
        "epochs": 20, "learning_rate": 0.001, "optimizer": "adam", "batch_norm": True,
    }  # fmt: skip
    values["hyperparameters"] = '{"epochs": 20'
    refused = post_form(client, "/experiments/import", values)
    assert refused.status_code == 422
    assert field_errors(refused.text)["hyperparameters"].startswith("not a JSON object")
    values["hyperparameters"] = "epochs 20"
    refused = post_form(client, "/experiments/import", values)
    assert field_errors(refused.text)["hyperparameters"] == "expected name=value, got 'epochs 20'"
    assert client.get("/api/experiments").json()["total"] == 1


# --- the launch form: what launch.js needs to carry settings across models -----------------------


def test_every_setting_input_names_its_default_and_label(client: TestClient) -> None:
    html = client.get("/experiments/new").text
    settings = [e for e in elements(html) if e.attrs.get("name", "").startswith(("hp.", "vary."))]
    assert settings and all("data-default" in e.attrs and e.attrs["data-label"] for e in settings)
    epochs = by_id(html, "hp-efficientnet_b0-image_size")
    assert (epochs.attrs["data-default"], epochs.attrs["data-label"]) == ("128", "Image Size")
    assert by_id(html, "model-switch-note").attrs.get("hidden") is not None
