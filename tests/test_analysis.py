"""Compare, import, gallery and annotations through the API, on a real database."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.report_import import parse_classification_report
from tests.support.factories import make_evaluated, make_experiment
from tests.support.seed_reports import seed_report

pytestmark = pytest.mark.both_databases


def predictions_with_accuracy(labels: list[int], wrong_every: int) -> list[int]:
    return [(label + 1) % 10 if i % wrong_every == 0 else label for i, label in enumerate(labels)]


LABELS = [i % 10 for i in range(400)]


@pytest.mark.parametrize(
    "name",
    [
        "custom-cnn",
        "efficientnetb2-transfer",
        "efficientnetb4-transfer",
        "efficientnetb2-fine-tuned",
    ],
)
def test_the_study_reports_import_exactly(client: TestClient, name: str) -> None:
    text = seed_report(name)
    response = client.post(
        "/api/experiments/import", json={"name": name, "report_text": text, "tags": ["study"]}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["status"], created["model"]) == ("imported", "imported")
    evaluation = client.get(f"/api/experiments/{created['id']}/evaluation").json()
    expected = parse_classification_report(text)
    assert evaluation["report"] == expected.report
    assert evaluation["accuracy"] == created["test_accuracy"] == expected.accuracy
    assert evaluation["test_size"] == 10000
    for line in text.splitlines()[2:12]:  # the ten class rows, number for number
        cls, precision, recall, f1, support = line.split()
        assert evaluation["report"][cls] == {
            "precision": float(precision), "recall": float(recall), "f1-score": float(f1),
            "support": float(support),
        }  # fmt: skip
    listed = client.get("/api/experiments", params={"model": "imported"}).json()
    assert listed["total"] == 1


def test_import_refuses_text_that_is_not_a_report(client: TestClient) -> None:
    response = client.post("/api/experiments/import", json={"name": "x", "report_text": "hello"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "report_text"
    assert client.get("/api/experiments").json()["total"] == 0


def test_compare_three_experiments(client: TestClient, session: Session) -> None:
    overfit = [{"loss": 1.0 - 0.1 * e, "accuracy": 0.5 + 0.05 * e,
                "val_loss": [1.0, 0.8, 0.7, 0.75, 0.9, 1.1][e], "val_accuracy": 0.6}
               for e in range(6)]  # fmt: skip
    a = make_evaluated(session, predictions_with_accuracy(LABELS, 4), LABELS, epochs=overfit)
    b = make_evaluated(session, predictions_with_accuracy(LABELS, 10), LABELS, learning_rate=0.01)
    c = make_evaluated(session, LABELS[:200], LABELS[:200], fingerprint="other", seed=3)
    ids = f"{a.id},{b.id},{c.id}"
    data = client.get("/api/compare", params={"ids": ids, "baseline": a.id}).json()
    assert [e["id"] for e in data["experiments"]] == [a.id, b.id, c.id]
    assert data["baseline_id"] == a.id
    assert len({e["color"] for e in data["experiments"]}) == 3
    rows = {row["row"]: row for row in data["per_class"]}
    assert list(rows)[-3:] == ["accuracy", "macro avg", "weighted avg"]
    assert rows["accuracy"]["values"][str(c.id)]["f1-score"] == 1.0
    assert rows["accuracy"]["best"]["f1-score"] == [c.id]
    assert rows["accuracy"]["delta"][str(b.id)]["f1-score"] == pytest.approx(0.9 - 0.75)
    assert set(data["hyperparameters"]["differing"]) == {"learning_rate", "seed"}
    warnings = " ".join(data["warnings"])
    assert "Different test-set sizes" in warnings and "Different seeds" in warnings
    pair_b, pair_c = data["significance"]
    # a is wrong on every 4th image, b on every 10th: b alone is right on 100 - 20 of them
    assert pair_b["b"] == b.id and pair_b["mcnemar"]["only_b_correct"] == 80
    assert pair_b["bootstrap"]["difference"] == pytest.approx(0.15)
    assert "not scored on the same test images" in pair_c["text"]
    assert pair_c["untested"] == "other_images" and "untested" not in pair_b
    diagnosis = data["diagnostics"][str(a.id)]
    assert diagnosis["best_epoch"] == 3
    assert "overfitting" in {f["kind"] for f in diagnosis["findings"]}
    assert len(data["curves"][str(a.id)]) == 6
    assert len(data["confusion_matrices"][str(a.id)]["matrix"]) == 10


def test_compare_with_chosen_baseline_and_bad_ids(client: TestClient, session: Session) -> None:
    a = make_evaluated(session, LABELS, LABELS)
    b = make_evaluated(session, LABELS, LABELS)
    data = client.get("/api/compare", params={"ids": f"{a.id},{b.id}", "baseline": b.id}).json()
    assert data["baseline_id"] == b.id
    assert data["warnings"] == []
    assert client.get("/api/compare", params={"ids": str(a.id)}).status_code == 422
    assert client.get("/api/compare", params={"ids": "1,x"}).status_code == 422
    missing = client.get("/api/compare", params={"ids": f"{a.id},999"})
    assert missing.status_code == 404 and "999" in missing.json()["detail"]


def test_gallery_lists_a_confusion_cell_and_serves_its_images(
    client: TestClient, session: Session
) -> None:
    predictions = predictions_with_accuracy(LABELS, 4)
    experiment = make_evaluated(session, predictions, LABELS, fingerprint="abc123")
    images = np.zeros((400, 32, 32, 3), np.uint8)
    images[:, :, :, 0] = np.arange(400)[:, None, None] % 256
    path = get_settings().test_images_path("abc123")
    path.parent.mkdir(parents=True)
    np.save(path, images)
    cell = client.get(
        f"/api/experiments/{experiment.id}/gallery", params={"true_class": 0, "predicted_class": 1}
    ).json()
    expected = [i for i in range(400) if LABELS[i] == 0 and predictions[i] == 1]
    assert cell["total"] == len(expected) == 20  # class 0: every 10th image; wrong: every 4th
    assert sorted(item["position"] for item in cell["items"]) == expected
    confidences = [item["confidence"] for item in cell["items"]]
    assert confidences == sorted(confidences, reverse=True)
    assert (cell["true_class"], cell["predicted_class"]) == ("class0", "class1")
    png = client.get(cell["items"][0]["image_url"])
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "private, max-age=86400"  # no shared cache keeps it
    position = cell["items"][0]["position"]
    with Image.open(io.BytesIO(png.content)) as picture:
        assert np.asarray(picture)[0, 0, 0] == position % 256
    assert client.get(f"/api/experiments/{experiment.id}/test-images/400.png").status_code == 404
    bad = client.get(
        f"/api/experiments/{experiment.id}/gallery", params={"true_class": 1, "predicted_class": 10}
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["predicted_class"]
    # ...and the schema says so: schemathesis sent 2147483646 as valid and got the 422.
    parameters = client.get("/openapi.json").json()["paths"][
        "/api/experiments/{experiment_id}/gallery"
    ]["get"]["parameters"]
    bounds = {p["name"]: (p["schema"]["minimum"], p["schema"]["maximum"]) for p in parameters
              if p["name"].endswith("_class")}  # fmt: skip
    assert bounds == {"true_class": (0, 9), "predicted_class": (0, 9)}


def test_patch_edits_tags_and_notes_only(client: TestClient, session: Session) -> None:
    experiment = make_experiment(session)
    response = client.patch(
        f"/api/experiments/{experiment.id}", json={"tags": ["keep", "b"], "notes": "lr too high"}
    )
    assert response.status_code == 200
    assert response.json()["tags"] == ["keep", "b"] and response.json()["notes"] == "lr too high"
    refused = client.patch(f"/api/experiments/{experiment.id}", json={"status": "succeeded"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "status"
    found = client.get("/api/experiments", params={"q": "too high"}).json()
    assert [item["id"] for item in found["items"]] == [experiment.id]


def test_list_sorts_by_accuracy_with_unfinished_last(client: TestClient, session: Session) -> None:
    low = make_evaluated(session, predictions_with_accuracy(LABELS, 2), LABELS)
    high = make_evaluated(session, LABELS, LABELS)
    queued = make_experiment(session)
    for order, expected in (("desc", [high.id, low.id, queued.id]),
                            ("asc", [low.id, high.id, queued.id])):  # fmt: skip
        page = client.get("/api/experiments", params={"sort": "test_accuracy", "order": order})
        assert [item["id"] for item in page.json()["items"]] == expected
    assert client.get("/api/experiments", params={"sort": "colour"}).status_code == 422


def test_imported_reports_add_no_hyperparameter_differences(
    client: TestClient, session: Session
) -> None:
    trained = make_evaluated(session, LABELS, LABELS)
    other = make_evaluated(session, LABELS, LABELS)
    queued = make_experiment(session)
    text = seed_report("custom-cnn")
    imported = client.post(
        "/api/experiments/import", json={"name": "study", "report_text": text}
    ).json()
    ids = f"{trained.id},{other.id},{imported['id']},{queued.id}"
    data = client.get("/api/compare", params={"ids": ids}).json()
    assert data["hyperparameters"]["differing"] == []
    assert data["hyperparameters"]["all"]["epochs"][str(imported["id"])] is None
    texts = [pair["text"] for pair in data["significance"]]
    assert "tiny cnn has no evaluation yet" in texts[-1]
