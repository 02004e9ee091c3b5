"""Import a result someone already has: scikit-learn's ``classification_report`` text.

The original study published its results only as these text tables (no predictions, no
model files), so pasting one is how an old result joins the compare page. The parse returns
exactly what ``classification_report(..., output_dict=True)`` would have returned, with every
number as written in the text, so imported and trained results are stored the same way.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.schemas import FieldError

HEADER = ("precision", "recall", "f1-score", "support")
SUMMARY_ROWS = ("micro avg", "macro avg", "weighted avg", "samples avg")
REQUIRED_SUMMARIES = ("macro avg", "weighted avg")
# Each pattern below is matched against one token or one line's start, never scanned across a
# run of spaces: rows are split on whitespace first, so parsing is linear in the text's length.
# A row regex over whole lines backtracked over long runs of spaces and took minutes.
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_OUTPUT_PROMPT = re.compile(r"^Out\[\d*\]:\s*")
MAX_LINE_CHARS = 1000
"""A report row is a class name and four numbers; anything longer is not a report."""
MAX_SUPPORT = 1_000_000_000
"""More test images than any dataset has; it keeps counts within the database's integers."""
_EXAMPLE_ROW = "'    airplane      0.86      0.80      0.83      1000'"


@dataclass(frozen=True)
class ImportedReport:
    """A parsed report: ``report`` has sklearn's ``output_dict`` shape, supports as floats."""

    classes: list[str]
    report: dict[str, Any]
    accuracy: float
    test_size: int
    confusion_matrix: list[list[int]] | None
    digits: int = 2
    """Decimals the report printed its scores with (sklearn's ``digits``, 2 by default): pages
    show an imported score to as many, not to a precision the report never had."""


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based, as an editor shows it, for error messages
    text: str


def _unquote(text: str) -> str:
    """A report pasted from a notebook cell that showed the string instead of printing it
    arrives as a Python literal with ``\\n`` escapes; decode that, leave anything else be."""
    stripped = _OUTPUT_PROMPT.sub("", text.strip())
    if len(stripped) < 2 or stripped[0] not in "'\"" or stripped[-1] != stripped[0]:
        return text
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        # Deeply nested text overflows Python's parser; it is not a pasted string either.
        return text
    return value if isinstance(value, str) else text


def _lines(text: str) -> list[_Line]:
    """Non-blank lines, stripped, with Windows/old-Mac endings, tabs and the non-breaking
    spaces of copied HTML output all read as plain whitespace."""
    normalized = _unquote(text).replace("\r\n", "\n").replace("\r", "\n")
    normalized = normalized.replace("\t", " ").replace("\xa0", " ")
    return [
        _Line(number, line.strip())
        for number, line in enumerate(normalized.split("\n"), start=1)
        if line.strip()
    ]


def _number(text: str, column: str, line: _Line) -> float:
    if text.lower() == "nan":
        raise ValueError(
            f"line {line.number}: {column} is nan, a score sklearn could not compute "
            f"(zero_division=np.nan); print the report with zero_division=0 and paste it again: "
            f"{line.text!r}"
        )
    return float(text)


def _score(text: str, column: str, line: _Line) -> float:
    value = _number(text, column, line)
    if not 0 <= value <= 1:
        raise ValueError(
            f"line {line.number}: {column} {text} is outside 0-1; the columns may be "
            f"misaligned: {line.text!r}"
        )
    return value


def _support(text: str, line: _Line) -> float:
    value = _number(text, "support", line)
    if not (0 <= value <= MAX_SUPPORT and value.is_integer()):
        raise ValueError(
            f"line {line.number}: support must be a whole number of test images up to "
            f"{MAX_SUPPORT:,}, got {text}: {line.text!r}"
        )
    return value


def _is_number(token: str) -> bool:
    return token.lower() == "nan" or _NUMBER.fullmatch(token) is not None


def _row_values(numbers: list[str], line: _Line) -> dict[str, float]:
    precision, recall, f1, support = numbers
    return {
        "precision": _score(precision, "precision", line),
        "recall": _score(recall, "recall", line),
        "f1-score": _score(f1, "f1-score", line),
        "support": _support(support, line),
    }


def _body(lines: list[_Line]) -> list[_Line]:
    """The lines after the header. Lines before it (a title, a notebook's ``Out[3]:``) are
    skipped, since people paste what surrounds the table; no header at all is an error."""
    if not lines:
        raise ValueError(
            "the report is empty: paste the text classification_report prints, starting with "
            "its header 'precision recall f1-score support'"
        )
    for index, line in enumerate(lines):
        if tuple(line.text.lower().split()) == HEADER:
            return lines[index + 1 :]
    first = lines[0]
    raise ValueError(
        f"line {first.number}: expected the header 'precision recall f1-score support' "
        f"first, got: {first.text!r}"
    )


@dataclass
class _Parsed:
    """What the body lines gave so far; ``report`` fills in text order, sklearn's dict order."""

    report: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    accuracy_support: float | None = None
    digits: int = 0

    def saw_scores(self, tokens: list[str]) -> None:
        """The most decimals any score was written with (``0.86`` has 2, ``1e-3`` none)."""
        for token in tokens:
            _, dot, decimals = token.partition(".")
            if dot and decimals.isdigit():
                self.digits = max(self.digits, len(decimals))

    def add(self, key: str, value: Any, line: _Line) -> None:
        if key in self.report:
            raise ValueError(f"line {line.number}: {key!r} appears twice in the report")
        self.report[key] = value


def _add_row(parsed: _Parsed, line: _Line) -> None:
    """A row is its name (which may hold spaces) and then four numbers, or ``accuracy`` and
    two: split from the right, so the name keeps its own spacing."""
    if len(line.text) > MAX_LINE_CHARS:
        raise ValueError(
            f"line {line.number} is {len(line.text):,} characters long; a report row is a "
            f"class name and four numbers, under {MAX_LINE_CHARS} characters"
        )
    tokens = line.text.split()
    if len(tokens) == 3 and tokens[0] == "accuracy" and all(map(_is_number, tokens[1:])):
        parsed.add("accuracy", _score(tokens[1], "accuracy", line), line)
        parsed.accuracy_support = _support(tokens[2], line)
        parsed.saw_scores(tokens[1:2])
        return
    parts = line.text.rsplit(maxsplit=4)
    if len(parts) != 5 or not all(map(_is_number, parts[1:])):
        raise ValueError(
            f"line {line.number}: expected a class row like {_EXAMPLE_ROW} (name, precision, "
            f"recall, f1-score, support), an 'accuracy <value> <support>' row or an average "
            f"row, got: {line.text!r}"
        )
    name, numbers = parts[0], parts[1:]
    parsed.saw_scores(numbers[:3])
    summary = " ".join(name.split())
    if summary in SUMMARY_ROWS:
        parsed.add(summary, _row_values(numbers, line), line)
        return
    parsed.add(name, _row_values(numbers, line), line)
    parsed.classes.append(name)


def _check_complete(parsed: _Parsed) -> None:
    if not parsed.classes:
        raise ValueError(
            f"no class rows found: expected one line per class, like {_EXAMPLE_ROW}, "
            "between the header and the accuracy row"
        )
    if "accuracy" not in parsed.report and "micro avg" not in parsed.report:
        raise ValueError("expected an 'accuracy <value> <support>' row after the class rows")
    for key in REQUIRED_SUMMARIES:
        if key not in parsed.report:
            raise ValueError(f"expected a {key!r} row after the accuracy row")


def _check_supports(parsed: _Parsed) -> None:
    """sklearn's summary supports are the sum of the class supports; a mismatch means a row
    was lost in copying, and the import would silently describe a different test set."""
    report = parsed.report
    total = sum(report[name]["support"] for name in parsed.classes)
    given = {key: report[key]["support"] for key in SUMMARY_ROWS if key in report}
    if parsed.accuracy_support is not None:
        given["accuracy"] = parsed.accuracy_support
    for key, support in given.items():
        if support != total:
            raise ValueError(
                f"the class rows' supports add up to {total:.0f} but the {key!r} row says "
                f"{support:.0f}: is a class row missing or extra?"
            )


def _parse_report(text: str) -> _Parsed:
    parsed = _Parsed()
    for line in _body(_lines(text)):
        _add_row(parsed, line)
    _check_complete(parsed)
    _check_supports(parsed)
    return parsed


def parse_classification_report(
    text: str, confusion_matrix_text: str | None = None
) -> ImportedReport:
    """Parse scikit-learn's ``classification_report`` text (any ``digits``, class names with
    spaces or digits, optional micro/samples averages) and, optionally, a confusion matrix
    pasted beside it (numpy's print, a nested list, or plain rows; blank means none).

    Without an accuracy row (sklearn prints "micro avg" instead when ``labels`` is a subset),
    ``accuracy`` is the micro-averaged f1-score and ``test_size`` the micro average's support.
    """
    parsed = _parse_report(text)
    report, classes = parsed.report, parsed.classes
    if parsed.accuracy_support is not None:
        accuracy, test_size = report["accuracy"], parsed.accuracy_support
    else:
        accuracy, test_size = report["micro avg"]["f1-score"], report["micro avg"]["support"]
    matrix = None
    if confusion_matrix_text is not None and confusion_matrix_text.strip():
        supports = [report[name]["support"] for name in classes]
        matrix = parse_confusion_matrix(confusion_matrix_text, classes, supports)
    digits = parsed.digits or 2
    return ImportedReport(classes, report, accuracy, int(test_size), matrix, digits)


# --- confusion matrix ----------------------------------------------------------------------

_BRACKETED_ROW = re.compile(r"\[([^\[\]]*)\]")
_WRAPPER = re.compile(r"array\s*\(|dtype\s*=\s*\w+|[\[\](),\s]")


def _matrix_rows(text: str) -> list[str]:
    """Rows as text. With brackets, each innermost ``[...]`` is a row, so numpy's wrapping of
    a long row onto two lines does not split it; without, each non-blank line is a row."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    if "..." in normalized or "…" in normalized:
        raise ValueError(
            "confusion matrix: numpy shortened it with '...'; paste matrix.tolist() or print it "
            "after np.set_printoptions(threshold=sys.maxsize)"
        )
    if "[" not in normalized:
        return [line for line in normalized.split("\n") if line.strip()]
    leftover = _WRAPPER.sub("", _BRACKETED_ROW.sub("", normalized))
    if leftover:
        raise ValueError(
            f"confusion matrix: unexpected text {leftover[:40]!r} outside the [ ] rows"
        )
    return [row for row in _BRACKETED_ROW.findall(normalized) if row.strip()]


def _matrix_cell(token: str, row: int) -> int:
    try:
        value = float(token)
    except ValueError:
        raise ValueError(
            f"confusion matrix row {row}: {token!r} is not a count of images"
        ) from None
    if not value.is_integer() or value < 0:
        raise ValueError(f"confusion matrix row {row}: {token!r} is not a count of images")
    return int(value)


def parse_confusion_matrix(
    text: str, classes: list[str], supports: list[float] | None = None
) -> list[list[int]]:
    """Rows of counts (true class per row, as sklearn's ``confusion_matrix``), separated by
    whitespace or commas. Square with one row per class; with ``supports``, each row must sum
    to its class's support, which catches a transposed or mismatched paste."""
    rows = [
        [_matrix_cell(token, index) for token in re.split(r"[\s,;]+", row.strip()) if token]
        for index, row in enumerate(_matrix_rows(text), start=1)
    ]
    size = len(classes)
    if len(rows) != size or any(len(row) != size for row in rows):
        widths = "/".join(sorted({str(len(row)) for row in rows}))
        shape = f"{len(rows)} rows of {widths}" if rows else "no rows"
        raise ValueError(
            f"confusion matrix: expected {size} rows of {size} counts (one per class), got {shape}"
        )
    for name, row, support in zip(classes, rows, supports or [], strict=False):
        if sum(row) != support:
            raise ValueError(
                f"confusion matrix: the row for {name!r} sums to {sum(row)} but the report's "
                f"support for it is {support:.0f}; rows must be the true classes, in order"
            )
    return rows


def parse_for_import(
    report_text: str, matrix_text: str | None
) -> tuple[ImportedReport | None, list[FieldError]]:
    """The report first, alone, so an error names the field it comes from; then the matrix
    against the report's classes and supports. Form and API report errors the same way."""
    try:
        imported = parse_classification_report(report_text)
    except ValueError as exc:
        return None, [FieldError(field="report_text", message=str(exc))]
    if not (matrix_text or "").strip():
        return imported, []
    try:
        return parse_classification_report(report_text, matrix_text), []
    except ValueError as exc:
        return None, [FieldError(field="confusion_matrix_text", message=str(exc))]


def report_digits(spec: Mapping[str, Any]) -> int | None:
    """The decimals an imported report gave its scores with; None for a trained run."""
    digits = spec.get("report_digits")
    return digits if isinstance(digits, int) else None
