"""Pasted classification_report text -> sklearn's output_dict, exactly as written.

The original study's four published reports must import to the digit; sklearn's own output
round-trips at any ``digits``; bad pastes fail with the offending line in the message.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import classification_report, confusion_matrix

from app.core.models import IMPORTED_MODEL
from app.core.report_import import parse_classification_report, parse_confusion_matrix
from app.core.zoo import MODELS
from tests.support.seed_reports import SEED_REPORTS, seed_report

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SEED_ACCURACY = {
    "custom-cnn.txt": 0.82,
    "efficientnetb2-transfer.txt": 0.90,
    "efficientnetb4-transfer.txt": 0.89,
    "efficientnetb2-fine-tuned.txt": 0.94,
}
NUMBER = re.compile(r"\d+\.\d+|\d+")


def _expected_from_text(text: str) -> dict[str, Any]:
    """An independent reading of the text: each line's name and its numbers, by regex."""
    expected: dict[str, Any] = {}
    for line in text.splitlines()[1:]:
        numbers = NUMBER.findall(line)
        if not numbers:
            continue
        name = line[: line.index(numbers[0])].strip()  # seed class names hold no digits
        if name == "accuracy":
            expected["accuracy"] = (float(numbers[0]), float(numbers[1]))
        else:
            values = [float(number) for number in numbers[-4:]]
            expected[name] = dict(
                zip(("precision", "recall", "f1-score", "support"), values, strict=True)
            )
    return expected


def test_all_four_seed_reports_are_present() -> None:
    assert sorted(path.name for path in SEED_REPORTS.glob("*.txt")) == sorted(SEED_ACCURACY)


@pytest.mark.parametrize("name", sorted(SEED_ACCURACY))
def test_seed_report_parses_exactly(name: str) -> None:
    text = seed_report(name)
    imported = parse_classification_report(text)
    expected = _expected_from_text(text)
    assert imported.classes == CIFAR10
    assert list(imported.report) == [*CIFAR10, "accuracy", "macro avg", "weighted avg"]
    assert imported.report["accuracy"] == imported.accuracy == SEED_ACCURACY[name]
    assert expected.pop("accuracy") == (SEED_ACCURACY[name], 10000.0)
    assert imported.test_size == 10000
    for key, values in expected.items():
        assert imported.report[key] == values, key
    for label in CIFAR10:
        assert imported.report[label]["support"] == 1000.0
    assert imported.confusion_matrix is None


def test_seed_report_spot_values() -> None:
    report = parse_classification_report(seed_report("custom-cnn.txt")).report
    assert report["cat"] == {"precision": 0.70, "recall": 0.61, "f1-score": 0.65, "support": 1000.0}
    assert report["weighted avg"]["f1-score"] == 0.82
    fine_tuned = parse_classification_report(seed_report("efficientnetb2-fine-tuned.txt"))
    assert fine_tuned.report["airplane"]["f1-score"] == 0.95


def test_seed_report_survives_windows_endings_tabs_and_indentation() -> None:
    text = seed_report("efficientnetb4-transfer.txt")
    mangled = "\n\n" + "\r\n".join(
        "\t" + line.strip().replace("      ", "\t") for line in text.splitlines()
    )
    mangled = mangled.replace("  ", "\xa0 ") + "\r\n\r\n"
    assert parse_classification_report(mangled) == parse_classification_report(text)


def test_notebook_string_repr_and_preamble_are_accepted() -> None:
    text = seed_report("custom-cnn.txt")
    parsed = parse_classification_report(text)
    assert parse_classification_report(repr(text)) == parsed
    assert parse_classification_report(f"Out[3]: {text!r}") == parsed
    assert parse_classification_report("Out[7]:\nCustom CNN, test set\n" + text) == parsed


def _random_labels(seed: int, classes: int = 5, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    predicted = np.where(rng.random(n) < 0.6, truth, rng.integers(0, classes, n))
    return truth, predicted


@pytest.mark.parametrize("digits", [2, 4])
@pytest.mark.parametrize(
    "names", [None, ["cat", "sports car", "big   truck", "class 7", "9"]], ids=["numeric", "words"]
)
def test_round_trip_against_sklearn(digits: int, names: list[str] | None) -> None:
    truth, predicted = _random_labels(seed=digits)
    options: dict[str, Any] = {"target_names": names, "digits": digits}
    text = classification_report(truth, predicted, **options)
    exact = classification_report(truth, predicted, output_dict=True, **options)
    imported = parse_classification_report(text)
    assert imported.classes == (names or ["0", "1", "2", "3", "4"])
    assert list(imported.report) == list(exact)
    for key, value in exact.items():
        if isinstance(value, dict):
            assert imported.report[key] == {k: round(v, digits) for k, v in value.items()}, key
        else:
            assert imported.report[key] == round(value, digits)
    assert imported.test_size == len(truth)


def test_round_trip_multilabel_micro_and_samples_averages() -> None:
    rng = np.random.default_rng(3)
    truth, predicted = rng.integers(0, 2, (60, 3)), rng.integers(0, 2, (60, 3))
    text = classification_report(truth, predicted, digits=3, zero_division=0)
    exact = classification_report(truth, predicted, output_dict=True, zero_division=0)
    imported = parse_classification_report(text)
    assert list(imported.report) == list(exact)
    assert imported.report["samples avg"]["f1-score"] == round(exact["samples avg"]["f1-score"], 3)
    assert imported.accuracy == round(exact["micro avg"]["f1-score"], 3)
    assert imported.test_size == exact["micro avg"]["support"]


def test_10_nan_scores_are_refused_naming_the_line() -> None:
    """NaN cannot be stored as JSON on PostgreSQL nor answered as JSON: the import says how
    to print the report instead."""
    text = classification_report([0, 0, 1], [0, 0, 0], zero_division=np.nan)
    with pytest.raises(ValueError, match=r"line 4: precision is nan.*zero_division=0"):
        parse_classification_report(text)


def test_confusion_matrix_as_numpy_prints_it() -> None:
    truth, predicted = _random_labels(seed=5)
    text = classification_report(truth, predicted)
    matrix = confusion_matrix(truth, predicted)
    imported = parse_classification_report(text, str(matrix))
    assert imported.confusion_matrix == matrix.tolist()
    assert parse_classification_report(text, repr(matrix)).confusion_matrix == matrix.tolist()
    assert parse_classification_report(text, str(matrix.tolist())).confusion_matrix == (
        matrix.tolist()
    )
    plain = "\r\n".join(",".join(str(v) for v in row) for row in matrix)
    assert parse_classification_report(text, plain).confusion_matrix == matrix.tolist()
    assert parse_classification_report(text, "  \n").confusion_matrix is None


def test_confusion_matrix_wrapped_rows_stay_whole() -> None:
    classes = [str(i) for i in range(12)]
    matrix = np.full((12, 12), 1000) + np.eye(12, dtype=int) * 9000
    text = np.array2string(matrix, max_line_width=40)
    assert text.count("\n") > 11  # numpy wrapped each row over several lines
    assert parse_confusion_matrix(text, classes) == matrix.tolist()


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ("[[1 2]\n [3 4]]", "expected 5 rows of 5"),
        ("[[1 2 3 4 5]]", "expected 5 rows of 5"),
        ("[[80 2 ... 3]]", "shortened"),
        ("[[1 2 3 4 5]\n ...\n [1 2 3 4 5]]", "shortened"),
        ("[]", "got no rows"),
        ("1 2 x", "'x' is not a count"),
        ("1 -2", "'-2' is not a count"),
        ("[[1 2]] oops", "outside the"),
    ],
)
def test_bad_confusion_matrix(matrix: str, message: str) -> None:
    truth, predicted = _random_labels(seed=6)
    with pytest.raises(ValueError, match=message):
        parse_classification_report(classification_report(truth, predicted), matrix)


def test_confusion_matrix_rows_must_match_supports() -> None:
    truth, predicted = _random_labels(seed=7)
    transposed = confusion_matrix(truth, predicted).T
    with pytest.raises(
        ValueError, match=r"row for '\d' sums to \d+ but the report's support for it is"
    ):
        parse_classification_report(classification_report(truth, predicted), str(transposed))


HEADER = "              precision    recall  f1-score   support\n\n"
ROWS = "           a       0.50      0.50      0.50         2\n"
SUMMARY = (
    "\n    accuracy                           0.50         2\n"
    "   macro avg       0.50      0.50      0.50         2\n"
    "weighted avg       0.50      0.50      0.50         2\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        (ROWS + SUMMARY, r"line 1: expected the header .* got: 'a +0\.50"),
        (HEADER + SUMMARY, "no class rows"),
        (HEADER + ROWS + "           b       0.50      0.50\n" + SUMMARY, r"line 4: .*'b +0\.50"),
        (HEADER + ROWS + ROWS + SUMMARY, "'a' appears twice"),
        (HEADER + ROWS.replace("0.50         2", "0.50       2.5"), "support must be a whole"),
        (HEADER + ROWS.replace("0.50      0.50", "0.50      50.0", 1), "outside 0-1"),
        (HEADER + ROWS + SUMMARY.replace("    accuracy", "    accuracy  0.5"), "line 5"),
        (HEADER + ROWS + SUMMARY.split("\n   macro")[0], "'macro avg' row"),
        (HEADER + ROWS + "\n   macro avg  0.5 0.5 0.5 2\nweighted avg 0.5 0.5 0.5 2", "accuracy"),
        (HEADER + ROWS + SUMMARY.replace("2\n   macro", "3\n   macro"), "add up to 2"),
    ],
)
def test_bad_reports_name_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_classification_report(text)


def test_minimal_valid_report() -> None:
    imported = parse_classification_report(HEADER + ROWS + SUMMARY)
    assert imported.classes == ["a"]
    assert (imported.accuracy, imported.test_size) == (0.5, 2)


def test_1_runs_of_spaces_parse_in_linear_time() -> None:
    """The row regex backtracked over runs of spaces: 99,000 of them took minutes."""
    for text in (
        "precision recall f1-score support\na" + " " * 100_000 + "b",
        HEADER + "a" + " " * 100_000 + "0.5 0.5 0.5 2",
        HEADER + "a 0.5" + " 0.5" * 30_000,
    ):
        started = time.perf_counter()
        with pytest.raises(ValueError, match="characters long"):
            parse_classification_report(text)
        assert time.perf_counter() - started < 5  # a hang check: the old regex took minutes


@pytest.mark.parametrize("text", ["'a' + " * 30_000 + "'a'", "'a' if 'b' else " * 20_000 + "'a'"])
def test_1_deeply_nested_quoted_paste_is_refused_not_a_crash(text: str) -> None:
    """A paste that looks like a Python string literal is decoded; one nested this deep
    overflows Python's parser, which must read as "not a report", not as a server error."""
    with pytest.raises(ValueError, match="expected the header"):
        parse_classification_report(text)


@pytest.mark.parametrize("support", ["1e19", "1000000001", "-1"])
def test_10_supports_beyond_any_test_set_are_refused(support: str) -> None:
    rows = ROWS.replace("         2\n", f"  {support}\n")
    with pytest.raises(ValueError, match=r"line 3: support must be a whole number"):
        parse_classification_report(HEADER + rows + SUMMARY)


def test_the_imported_reports_model_name_is_no_zoo_model() -> None:
    """``?model=imported`` lists imported reports only while no trainable model takes the name."""
    assert IMPORTED_MODEL not in MODELS
