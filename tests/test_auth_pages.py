"""Pages with accounts: sign in and back, CSRF on every form, and who sees which controls.

Through the real app on SQLite (TestClient, no broker): ``enqueue_training`` records ids.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status
from app.services import accounts, outbox
from tests.support.clients import PASSWORD, login_token, make_client, signed_in
from tests.support.factories import make_experiment
from tests.support.pages import (
    XSS,
    by_id,
    csrf_token,
    described_input,
    description,
    elements,
    error_summary,
    form,
    post_form,
    report_text,
)

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr(outbox, "enqueue_training", ids.append)
    return ids


@pytest.fixture
def team(session: Session) -> dict[str, int]:
    """alice and bob (users) and root (an admin), by id."""
    users = {}
    for name, admin in (("alice", False), ("bob", False), ("root", True)):
        user = accounts.create_user(
            session=session, username=name, password=PASSWORD, is_admin=admin
        )
        users[name] = user.id
    session.commit()
    return users


def owned(session: Session, owner_id: int, status: Status = Status.failed) -> Experiment:
    experiment = make_experiment(session)
    experiment.owner_id = owner_id
    experiment.status = status
    session.commit()
    return experiment


def ids(html: str) -> set[str]:
    return {e.attrs["id"] for e in elements(html) if "id" in e.attrs}


# --- signing in ----------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_and_back(
    team: dict[str, int], session: Session
) -> None:
    a, b = owned(session, team["alice"]), owned(session, team["bob"])
    anonymous = make_client()
    pages = ["/", "/?owner=me&q=x", "/experiments/new", f"/experiments/new?from={a.id}",
             "/experiments/import", f"/experiments/{a.id}", f"/compare?ids={a.id},{b.id}",
             f"/compare.csv?ids={a.id},{b.id}", "/workers"]  # fmt: skip
    for page in pages:
        response = anonymous.get(page, follow_redirects=False)
        assert response.status_code == 303, page
        assert response.headers["location"] == f"/login?next={quote(page, safe='')}", page
    fragments = [f"/experiments/{a.id}/events", f"/experiments/{a.id}/diagnostics",
                 f"/experiments/{a.id}/evaluation", "/workers/live",
                 f"/compare/live?ids={a.id},{b.id}",
                 f"/compare/difference?a={a.id}&b={b.id}"]  # fmt: skip
    for fragment in fragments:
        assert anonymous.get(fragment).status_code == 401, fragment
    target = f"/experiments/new?from={a.id}"
    login = anonymous.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "next": target,
              "csrf_token": login_token(anonymous, f"/login?next={quote(target)}")},
        follow_redirects=False,
    )  # fmt: skip
    assert (login.status_code, login.headers["location"]) == (303, target)
    assert anonymous.get(target).status_code == 200
    for page in pages:
        assert anonymous.get(page).status_code == 200, page
    assert anonymous.get(f"/experiments/{a.id}/diagnostics").status_code == 200


def test_a_form_post_before_sign_in_creates_nothing(
    team: dict[str, int], session: Session, enqueued: list[int]
) -> None:
    anonymous = make_client()
    for url in ("/experiments/new", "/presets/quick-custom-cnn/launch", "/experiments/import"):
        response = anonymous.post(url, data=form(), follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert crud.list_experiments(session=session)[1] == 0 and enqueued == []


def test_the_nav_shows_who_is_signed_in_and_signs_out(team: dict[str, int]) -> None:
    alice = signed_in("alice")
    html = alice.get("/").text
    assert by_id(html, "account").tag == "div"
    assert "alice" in html and "admin</span>" not in html
    logout = next(e for e in elements(html) if e.tag == "form" and e.attrs["action"] == "/logout")
    assert logout.attrs["method"] == "post"
    assert "admin</span>" in signed_in("root").get("/").text
    refused = alice.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403 and "Nothing was changed" in refused.text
    assert alice.get("/", follow_redirects=False).status_code == 200  # still signed in
    response = alice.post("/logout", data={"csrf_token": csrf_token(alice)}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert alice.get("/", follow_redirects=False).status_code == 303


def test_open_access_is_noted_in_the_nav(data_dir: object) -> None:
    html = make_client().get("/").text
    assert '<span class="account-open"' in html and ">open access</span>" in html
    assert 'action="/logout"' not in html


def test_login_next_stays_on_this_site_and_is_escaped(team: dict[str, int]) -> None:
    client = make_client()
    for target, kept in (
        ("/experiments/3?x=1", "/experiments/3?x=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
    ):
        html = client.get("/login", params={"next": target}).text
        assert by_id(html, "login-next").attrs["value"] == kept, target
    html = client.get("/login", params={"next": f"/{XSS}"}).text
    assert XSS not in html and ESCAPED in html
    refused = client.post(
        "/login", data={"username": XSS, "password": "x", "csrf_token": login_token(client)}
    )
    assert refused.status_code == 401 and "Wrong username or password." in refused.text
    assert XSS not in refused.text and ESCAPED in refused.text  # kept, as text


@pytest.mark.parametrize(
    ("fields", "box", "words"),
    [
        ({"username": "a" * 65, "password": "x"}, "username", "give 1 to 64 characters."),
        ({"username": "", "password": "x"}, "username", "give 1 to 64 characters."),
        ({"username": "alice"}, "password", "give 1 to 1024 characters."),
        ({"username": "alice", "password": "x" * 1025}, "password", "give 1 to 1024 characters."),
    ],
)
def test_a_sign_in_form_missing_or_over_long_is_drawn_again_saying_which_box(
    fields: dict[str, str], box: str, words: str
) -> None:
    """It answered with the API's JSON 422, which a browser shows as raw text. The box is
    marked invalid and described by the message; the summary above links to it."""
    client = make_client()
    refused = client.post("/login", data={**fields, "csrf_token": login_token(client)})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    field = described_input(refused.text, box)
    assert field.attrs["id"] == box and description(refused.text, field) == words
    assert error_summary(refused.text)[1] == [f"#{box}"]
    assert by_id(refused.text, "login-next").attrs["value"] == "/"


def test_a_wrong_password_is_said_in_the_summary_which_takes_the_focus(
    team: dict[str, int],
) -> None:
    """It names no one box, so it marks none; the summary is focused, not the password box."""
    client = make_client()
    data = {"username": "alice", "password": "wrong", "csrf_token": login_token(client)}
    html = client.post("/login", data=data).text
    summary, links = error_summary(html)
    assert summary.attrs["role"] == "alert" and links == []
    assert "Wrong username or password." in html
    assert not any("aria-invalid" in e.attrs for e in elements(html))
    assert [e.attrs.get("id") for e in elements(html) if "autofocus" in e.attrs] == [
        "error-summary"
    ]


# --- CSRF on forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "forged"])
def test_form_posts_without_the_session_token_are_refused(
    team: dict[str, int], session: Session, enqueued: list[int], token: str | None
) -> None:
    alice = signed_in("alice")
    extra = {} if token is None else {"csrf_token": token}
    imported = {"name": "study", "report_text": report_text([i % 10 for i in range(400)])}
    for url, data in (("/experiments/new", form()), ("/presets/quick-custom-cnn/launch", {}),
                      ("/experiments/import", imported)):  # fmt: skip
        response = alice.post(url, data={**data, **extra}, follow_redirects=False)
        assert response.status_code == 403, url
        assert "text/html" in response.headers["content-type"]
        assert "security token" in response.text and "Nothing was changed" in response.text
    assert crud.list_experiments(session=session)[1] == 0 and enqueued == []


def test_forms_are_refused_without_the_token_when_open_too(
    session: Session, enqueued: list[int]
) -> None:
    client = make_client()
    assert client.post("/experiments/new", data=form()).status_code == 403
    assert post_form(client, "/experiments/new", form()).status_code == 200
    assert crud.list_experiments(session=session)[1] == 1


def test_every_form_on_a_page_carries_the_token(team: dict[str, int]) -> None:
    alice = signed_in("alice")
    token = csrf_token(alice)
    for url in ("/experiments/new", "/experiments/import", "/"):
        html = alice.get(url).text
        forms = [e for e in elements(html) if e.tag == "form" and e.attrs.get("method") == "post"]
        assert forms, url
        hidden = [e for e in elements(html) if e.attrs.get("name") == "csrf_token"]
        assert len(hidden) == len(forms), url
        assert {e.attrs["value"] for e in hidden} == {token}, url


# --- ownership -----------------------------------------------------------------------------------


def test_launches_and_imports_belong_to_who_made_them(
    team: dict[str, int], session: Session, enqueued: list[int]
) -> None:
    alice = signed_in("alice")
    imported = {"name": "study", "report_text": report_text([i % 10 for i in range(400)])}
    for url, data in (("/experiments/new", form()), ("/presets/quick-custom-cnn/launch", {}),
                      ("/experiments/import", imported)):  # fmt: skip
        response = post_form(alice, url, data, follow_redirects=False)
        assert response.status_code == 303, url
    experiments, total = crud.list_experiments(session=session)
    assert total == 3 and {e.owner_name for e in experiments} == {"alice"}
    assert len(enqueued) == 2


CONTROLS = {"cancel", "retry", "delete"}


def test_only_the_owner_or_an_admin_gets_the_controls(
    team: dict[str, int], session: Session
) -> None:
    failed = owned(session, team["alice"])
    running = owned(session, team["alice"], Status.running)
    alice, bob, root = (signed_in(name) for name in ("alice", "bob", "root"))
    for client, allowed in ((alice, True), (root, True), (bob, False)):
        for experiment in (failed, running):
            html = client.get(f"/experiments/{experiment.id}").text
            assert (CONTROLS <= ids(html)) is allowed
            assert (CONTROLS & ids(html) == set()) is not allowed
            assert (f'data-annotate="{experiment.id}"' in html) is allowed
            assert by_id(html, "owner").text == "alice"
            assert by_id(html, "relaunch").tag == "a"  # anyone may launch a copy
        listing = client.get("/").text
        assert (f'data-annotate-open="{failed.id}"' in listing) is allowed
    html = alice.get(f"/experiments/{failed.id}").text
    shown = {name for name in CONTROLS if "hidden" not in by_id(html, name).attrs}
    assert shown == {"retry", "delete"}
    html = alice.get(f"/experiments/{running.id}").text
    assert {name for name in CONTROLS if "hidden" not in by_id(html, name).attrs} == {"cancel"}


def test_the_list_has_owners_and_a_mine_filter(team: dict[str, int], session: Session) -> None:
    mine, theirs = owned(session, team["alice"]), owned(session, team["bob"])
    alice = signed_in("alice")
    html = alice.get("/").text
    owners = {e.text for e in elements(html) if "owner-link" in e.attrs.get("class", "")}
    assert owners == {"alice", "bob"}
    options = [e.attrs["value"] for e in elements(html) if e.tag == "option"]
    assert "me" in options
    rows = [e.attrs["data-experiment"] for e in elements(alice.get("/?owner=me").text)
            if e.tag == "tr" and "data-experiment" in e.attrs]  # fmt: skip
    assert rows == [str(mine.id)]
    rows = [e.attrs["data-experiment"] for e in elements(alice.get("/?owner=bob").text)
            if e.tag == "tr" and "data-experiment" in e.attrs]  # fmt: skip
    assert rows == [str(theirs.id)]


def test_open_access_has_no_owner_column(session: Session) -> None:
    make_experiment(session)
    html = make_client().get("/").text
    assert "owner-filter" not in html and 'data-column="owner"' not in html
    assert "data-annotate-open" in html  # open: everyone may annotate
