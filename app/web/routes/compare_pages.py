"""The compare page, its live poll, its difference matrix and its CSV export: the routes and
what they are made of (template context, figures, CSV rows).

``build_comparison`` decides what is compared and ``app.web.presentation`` words it as one
``ComparisonPublic``; this module shapes that for the page (columns, hyperparameter rows,
figures with export names) and for the CSV.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from app.core.models import Experiment
from app.core.report_import import report_digits
from app.core.schemas import RowId, SpecError
from app.services import comparison as comparisons
from app.services.comparison import (
    ACTIVE,
    METRICS,
    SUMMARY_ROWS,
    load_for_comparison,
    parse_ids,
)
from app.services.errors import NotFound
from app.services.history_cache import HistoryCache
from app.services.seed_groups import MAX_GROUPED_IDS, load_seed_groups
from app.web.charts import (
    comparison_confusion_figures,
    comparison_curves_figure,
    comparison_gap_figure,
    comparison_time_figure,
    difference_figure,
    exported_as,
    has_gallery,
    with_export_name,
)
from app.web.deps import HistoriesDep, SessionDep
from app.web.f1_chart import draws_heatmap, f1_figure, run_label
from app.web.formatting import format_number, format_signed, model_title
from app.web.forms import shown_value
from app.web.presentation import (
    ComparisonPublic,
    ReportRowPublic,
    SummaryPublic,
    comparison_public,
    untested_text,
)
from app.web.seed_group_page import group_context
from app.web.seed_groups_public import seed_groups_public
from app.web.templating import FRAGMENT_VIEWER, SIGNED_IN, error_page, page_router, templates

router = page_router()
SECTIONS = (
    "warnings", "summary", "significance", "curves_note", "diagnostics", "per_class", "matrices",
)  # fmt: skip
WIDE = 4  # above this many experiments the per-class table opens on F1 alone
POLL_MILLISECONDS = 3000
FORMULA_START = re.compile(r"^[=+\-@\t\r]")
SUMMARY_FIELDS = (
    "test_accuracy", "macro_f1", "parameters", "epochs", "training_seconds",
    "seconds_per_epoch", "images_per_second", "test_size",
)  # fmt: skip
CSV_HEADER = (
    "experiment_id", "experiment", "model", "status", "baseline", *SUMMARY_FIELDS,
    "row", *METRICS, "support", *(f"delta_{metric}" for metric in METRICS),
)  # fmt: skip


def load_comparison(
    session: Session, histories: HistoryCache, ids: Sequence[str] | None, baseline: int | None
) -> tuple[list[Experiment], ComparisonPublic]:
    """``ids`` as the query gave them (``1,2,3`` or repeated); raises SpecError (422, bad
    ids) or NotFound (404, unknown ones) just as GET /api/compare does."""
    parsed = parse_ids(",".join(ids or []))
    experiments, comparison = comparisons.load_comparison(session, histories, parsed, baseline)
    return experiments, comparison_public(comparison)


class Column(SummaryPublic):
    """One experiment's column: its summary and what the page adds (``label``: a short
    name that tells runs apart where the full one does not fit)."""

    label: str
    model_title: str
    has_gallery: bool
    is_baseline: bool
    has_curves: bool
    given_digits: int | None
    """An imported report's decimals (``report_digits``): its scores are shown no finer."""


def _columns(experiments: Sequence[Experiment], comparison: ComparisonPublic) -> list[Column]:
    """One per experiment, in the order given."""
    by_id = {e.id: e for e in experiments}
    return [
        Column(
            **summary.model_dump(),
            label=run_label(summary.id),
            model_title=model_title(summary.model),
            has_gallery=has_gallery(by_id[summary.id]),
            is_baseline=summary.id == comparison.baseline_id,
            has_curves=bool(comparison.curves[summary.id]),
            given_digits=report_digits(by_id[summary.id].spec),
        )
        for summary in comparison.experiments
    ]


def _best(columns: Sequence[Column], key: str) -> set[int]:
    values = [value for c in columns if (value := getattr(c, key)) is not None]
    return {c.id for c in columns if values and getattr(c, key) == max(values)}


@dataclass(frozen=True)
class PairwiseRow:
    """One run against the baseline in the significance table; differences in points."""

    column: Column
    text: str
    difference: float
    low: float
    high: float
    confidence: float
    p_value: float
    method: str
    only_baseline: int  # images only the baseline got right
    only_run: int  # images only this run got right
    n: int


def _pairwise(
    comparison: ComparisonPublic, columns: Sequence[Column]
) -> tuple[list[PairwiseRow], str]:
    """The runs tested against the baseline, one table row each, and one line naming the
    runs that could not be tested and why (twelve runs made eleven near-identical cards)."""
    by_id = {c.id: c for c in columns}
    rows = []
    untested = {}
    for pair in comparison.significance:
        test, interval = pair.mcnemar, pair.bootstrap
        if test is None or interval is None:
            if pair.untested is not None:
                untested[pair.b] = pair.untested
            continue
        rows.append(
            PairwiseRow(
                by_id[pair.b], pair.text, interval.difference * 100, interval.low * 100,
                interval.high * 100, interval.confidence, test.p_value, test.method,
                test.only_a_correct, test.only_b_correct, test.n,
            )
        )  # fmt: skip
    return rows, untested_text(untested, {c.id: c.name for c in columns})


class Cell(NamedTuple):
    """One cell of the merged report, its numbers already text."""

    metric: str
    experiment_id: int
    css: str
    value: str
    delta: str
    direction: str


def _direction(delta: float) -> str:
    return "up" if delta > 0 else "down" if delta < 0 else "same"


def _report_kind(row: str) -> str:
    return "accuracy" if row == "accuracy" else "average" if row in SUMMARY_ROWS else "class"


class ReportLine(NamedTuple):
    """A row of the merged report as the page draws it: a class, accuracy or an average."""

    row: str
    kind: str
    cells: list[Cell]


def _per_class_rows(comparison: ComparisonPublic, columns: Sequence[Column]) -> list[ReportLine]:
    """The merged report's rows with their cells formatted here: eight experiments make 312
    cells, and formatting them in the template took most of the page's render time."""
    rows = []
    for row in comparison.per_class:
        cells = []
        for metric in METRICS:
            best = row.best.get(metric, []) if len(row.values) > 1 else []
            for index, column in enumerate(columns):
                value = row.values.get(column.id, {}).get(metric)
                delta = row.delta.get(column.id, {}).get(metric)
                css = "num" + (" best" if column.id in best else "")
                cells.append(
                    Cell(
                        metric, column.id, css + (" group-start" if index == 0 else ""),
                        "" if value is None else format_number(value, column.given_digits or 3),
                        "" if delta is None else format_signed(delta),
                        "" if delta is None else _direction(delta),
                    )
                )  # fmt: skip
        rows.append(ReportLine(row.row, _report_kind(row.row), cells))
    return rows


class SettingLine(NamedTuple):
    key: str
    values: list[str]
    differs: bool


def _hyperparameter_rows(
    comparison: ComparisonPublic, trained: Sequence[Column]
) -> list[SettingLine]:
    """Every setting of the trained experiments: an imported report has no settings, so it
    has no column here (the page says so once) and makes no row look different."""
    rows = []
    for key, by_id in comparison.hyperparameters.all.items():
        distinct = {repr(by_id.get(c.id)) for c in trained}
        shown = [shown_value(by_id.get(c.id)) for c in trained]
        rows.append(SettingLine(key, shown, len(distinct) > 1))
    return rows


def _imports_note(imported: Sequence[Column], with_matrix: set[int]) -> str:
    """Said once for every imported report, instead of empty charts and rows of dashes:
    what an import carries, and so where it appears."""
    if not imported:
        return ""
    many = len(imported) > 1
    names = ", ".join(c.name for c in imported)
    matrices = [c.name for c in imported if c.id in with_matrix]
    also = f", and {', '.join(matrices)} in the confusion matrices" if matrices else ""
    return (
        f"{'Imported reports' if many else 'The imported report'} {names} "
        f"{'carry' if many else 'carries'} a classification report only: "
        f"{'they appear' if many else 'it appears'} in the summary, the per-class report and "
        f"its F1 chart{also}, with no training curves, settings or per-image predictions to "
        "compare."
    )


def _urls(ids: str, baseline_id: int) -> dict[str, str]:
    query = urlencode({"ids": ids, "baseline": baseline_id})
    return {
        "json": f"/api/compare?{query}",
        "groups": f"/compare?{urlencode({'ids': ids, 'group': 'seed', 'baseline': baseline_id})}",
        "csv": f"/compare.csv?{query}",
        "live": f"/compare/live?{query}",
        "difference": "/compare/difference",
    }


def figures(comparison: Mapping[str, Any], ids: str, *, curves: bool) -> dict[str, dict[str, Any]]:
    """The page's charts by element id, each saved as ``cifarlab-compare-<ids>-<chart>.png``;
    ``comparison`` as ``ComparisonPublic.model_dump()`` gives it, which the charts read.
    Without ``curves`` (only imported reports, which have none) the per-epoch charts are left
    out rather than drawn empty."""
    stem = f"cifarlab-compare-{ids.replace(',', '-')}"
    charts = {"f1-chart": f1_figure(comparison)}
    if curves:
        charts = {
            "accuracy-chart": comparison_curves_figure(comparison, "accuracy"),
            "loss-chart": comparison_curves_figure(comparison, "loss"),
            "gap-chart": comparison_gap_figure(comparison),
            "time-chart": comparison_time_figure(comparison),
            **charts,
        }
    return exported_as(stem, charts)


def matrices(comparison: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Side-by-side matrices by element id, each as counts and row-normalised."""
    return {
        f"matrix-{experiment_id}": {
            mode: with_export_name(figure, f"cifarlab-experiment-{experiment_id}-{mode}-matrix")
            for mode, figure in variants.items()
        }
        for experiment_id, variants in comparison_confusion_figures(comparison).items()
    }


def default_difference(
    comparison: ComparisonPublic, columns: Sequence[Column], normalized: bool
) -> dict[str, Any] | None:
    """A - B for the first two experiments with matrices of the same classes, if any."""
    entries = comparison.confusion_matrices
    with_matrix = [c for c in columns if c.id in entries]
    if len(with_matrix) < 2:
        return None
    first, second = with_matrix[:2]
    if entries[first.id].classes != entries[second.id].classes:
        return None
    figure = difference_figure(
        entries[first.id].classes, entries[first.id].matrix, entries[second.id].matrix,
        names=(first.name, second.name), normalized=normalized,
    )  # fmt: skip
    return with_export_name(figure, f"cifarlab-difference-{first.id}-{second.id}")


def difference(session: Session, a: int, b: int, *, normalized: bool) -> dict[str, Any]:
    """Matrix A - B as a figure; ValueError says why two experiments cannot be subtracted."""
    experiments = load_for_comparison(session, [a, b]) if a != b else []
    evaluations = [e.evaluation for e in experiments if e.evaluation is not None]
    matrices = [e.confusion_matrix for e in evaluations if e.confusion_matrix is not None]
    if len(matrices) != 2:
        raise ValueError("pick two different experiments that both have a confusion matrix")
    first, second = evaluations
    if first.classes != second.classes:
        raise ValueError("the two matrices have different classes")
    figure = difference_figure(
        first.classes, matrices[0], matrices[1],
        names=(experiments[0].name, experiments[1].name), normalized=normalized,
    )  # fmt: skip
    return with_export_name(figure, f"cifarlab-difference-{a}-{b}")


def compare_context(
    experiments: Sequence[Experiment], comparison: ComparisonPublic
) -> dict[str, Any]:
    """Everything compare.html and its section templates draw."""
    columns = _columns(experiments, comparison)
    trained = [c for c in columns if not c.imported]
    ids = ",".join(str(c.id) for c in columns)
    sizes = {c.test_size for c in columns if c.test_size is not None}
    normalized = len(sizes) > 1  # counts of different test sets do not compare
    pairwise, untested = _pairwise(comparison, columns)
    return {
        "ids": ids,
        "columns": columns,
        "trained_columns": trained,
        "imports_note": _imports_note(
            [c for c in columns if c.imported], set(comparison.confusion_matrices)
        ),
        "show_curves": bool(trained),
        "baseline": next(c for c in columns if c.is_baseline),
        "warnings": comparison.warnings,
        "best": {key: _best(columns, key) for key in ("test_accuracy", "macro_f1")},
        "per_class": _per_class_rows(comparison, columns),
        "metrics": METRICS,
        "metric_view": "all" if len(columns) <= WIDE else "f1-score",
        "f1_heatmap": draws_heatmap(len(columns)),
        "pairwise": pairwise,
        "untested": untested,
        "diagnostics": comparison.diagnostics,
        "hyperparameters": _hyperparameter_rows(comparison, trained),
        "matrix_columns": [c for c in columns if c.id in comparison.confusion_matrices],
        "matrix_mode": "normalized" if normalized else "counts",
        "difference": default_difference(comparison, columns, normalized),
        "urls": _urls(ids, comparison.baseline_id),
        "active": any(c.status in ACTIVE for c in columns),
    }


def live_data(context: Mapping[str, Any], comparison: ComparisonPublic) -> dict[str, Any]:
    """What the page script draws: on load from the page, then from each live poll."""
    # The charts read plain dicts; the curves already are, and copying them cost milliseconds.
    plain = {**comparison.model_dump(exclude={"curves"}), "curves": comparison.curves}
    return {
        "active": context["active"],
        "figures": figures(plain, context["ids"], curves=context["show_curves"]),
        "matrices": matrices(plain),
    }


def page_data(context: Mapping[str, Any], comparison: ComparisonPublic) -> dict[str, Any]:
    return {
        **live_data(context, comparison),
        "liveUrl": context["urls"]["live"],
        "differenceUrl": context["urls"]["difference"],
        "pollMilliseconds": POLL_MILLISECONDS,
        "matrixMode": context["matrix_mode"],
        "difference": context["difference"],
    }


# --- CSV ---------------------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """Numbers as Python prints them; text that a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``+1``, ``@SUM``) gets a leading apostrophe, the usual defence."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, str):
        return "'" + value if FORMULA_START.match(value) else value
    return str(value)


def _report_values(row: ReportRowPublic, experiment_id: int) -> list[Any]:
    values = row.values[experiment_id]
    delta = row.delta.get(experiment_id, {})
    return [
        row.row,
        *(values.get(metric) for metric in METRICS),
        values.get("support"),
        *(delta.get(metric) for metric in METRICS),
    ]


def csv_text(comparison: ComparisonPublic) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(csv_rows(comparison))
    return buffer.getvalue()


def csv_rows(comparison: ComparisonPublic) -> list[list[str]]:
    """One line per experiment and report row (each class, accuracy, the averages), with
    the experiment's summary repeated on each: one flat table that pandas or a spreadsheet
    filters by ``row`` or ``experiment`` directly. Deltas are against the baseline."""
    lines = [list(CSV_HEADER)]
    for summary in comparison.experiments:
        head = [
            summary.id, summary.name, summary.model, summary.status,
            summary.id == comparison.baseline_id,
            *(getattr(summary, field) for field in SUMMARY_FIELDS),
        ]  # fmt: skip
        for row in comparison.per_class:
            if summary.id in row.values:
                values = [*head, *_report_values(row, summary.id)]
                lines.append([csv_cell(value) for value in values])
    return lines


# --- routes ------------------------------------------------------------------------------------

IdsQuery = Annotated[
    list[str] | None, Query(description="Experiment ids: ids=1,2,3 or ids=1&ids=2&ids=3")
]
GroupQuery = Annotated[
    Literal["seed"] | None,
    Query(description="seed: show the seed groups the runs form instead of each run"),
]


def _sections(context: dict[str, Any]) -> dict[str, str]:
    """Each live section's HTML, rendered by the template the page itself includes."""
    return {
        name: templates.get_template(f"compare/{name}.html").render(context) for name in SECTIONS
    }


@router.get("/compare", dependencies=SIGNED_IN)
def compare_page(
    request: Request,
    session: SessionDep,
    histories: HistoriesDep,
    ids: IdsQuery = None,
    baseline: RowId | None = None,
    group: GroupQuery = None,
) -> Response:
    if group == "seed":
        return _seed_groups_page(request, session, histories, ids, baseline)
    try:
        experiments, comparison = load_comparison(session, histories, ids, baseline)
    except NotFound as exc:
        return error_page(request, 404, str(exc))
    except SpecError as exc:
        return error_page(request, 422, str(exc))
    context = compare_context(experiments, comparison)
    context["page_data"] = page_data(context, comparison)
    return templates.TemplateResponse(request, "compare.html", context)


def _seed_groups_page(
    request: Request,
    session: Session,
    histories: HistoryCache,
    ids: Sequence[str] | None,
    baseline: int | None,
) -> Response:
    """The same runs as seed groups (see ``app.services.seed_groups``), drawn once, without
    the live poll: while runs still train the page says so, and a reload shows newer figures."""
    try:
        parsed = parse_ids(",".join(ids or []), limit=MAX_GROUPED_IDS)
        groups = load_seed_groups(session, histories, parsed, baseline)
    except NotFound as exc:
        return error_page(request, 404, str(exc))
    except SpecError as exc:
        return error_page(request, 422, str(exc))
    context = group_context(seed_groups_public(groups))
    return templates.TemplateResponse(request, "compare_groups.html", context)


@router.get("/compare/live", dependencies=FRAGMENT_VIEWER)
def compare_live(
    session: SessionDep,
    histories: HistoriesDep,
    ids: IdsQuery = None,
    baseline: RowId | None = None,
) -> dict[str, Any]:
    """What the compare page polls while an experiment is queued or running: its figures
    and the HTML of each section that changes as runs progress."""
    experiments, comparison = load_comparison(session, histories, ids, baseline)
    context = compare_context(experiments, comparison)
    return {**live_data(context, comparison), "sections": _sections(context)}


@router.get("/compare/difference", dependencies=FRAGMENT_VIEWER)
def compare_difference(
    session: SessionDep,
    a: Annotated[RowId, Query(description="Experiment A")],
    b: Annotated[RowId, Query(description="Experiment B")],
    normalized: bool = False,
) -> JSONResponse:
    """Confusion matrix A - B, for the two experiments the page's selects name."""
    try:
        return JSONResponse(difference(session, a, b, normalized=normalized))
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)


@router.get("/compare.csv", dependencies=SIGNED_IN)
def compare_csv(
    session: SessionDep,
    histories: HistoriesDep,
    ids: IdsQuery = None,
    baseline: RowId | None = None,
) -> Response:
    """The compare page's tables as one flat CSV (see ``csv_rows``)."""
    experiments, comparison = load_comparison(session, histories, ids, baseline)
    stem = "-".join(str(e.id) for e in experiments)
    return Response(
        csv_text(comparison),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="cifarlab-compare-{stem}.csv"',
            "X-Content-Type-Options": "nosniff",
        },
    )
