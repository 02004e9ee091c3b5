"""The runs table at scale: any hyperparameter or metric as a column, sorted and filtered on in
the API and on the page, sweeps as a filter and as groups, and bulk tag, cancel and delete
with the owner's permission checked per experiment."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status
from app.core.report_import import ImportedReport, parse_classification_report
from app.core.schemas import parse_spec
from app.core.sweeps import expand, parse_sweep
from app.services import accounts
from app.services.delete import delete
from app.services.runs_table import SortedColumns
from tests.support.clients import PASSWORD, bearer, make_client, signed_in
from tests.support.factories import claim, spec_data
from tests.support.pages import elements

pytestmark = pytest.mark.both_databases


def run(
    session: Session,
    name: str,
    val_accuracies: list[float] = (),  # type: ignore[assignment]
    owner_id: int | None = None,
    **hyperparameters: Any,
) -> Experiment:
    """A run with these settings and, when given, epochs with these validation accuracies."""
    experiment = crud.create_experiment(
        session=session,
        spec=parse_spec({**spec_data(**hyperparameters), "name": name}),
        owner_id=owner_id,
    )
    session.commit()
    if val_accuracies:
        lease = claim(session, experiment.id)
        for epoch, accuracy in enumerate(val_accuracies, start=1):
            values = {"val_accuracy": accuracy, "accuracy": accuracy}
            crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
        session.commit()
    return experiment


@pytest.fixture
def runs(session: Session) -> dict[str, int]:
    """Three CNNs with different learning rates and best val accuracies, and an imported
    report, which has neither."""
    made = {
        "slow": run(session, "slow", [0.30, 0.55, 0.50], learning_rate=0.0001, batch_norm=True),
        "fast": run(session, "fast", [0.40, 0.45], learning_rate=0.003),
        "middle": run(session, "middle", [0.60, 0.70], learning_rate=0.001),
    }
    imported = crud.import_experiment(
        session=session, name="paper", tags=[], notes="", imported=_imported_report()
    )
    session.commit()
    return {**{name: e.id for name, e in made.items()}, "paper": imported.id}


def _imported_report() -> ImportedReport:
    return parse_classification_report("              precision    recall  f1-score   support\n\n"
                        "         cat       0.90      0.90      0.90         4\n"
                        "         dog       0.90      0.90      0.90         4\n\n"
                        "    accuracy                           0.90         8\n"
                        "   macro avg       0.90      0.90      0.90         8\n"
                        "weighted avg       0.90      0.90      0.90         8\n")  # fmt: skip


def names(client: TestClient, **params: str) -> list[str]:
    response = client.get("/api/experiments", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def page_names(client: TestClient, **params: str) -> list[str]:
    html = client.get("/", params=params).text
    return [e.text for e in elements(html) if "row-link" in e.attrs.get("class", "")]


def column_cells(html: str, column: str) -> list[str]:
    return [e.text.strip() for e in elements(html) if e.attrs.get("data-column") == column]


def test_sort_by_a_hyperparameter_and_by_best_val_accuracy(
    backend: str, runs: dict[str, int]
) -> None:
    client = make_client()
    ascending = names(client, sort="hp.learning_rate", order="asc")
    assert ascending == ["slow", "middle", "fast", "paper"]  # no value: last either way
    assert names(client, sort="hp.learning_rate") == ["fast", "middle", "slow", "paper"]
    best = names(client, sort="best_val_accuracy")
    assert best == ["middle", "slow", "fast", "paper"]
    assert names(client, sort="best_val_accuracy", order="asc") == ["fast", "slow", "middle",
                                                                     "paper"]  # fmt: skip
    listed = client.get("/api/experiments", params={"sort": "best_val_accuracy"}).json()
    assert [item["best_val_accuracy"] for item in listed["items"]] == [0.70, 0.55, 0.45, None]
    assert names(client, sort="hp.batch_norm", order="desc")[0] == "slow"

    # The page sorts alike and shows the column it sorts by, with a link that flips it.
    html = client.get("/", params={"sort": "hp.learning_rate", "order": "asc"}).text
    assert page_names(client, sort="hp.learning_rate", order="asc") == ascending
    assert column_cells(html, "hp.learning_rate") == ["0.0001", "0.001", "0.003", "—"]
    header = next(e for e in elements(html) if e.attrs.get("data-sort") == "hp.learning_rate")
    assert "order=desc" in header.attrs["href"]
    chosen = client.get("/", params={"cols": "best_val_accuracy,hp.nope"}).text
    assert column_cells(chosen, "best_val_accuracy") == ["—", "70.00%", "45.00%", "55.00%"]


def test_filter_by_a_hyperparameter_or_a_metric(backend: str, runs: dict[str, int]) -> None:
    client = make_client()
    assert names(client, **{"hp.learning_rate": "0.001"}) == ["middle"]
    assert names(client, **{"hp.learning_rate.min": "0.001"}) == ["middle", "fast"]
    bounds = {"hp.learning_rate.min": "0.0001", "hp.learning_rate.max": "1e-3"}
    assert names(client, **bounds) == ["middle", "slow"]
    assert names(client, **{"best_val_accuracy.min": "0.5"}) == ["middle", "slow"]
    assert names(client, **{"hp.batch_norm": "true"}) == ["slow"]
    assert names(client, **{"hp.optimizer": "adam", "sort": "name", "order": "asc"}) == [
        "fast", "middle", "slow"
    ]  # fmt: skip
    # The page filters alike, shows the filter as a chip that removes it, and keeps it in
    # its sort links.
    html = client.get("/", params={"hp.learning_rate.min": "0.001"}).text
    assert page_names(client, **{"hp.learning_rate.min": "0.001"}) == ["middle", "fast"]
    chip = next(e for e in elements(html) if e.attrs.get("data-filter") == "hp.learning_rate.min")
    assert "learning_rate.min" not in chip.attrs["href"]
    name_header = next(e for e in elements(html) if e.attrs.get("data-sort") == "name")
    assert "hp.learning_rate.min=0.001" in name_header.attrs["href"]


def test_an_unknown_or_bad_column_is_a_422_naming_it(backend: str, runs: dict[str, int]) -> None:
    client = make_client()
    for params, field in (
        ({"sort": "hp.nope"}, "sort"),
        ({"sort": "best_nonsense"}, "sort"),
        ({"hp.nope": "1"}, "hp.nope"),
        ({"hp.learning_rate": "fast"}, "hp.learning_rate"),
        ({"hp.optimizer.min": "1"}, "hp.optimizer.min"),
        ({"best_val_accuracy.max": "nan"}, "best_val_accuracy.max"),
        ({"sweep": "0"}, "sweep"),
    ):
        response = client.get("/api/experiments", params=params)
        assert response.status_code == 422, (params, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text
        # The page drops what it cannot read and lists the rest.
        assert client.get("/", params=params).status_code == 200


def test_the_sweep_filter_and_groups(backend: str, session: Session) -> None:
    data = {
        "name": "lr sweep", "model": "custom_cnn", "seeds": [0, 1],
        "hyperparameters": {"epochs": 2, "train_size": 200, "test_size": 100},
        "grid": {"learning_rate": [0.001, 0.003]},
    }  # fmt: skip
    spec = parse_sweep(data)
    sweep, trials = crud.create_sweep(session=session, spec=spec, trials=expand(spec),
                                      owner_id=None)  # fmt: skip
    trials[0].status = Status.failed
    session.commit()
    lone = run(session, "lone")
    client = make_client()

    listed = client.get("/api/experiments", params={"sweep": str(sweep.id)}).json()
    assert listed["total"] == 4
    assert {item["id"] for item in listed["items"]} == {t.id for t in trials}
    assert all(item["sweep_id"] == sweep.id for item in listed["items"])
    assert names(client, sweep=str(sweep.id), **{"hp.learning_rate": "0.003"}) == [
        "lr sweep · learning_rate=0.003 · seed 1", "lr sweep · learning_rate=0.003 · seed 0",
    ]  # fmt: skip

    html = client.get("/", params={"group": "sweep"}).text
    groups = [e.attrs.get("data-sweep-group") for e in elements(html) if e.tag == "tbody"]
    assert groups == [str(sweep.id), None]  # the sweep's trials together, then the rest
    link = next(e for e in elements(html) if e.attrs.get("href") == f"/sweeps/{sweep.id}")
    assert "lr sweep" in link.text
    counts = next(e for e in elements(html) if "group-counts" in e.attrs.get("class", ""))
    assert "4 trials" in counts.text and "1 failed" in counts.text and "3 queued" in counts.text
    toggles = [e.attrs["aria-label"] for e in elements(html) if "data-group-toggle" in e.attrs]
    assert toggles == [f"Trials of sweep #{sweep.id}", "Runs outside any sweep"]  # not "▾"
    rows = [int(e.attrs["data-experiment"]) for e in elements(html) if "data-experiment" in e.attrs]
    assert rows == [*sorted((t.id for t in trials), reverse=True), lone.id]
    only = page_names(client, sweep=str(sweep.id))
    assert len(only) == 4 and "lone" not in only


@pytest.fixture
def team(session: Session, broker: redis.Redis) -> dict[str, Any]:
    """alice and bob, each with a token; alice owns a queued, a running and a finished run,
    bob a finished one."""
    users = {
        name: accounts.create_user(session=session, username=name, password=PASSWORD,
                                   is_admin=False)
        for name in ("alice", "bob")
    }  # fmt: skip
    tokens = {
        name: accounts.create_token(session=session, user=user, name="t", expires_at=None)
        for name, user in users.items()
    }
    session.commit()
    alice, bob = users["alice"].id, users["bob"].id
    queued = run(session, "a queued", owner_id=alice)
    running = run(session, "a running", [0.5], owner_id=alice)
    done = run(session, "a done", [0.5], owner_id=alice)
    done.status = Status.succeeded
    theirs = run(session, "b done", [0.5], owner_id=bob)
    theirs.status = Status.succeeded
    session.commit()
    ids = {"queued": queued.id, "running": running.id, "done": done.id, "theirs": theirs.id}
    return {"tokens": tokens, "ids": ids}


def outcomes(response: Any) -> dict[int, str]:
    assert response.status_code == 200, response.text
    return {item["id"]: item["outcome"] for item in response.json()["results"]}


def test_bulk_tag_cancel_and_delete_each_with_its_own_answer(
    backend: str, session: Session, team: dict[str, Any]
) -> None:
    ids, client = team["ids"], bearer(team["tokens"]["alice"])
    every = [ids["queued"], ids["running"], ids["done"], ids["theirs"], 999_999]

    tagged = client.post("/api/experiments/bulk", json={"ids": every, "action": "tag",
                                                        "tag": "keep"})  # fmt: skip
    assert outcomes(tagged) == {
        ids["queued"]: "done", ids["running"]: "done", ids["done"]: "done",
        ids["theirs"]: "forbidden", 999_999: "not_found",
    }  # fmt: skip
    again = client.post("/api/experiments/bulk", json={"ids": [ids["done"]], "action": "tag",
                                                       "tag": "keep"})  # fmt: skip
    assert outcomes(again) == {ids["done"]: "unchanged"}
    comma = client.post("/api/experiments/bulk", json={"ids": [ids["done"]], "action": "tag",
                                                       "tag": "a, b"})  # fmt: skip
    assert comma.status_code == 422  # its edit box would split it in two
    assert comma.json()["errors"][0] == {
        "field": "tag", "message": "write a tag on one line, with something visible in it and "
        "no comma (commas separate tags)"
    }  # fmt: skip
    assert names(client, tag="keep", sort="name", order="asc") == [
        "a done", "a queued", "a running"
    ]  # fmt: skip

    # Delete refuses what still runs; cancel stops it; then delete takes it.
    deleted = client.post("/api/experiments/bulk", json={"ids": every, "action": "delete"})
    assert outcomes(deleted) == {
        ids["queued"]: "conflict", ids["running"]: "conflict", ids["done"]: "done",
        ids["theirs"]: "forbidden", 999_999: "not_found",
    }  # fmt: skip
    cancelled = client.post("/api/experiments/bulk", json={"ids": every, "action": "cancel"})
    assert outcomes(cancelled) == {
        ids["queued"]: "done", ids["running"]: "done", ids["done"]: "not_found",
        ids["theirs"]: "forbidden", 999_999: "not_found",
    }  # fmt: skip
    session.expire_all()
    assert session.get(Experiment, ids["queued"]).status == Status.cancelled  # type: ignore[union-attr]
    assert session.get(Experiment, ids["running"]).status == Status.cancelled  # type: ignore[union-attr]
    theirs = session.get(Experiment, ids["theirs"])
    assert theirs is not None and theirs.tags == ["test"]  # bob's run: untouched throughout
    finished = [ids["queued"], ids["running"]]
    assert outcomes(
        client.post("/api/experiments/bulk", json={"ids": finished, "action": "cancel"})
    ) == dict.fromkeys(finished, "unchanged")
    assert outcomes(
        client.post("/api/experiments/bulk", json={"ids": finished, "action": "delete"})
    ) == dict.fromkeys(finished, "done")
    assert names(client) == ["b done"]


def test_bulk_requests_are_checked_before_anything_happens(
    backend: str, session: Session, team: dict[str, Any]
) -> None:
    ids, client = team["ids"], bearer(team["tokens"]["alice"])
    for body, field in (
        ({"ids": [ids["done"]], "action": "tag"}, "tag"),
        ({"ids": [ids["done"]], "action": "delete", "tag": "x"}, "tag"),
        ({"ids": [ids["done"]], "action": "tag", "tag": " "}, "tag"),
        ({"ids": [], "action": "cancel"}, "ids"),
        ({"ids": [0], "action": "cancel"}, "ids.0"),
        ({"ids": [ids["done"]], "action": "explode"}, "action"),
    ):
        response = client.post("/api/experiments/bulk", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field, response.text
    # A browser session must send the page's CSRF token, as for any write.
    browser = signed_in("alice")
    forged = browser.post("/api/experiments/bulk", json={"ids": [ids["done"]], "action": "delete"})
    assert forged.status_code == 403
    session.expire_all()
    assert session.get(Experiment, ids["done"]) is not None


def test_the_kept_order_of_a_hyperparameter_follows_every_insert_and_delete(
    backend: str, session: Session, runs: dict[str, int]
) -> None:
    """The web process keeps each hyperparameter's order between requests; it answers as the
    database does, including after a launch, and after the newest run is deleted and another
    launched (SQLite reuses its id)."""
    kept = SortedColumns()

    def same_as_the_database(**query: Any) -> None:
        for descending in (True, False):
            for offset in (0, 1, 3):
                arguments = {"sort": "hp.learning_rate", "descending": descending, **query}
                expected = crud.list_experiments(
                    session=session, limit=2, offset=offset, **arguments
                )
                answered = kept.list_experiments(session, limit=2, offset=offset, **arguments)
                assert [e.id for e in answered[0]] == [e.id for e in expected[0]], arguments
                assert answered[1] == expected[1]

    same_as_the_database()
    same_as_the_database(sort="hp.batch_norm")
    newest = run(session, "newest", learning_rate=0.5)
    same_as_the_database()
    assert kept.list_experiments(session, limit=1, offset=0, sort="hp.learning_rate")[0] == [newest]
    newest.status = Status.succeeded
    session.commit()
    delete(session, newest)
    replaced = run(session, "replaced", learning_rate=0.00001)
    same_as_the_database()
    smallest = kept.list_experiments(session, limit=1, offset=3, sort="hp.learning_rate")[0]
    assert smallest == [replaced]
    same_as_the_database(status="queued")  # filtered: the database sorts
