"""An evaluation written back as report text (app.core.report_export) imports as the same
report: the export -> import round trip of the CLI."""

from __future__ import annotations

from app.core.report_export import import_body, matrix_text, report_text
from app.core.report_import import parse_classification_report
from tests.support.factories import CIFAR10_CLASSES, cifar10_report
from tests.support.seed_reports import seed_report


def test_a_published_report_is_written_back_in_sklearns_layout_with_its_digits() -> None:
    from sklearn.metrics import classification_report

    printed = classification_report([0, 1, 1, 0], [0, 1, 0, 0], target_names=["a", "b b"])
    parsed = parse_classification_report(printed)
    assert report_text(parsed.report, parsed.classes) == printed.rstrip("\n") + "\n"
    seed = parse_classification_report(seed_report("custom-cnn"))
    written = report_text(seed.report, seed.classes)
    assert "  airplane       0.86      0.80      0.83      1000\n" in written  # not 0.8600
    assert parse_classification_report(written) == seed


def test_a_trained_report_with_its_matrix_imports_as_the_same_report() -> None:
    report = cifar10_report()
    matrix = [[7 if i == j else 1 if j == (i + 1) % 10 else 0 for j in range(10)]
              for i in range(10)]  # fmt: skip
    body = import_body(
        {"name": "run", "tags": ["a"], "notes": None},
        {"report": report, "classes": CIFAR10_CLASSES, "confusion_matrix": matrix},
    )
    assert body["name"] == "run" and body["tags"] == ["a"] and body["notes"] == ""
    parsed = parse_classification_report(body["report_text"], body["confusion_matrix_text"])
    assert parsed.report == report and parsed.classes == CIFAR10_CLASSES
    assert parsed.confusion_matrix == matrix and parsed.test_size == 80
    assert matrix_text([[1, 2], [3, 4]]) == "1 2\n3 4\n"
