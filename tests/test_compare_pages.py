"""The compare page, its live updates, A - B matrices and CSV export, and the import page,
against a real SQLite database through the web app (no broker, no browser)."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status
from app.core.report_import import parse_classification_report
from app.web.routes import compare_pages
from tests.support.factories import CLASSES, make_evaluated, make_experiment
from tests.support.pages import (
    XSS,
    by_id,
    described_input,
    description,
    elements,
    error_summary,
    field_errors,
    inputs,
    post_form,
    report_text,
)
from tests.support.seed_reports import seed_report

LABELS = [i % 10 for i in range(400)]
OVERFIT = [
    {"loss": 1.0 - 0.1 * e, "accuracy": 0.5 + 0.05 * e, "learning_rate": 1e-3,
     "val_loss": [1.0, 0.8, 0.7, 0.75, 0.9, 1.1][e], "val_accuracy": 0.6}
    for e in range(6)
]  # fmt: skip
ROWS = [*CLASSES, "accuracy", "macro avg", "weighted avg"]


def wrong_every(step: int, labels: list[int] = LABELS) -> list[int]:
    return [(label + 1) % 10 if i % step == 0 else label for i, label in enumerate(labels)]


def three(session: Session) -> list[Experiment]:
    """Accuracy 75 %, 90 % (another learning rate) and 100 % (another seed and test set)."""
    return [
        make_evaluated(session, wrong_every(4), LABELS, epochs=OVERFIT),
        make_evaluated(session, wrong_every(10), LABELS, epochs=OVERFIT[:3], learning_rate=0.01),
        make_evaluated(session, LABELS[:200], LABELS[:200], fingerprint="other", seed=3),
    ]


def rename(session: Session, experiment: Experiment, name: str) -> None:
    crud.update_experiment(session=session, experiment=experiment, changes={"name": name})
    session.commit()


def ids_of(experiments: list[Experiment]) -> str:
    return ",".join(str(e.id) for e in experiments)


def page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="compare-data">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def cells(html: str, row: str) -> dict[tuple[str, str], str]:
    """The per-class table's cells in one row by (metric, experiment id): their words, and
    "[best]" where the cell is highlighted."""
    table = html[html.index('id="per-class"') :]
    body = table[table.index(f'data-row="{row}"') :]
    pattern = r'<td class="([^"]*)" data-metric="([^"]+)" data-experiment="(\d+)">(.*?)</td>'
    found = {}
    for css, metric, experiment_id, text in re.findall(pattern, body[: body.index("</tr>")]):
        words = " ".join(re.sub(r"<[^>]+>", " ", text).split())
        found[(metric, experiment_id)] = words + (" [best]" if "best" in css.split() else "")
    return found


def table_html(html: str, table_id: str) -> str:
    start = html.index(f'id="{table_id}"')
    return html[start : html.index("</table>", start)]


def summary_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-experiment="(\d+)">', table_html(html, "summary"))


# --- the page ------------------------------------------------------------------------------------


def test_compare_page_shows_three_experiments_in_one_colour_each(
    client: TestClient, session: Session
) -> None:
    a, b, c = three(session)
    html = client.get(f"/compare?ids={ids_of([a, b, c])}").text
    assert summary_rows(html) == [str(a.id), str(b.id), str(c.id)]
    data = page_data(html)
    assert set(data["figures"]) == {
        "accuracy-chart", "loss-chart", "gap-chart", "time-chart", "f1-chart",
    }  # fmt: skip
    assert set(data["matrices"]) == {f"matrix-{e.id}" for e in (a, b, c)}
    assert data["active"] is False and data["matrixMode"] == "normalized"  # 400 vs 200 images
    colours = {trace["meta"]["experiment"]: trace["marker"]["color"]
               for trace in data["figures"]["f1-chart"]["data"]}  # fmt: skip
    curves = {trace["meta"]["experiment"]: trace["line"]["color"]
              for trace in data["figures"]["accuracy-chart"]["data"]
              if trace["meta"]["kind"] in ("train", "validation")}  # fmt: skip
    assert len(set(colours.values())) == 3 and curves == {a.id: colours[a.id], b.id: colours[b.id]}
    for experiment in (a, b, c):
        title = data["matrices"][f"matrix-{experiment.id}"]["counts"]["layout"]["title"]
        assert title["font"]["color"] == colours[experiment.id]
        assert f"--experiment-color: {colours[experiment.id]}" in html
    assert {by_id(html, f"matrix-{e.id}").attrs["data-gallery"] for e in (a, b, c)} == {
        str(a.id), str(b.id), str(c.id),
    }  # fmt: skip
    assert by_id(html, "gallery").tag == "dialog"


def test_the_merged_report_marks_the_best_and_the_deltas_from_the_baseline(
    client: TestClient, session: Session
) -> None:
    a, b, c = three(session)
    html = client.get(f"/compare?ids={ids_of([a, b, c])}&baseline={a.id}").text
    rows = [e.attrs["data-row"] for e in elements(html) if "data-row" in e.attrs]
    assert rows == ROWS
    accuracy = cells(html, "accuracy")
    assert accuracy[("f1-score", str(a.id))] == "0.750"  # the baseline: no delta
    assert accuracy[("f1-score", str(b.id))] == "0.900 +0.150"
    assert accuracy[("f1-score", str(c.id))] == "1.000 +0.250 [best]"
    assert accuracy[("precision", str(a.id))] == ""  # blank, as sklearn prints it
    macro = cells(html, "macro avg")
    assert {metric for metric, _ in macro} == {"precision", "recall", "f1-score"}
    assert macro[("recall", str(c.id))].endswith("[best]")
    assert "metric-view-all" in by_id(html, "per-class-view").attrs["class"]


def test_summary_significance_warnings_diagnostics_and_hyperparameters(
    client: TestClient, session: Session
) -> None:
    a, b, c = three(session)
    html = client.get(f"/compare?ids={ids_of([a, b, c])}&baseline={a.id}").text
    warnings = by_id(html, "warnings")
    assert "Different test-set sizes" in html[html.index('id="warnings"') :]
    assert warnings.attrs["role"] == "status"
    columns = {(e.attrs["data-column"]): e.text for e in elements(html) if "data-column" in e.attrs}
    assert columns["test_size"] == "200"  # the last row read: c
    pairs = [e.attrs["data-pair"] for e in elements(html) if "data-pair" in e.attrs]
    assert pairs == [f"{a.id}-{b.id}"]  # c was scored on other images: no row
    p_values = [e.text for e in elements(html) if "data-p-value" in e.attrs]
    assert p_values == ["< 0.0001"]
    ci = next(e.text for e in elements(html) if "data-ci" in e.attrs)
    assert re.fullmatch(r"\+\d+\.\d to \+\d+\.\d points", ci)
    assert by_id(html, "untested").text == (
        "No paired test for tiny cnn: not scored on the same test images as the baseline."
    )
    verdicts = [e.text for e in elements(html) if "data-verdict" in e.attrs]
    assert verdicts[0].startswith("The model overfits from epoch 3")
    hyperparameters = {e.attrs["data-key"]: e.attrs["class"] for e in elements(html)
                       if e.tag == "tr" and "data-key" in e.attrs}  # fmt: skip
    assert {k for k, css in hyperparameters.items() if css == "differs"} == {
        "learning_rate",
        "seed",
    }
    assert hyperparameters["batch_size"] == "same"
    assert "show-all" not in by_id(html, "hyperparameters").attrs["class"]


def test_exports_and_the_baseline_picker(client: TestClient, session: Session) -> None:
    a, b, c = three(session)
    ids = ids_of([a, b, c])
    html = client.get(f"/compare?ids={a.id}&ids={b.id}&ids={c.id}&baseline={b.id}").text
    assert (
        by_id(html, "export-json").attrs["href"]
        == f"/api/compare?ids={a.id}%2C{b.id}%2C{c.id}&baseline={b.id}"
    )
    assert by_id(html, "export-csv").attrs["href"].startswith("/compare.csv?ids=")
    selected = [
        e.attrs["value"] for e in elements(html) if e.tag == "option" and "selected" in e.attrs
    ]
    assert selected[0] == str(b.id)
    assert inputs(html)["ids"]["value"] == ids
    accuracy = cells(html, "accuracy")
    assert accuracy[("f1-score", str(a.id))] == "0.750 −0.150"
    names = {figure["config"]["toImageButtonOptions"]["filename"]
             for figure in page_data(html)["figures"].values()}  # fmt: skip
    stem = f"cifarlab-compare-{ids.replace(',', '-')}"
    assert names == {f"{stem}-{chart}" for chart in ("accuracy", "loss", "gap", "time", "f1")}


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [("", 422, "compare 2 to 12"), ("?ids=1", 422, "compare 2 to 12"),
     ("?ids=1,x", 422, "write experiment ids"), ("?ids=1,999", 404, "999")],
)  # fmt: skip
def test_bad_ids_get_a_page_that_says_why(
    client: TestClient, session: Session, query: str, status: int, message: str
) -> None:
    make_evaluated(session, LABELS, LABELS)
    response = client.get(f"/compare{query}")
    assert response.status_code == status
    assert "text/html" in response.headers["content-type"] and message in response.text


def test_a_baseline_outside_the_compared_runs_is_refused_by_the_api_and_replaced_on_the_page(
    client: TestClient, session: Session
) -> None:
    """The API says which ids it may be, for runs and seed groups alike; the page, reached by
    a link that dropped the baseline's run, shows the default baseline instead."""
    a, b, c = three(session)
    for group in ("", "&group=seed"):
        response = client.get(f"/api/compare?ids={a.id},{b.id}&baseline={c.id}{group}")
        assert response.status_code == 422, group
        assert response.json()["errors"] == [{
            "field": "baseline",
            "message": f"{c.id} is not compared; give one of the compared ids ({a.id}, {b.id})",
        }]  # fmt: skip
    assert (
        client.get(f"/api/compare?ids={a.id},{b.id}&baseline={b.id}").json()["baseline_id"] == b.id
    )
    page = client.get(f"/compare?ids={a.id},{b.id}&baseline={c.id}")
    default = client.get(f"/api/compare?ids={a.id},{b.id}").json()["baseline_id"]
    assert page.status_code == 200
    assert re.search(rf'<option value="{default}" selected>', page.text)


# --- live, and A - B ----------------------------------------------------------------------------


def test_an_experiment_keeps_its_colour_in_another_selection(
    client: TestClient, session: Session
) -> None:
    """b is second of (a, b) and first of (b, c): its colour follows it, not its position,
    in the curves, the bars and its swatch."""
    a, b, c = three(session)

    def colours(ids: str) -> dict[int, str]:
        html = client.get(f"/compare?ids={ids}").text
        figures = page_data(html)["figures"]
        bars = {t["meta"]["experiment"]: t["marker"]["color"] for t in figures["f1-chart"]["data"]}
        for trace in figures["accuracy-chart"]["data"]:
            drawn = trace.get("line", trace.get("marker"))
            assert drawn["color"] == bars[trace["meta"]["experiment"]]
        for colour in bars.values():
            assert f"--experiment-color: {colour}" in html
        return bars

    first, second = colours(ids_of([a, b])), colours(ids_of([b, c]))
    assert first[b.id] == second[b.id]
    assert len({first[a.id], first[b.id]}) == len({second[b.id], second[c.id]}) == 2


def test_live_data_while_an_experiment_trains(client: TestClient, session: Session) -> None:
    a, b, _ = three(session)
    running = make_experiment(session)  # queued: no epochs, no evaluation yet
    ids = ids_of([a, b, running])
    html = client.get(f"/compare?ids={ids}&baseline={a.id}").text
    assert page_data(html)["active"] is True
    assert (
        page_data(html)["liveUrl"] == f"/compare/live?ids={ids.replace(',', '%2C')}&baseline={a.id}"
    )
    live = client.get(page_data(html)["liveUrl"]).json()
    assert live["active"] is True
    assert set(live["sections"]) == set(compare_pages.SECTIONS)
    assert 'id="summary"' in live["sections"]["summary"]
    assert "Still training" in live["sections"]["warnings"]
    assert live["figures"] == page_data(html)["figures"]
    assert f'id="matrix-{running.id}"' not in live["sections"]["matrices"]
    assert "No curves yet for: tiny cnn." in live["sections"]["curves_note"]
    finished = client.get(f"/compare/live?ids={ids_of([a, b])}").json()
    assert finished["active"] is False


def test_difference_of_two_matrices(client: TestClient, session: Session) -> None:
    a, b, _ = three(session)
    figure = client.get(f"/compare/difference?a={a.id}&b={b.id}").json()
    (heatmap,) = figure["data"]
    # class 0's 40 images sit at multiples of 10: a (wrong on every 4th image) calls half of
    # them class 1, b (wrong on every 10th) all of them. a is better in both cells: 20 more
    # right, 20 fewer of that mistake, one sign (A better) on and off the diagonal
    assert heatmap["z"][0][:2] == [20, 20]
    assert (
        figure["config"]["toImageButtonOptions"]["filename"] == f"cifarlab-difference-{a.id}-{b.id}"
    )
    shares = client.get(f"/compare/difference?a={a.id}&b={b.id}&normalized=true").json()
    assert shares["data"][0]["z"][0][:2] == pytest.approx([0.5, 0.5])
    assert client.get(f"/compare/difference?a={a.id}&b={a.id}").status_code == 422
    imported = import_report(session, with_matrix=False)
    refused = client.get(f"/compare/difference?a={a.id}&b={imported.id}")
    assert refused.status_code == 422 and "confusion matrix" in refused.json()["detail"]


# --- CSV ------------------------------------------------------------------------------------------


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_holds_every_report_row_of_every_experiment(
    client: TestClient, session: Session
) -> None:
    a, b, c = three(session)
    response = client.get(f"/compare.csv?ids={ids_of([a, b, c])}&baseline={a.id}")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="cifarlab-compare-{a.id}-{b.id}-{c.id}.csv"'
    )
    lines = read_csv(response.text)
    assert list(lines[0]) == list(compare_pages.CSV_HEADER)
    assert len(lines) == 3 * len(ROWS)
    assert [line["row"] for line in lines[: len(ROWS)]] == ROWS
    accuracy = {line["experiment_id"]: line for line in lines if line["row"] == "accuracy"}
    assert accuracy[str(b.id)]["f1-score"] == "0.9"
    assert float(accuracy[str(b.id)]["delta_f1-score"]) == pytest.approx(0.15)
    assert accuracy[str(a.id)]["baseline"] == "yes" and accuracy[str(a.id)]["delta_f1-score"] == ""
    assert accuracy[str(a.id)]["precision"] == ""
    assert accuracy[str(c.id)]["test_size"] == "200" and accuracy[str(c.id)]["epochs"] == "0"
    cat = next(
        line for line in lines if line["row"] == "class0" and line["experiment_id"] == str(b.id)
    )
    assert (cat["support"], cat["model"], cat["status"]) == ("40.0", "custom_cnn", "succeeded")


def test_user_text_is_escaped_on_the_compare_page_and_safe_in_csv(
    client: TestClient, session: Session
) -> None:
    a, b, c = three(session)
    rename(session, a, XSS)
    rename(session, b, '=HYPERLINK("http://x")')
    ids = ids_of([a, b, c])
    html = client.get(f"/compare?ids={ids}").text
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    names = {trace["name"] for trace in page_data(html)["figures"]["f1-chart"]["data"]}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in names  # Plotly shows it as text
    live = client.get(f"/compare/live?ids={ids}").json()
    assert all(XSS not in section for section in live["sections"].values())
    response = client.get(f"/compare.csv?ids={ids}")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")
    names = {line["experiment_id"]: line["experiment"] for line in read_csv(response.text)}
    assert names[str(a.id)] == XSS  # data, exactly as typed
    assert names[str(b.id)] == '\'=HYPERLINK("http://x")'  # never a spreadsheet formula
    assert compare_pages.csv_cell("-1 point") == "'-1 point"
    assert compare_pages.csv_cell(-0.5) == "-0.5"  # numbers stay numbers


# --- importing a report ---------------------------------------------------------------------------


def matrix_text() -> str:
    from sklearn.metrics import confusion_matrix

    return str(confusion_matrix(LABELS, wrong_every(5)))


def import_report(session: Session, *, with_matrix: bool) -> Experiment:
    imported = parse_classification_report(
        report_text(wrong_every(5)), matrix_text() if with_matrix else None
    )
    experiment = crud.import_experiment(
        session=session, name="study", tags=["study"], notes="", imported=imported
    )
    session.commit()
    return experiment


def test_import_page_creates_an_imported_experiment(client: TestClient, session: Session) -> None:
    form = client.get("/experiments/import").text
    assert {"name", "report_text", "confusion_matrix_text", "tags", "notes"} <= {
        e.attrs.get("name") for e in elements(form) if e.tag in ("input", "textarea")
    }
    values = {"name": "study: custom CNN", "report_text": report_text(wrong_every(5)),
              "confusion_matrix_text": matrix_text(), "tags": "study, paper",
              "notes": "Table 3 of the paper."}  # fmt: skip
    response = post_form(client, "/experiments/import", values, follow_redirects=False)
    assert response.status_code == 303
    experiment_id = int(response.headers["location"].rsplit("/", 1)[1])
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    assert experiment is not None and experiment.status == Status.imported
    assert (experiment.tags, experiment.notes) == (["study", "paper"], "Table 3 of the paper.")
    assert experiment.test_accuracy == 0.8
    assert experiment.evaluation is not None and experiment.evaluation.confusion_matrix
    page = client.get(response.headers["location"]).text
    assert by_id(page, "imported-report").tag == "section"


def test_import_errors_are_shown_next_to_their_fields(client: TestClient, session: Session) -> None:
    values = {"name": "", "report_text": "precision recall\nnot a report", "tags": ""}
    response = post_form(client, "/experiments/import", values)
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert set(errors) == {"name", "report_text"}
    assert "header" in errors["report_text"]
    assert by_id(response.text, "report_text").text == "precision recall\nnot a report"
    report = described_input(
        response.text, "report_text"
    )  # read with its error, for a screen reader
    assert report.attrs["id"] == "report_text" and "header" in description(response.text, report)
    assert described_input(response.text, "name").attrs["id"] == "name"
    assert error_summary(response.text)[1] == ["#name", "#report_text"]
    bad_matrix = {"name": "x", "report_text": report_text(LABELS), "confusion_matrix_text": "1 2"}
    response = post_form(client, "/experiments/import", bad_matrix)
    assert list(field_errors(response.text)) == ["confusion_matrix_text"]
    assert crud.list_experiments(session=session)[1] == 0


def test_an_imported_report_compares_beside_trained_runs(
    client: TestClient, session: Session
) -> None:
    a, b, _ = three(session)
    imported = import_report(session, with_matrix=False)
    html = client.get(f"/compare?ids={ids_of([a, b, imported])}&baseline={a.id}").text
    assert "Imported reports (study)" in html
    assert f'id="matrix-{imported.id}"' not in html  # pasted without its matrix
    row = next(e for e in elements(html) if e.tag == "tr" and e.attrs.get("data-key") == "seed")
    assert row.attrs["class"] == "same"  # the imported report has no settings to differ
    accuracy = cells(html, "accuracy")
    assert accuracy[("f1-score", str(imported.id))] == "0.80 +0.050"  # as its report printed it
    diagnosed = [e.attrs["data-experiment"] for e in elements(html)
                 if "diagnosis" in e.attrs.get("class", "").split()]  # fmt: skip
    assert diagnosed == [str(a.id), str(b.id)]  # the import has no curves to diagnose
    assert by_id(html, "imports-note").text.startswith(
        "The imported report study carries a classification report only"
    )
    assert "study" not in table_html(html, "hyperparameters")  # no column of dashes
    assert by_id(html, "untested").text == (
        "No paired test for study: imported reports carry no per-image predictions."
    )


# --- reading top-down: order, folding, imports, baseline, pairwise table, labels ----------------


def import_seed(session: Session, name: str, report: str = "custom-cnn") -> Experiment:
    """One of the original study's reports, imported as the import page does (no matrix)."""
    experiment = crud.import_experiment(
        session=session, name=name, tags=[], notes="",
        imported=parse_classification_report(seed_report(report), None),
    )  # fmt: skip
    session.commit()
    return experiment


def baseline_choice(html: str) -> int:
    """The experiment the baseline picker has selected."""
    start = html.index('id="baseline"')
    picker = html[start : html.index("</select>", start)]
    (chosen,) = [e.attrs["value"] for e in elements(picker) if "selected" in e.attrs]
    return int(chosen)


def test_summary_and_differing_settings_come_before_the_curves_in_folding_sections(
    client: TestClient, session: Session
) -> None:
    a, b, c = three(session)
    html = client.get(f"/compare?ids={ids_of([a, b, c])}&baseline={a.id}").text
    order = [e.attrs["id"] for e in elements(html) if e.attrs.get("id") in
             {"summary", "hyperparameters", "pairwise", "accuracy-chart", "time-chart",
              "gap-chart", "per-class", f"matrix-{a.id}"}]  # fmt: skip
    assert order == ["summary", "hyperparameters", "pairwise", "accuracy-chart", "time-chart",
                     "gap-chart", "per-class", f"matrix-{a.id}"]  # fmt: skip
    parts = [e for e in elements(html) if "data-collapsible" in e.attrs]
    assert all(e.tag == "details" for e in parts)
    assert [e.attrs["data-collapsible"] for e in parts] == [
        "summary", "hyperparameters", "significance", "curves", "time", "diagnostics",
        "per-class", "matrices",
    ]  # fmt: skip
    assert all("open" in e.attrs for e in parts)
    live = client.get(page_data(html)["liveUrl"]).json()
    for name in live["sections"]:  # each live section is swapped inside its fold
        assert f'id="section-{name}"' in html


def test_one_pairwise_table_and_one_line_for_the_runs_that_cannot_be_tested(
    client: TestClient, session: Session
) -> None:
    base = make_evaluated(session, wrong_every(10), LABELS)
    worse = make_evaluated(session, wrong_every(4), LABELS, learning_rate=0.01)
    same = make_evaluated(session, wrong_every(10), LABELS, seed=5)
    other = make_evaluated(session, LABELS[:200], LABELS[:200], fingerprint="other", seed=3)
    unkept = make_evaluated(session, LABELS, LABELS, fingerprint=None, seed=4)
    for name, experiment in (("other images", other), ("no predictions", unkept)):
        rename(session, experiment, name)
    imports = [import_seed(session, f"seed: efficientnetb2 {i}") for i in range(3)]
    ids = ids_of([base, worse, same, other, unkept, *imports])
    html = client.get(f"/compare?ids={ids}&baseline={base.id}").text
    rows = [e for e in elements(html) if e.tag == "tr" and "data-pair" in e.attrs]
    assert [e.attrs["data-pair"] for e in rows] == [f"{base.id}-{worse.id}", f"{base.id}-{same.id}"]

    def column(attribute: str) -> list[str]:
        return [e.text for e in elements(html) if attribute in e.attrs]

    # base is wrong on every 10th image, worse on every 4th: only base is right on 100 - 20
    # of them, only worse on the 20 images at 10, 30, 50, ...
    assert column("data-difference") == ["−15.0 points", "±0.0 points"]
    assert column("data-only-baseline") == ["80", "0"]
    assert column("data-only-run") == ["20", "0"]
    assert column("data-p-value") == ["< 0.0001", "1"]
    assert re.fullmatch(r"−\d+\.\d to −\d+\.\d points", column("data-ci")[0])
    assert "significance-item" not in html  # no cards
    assert by_id(html, "untested").text == (
        "No paired test for seed: efficientnetb2 0, seed: efficientnetb2 1, "
        "seed: efficientnetb2 2: imported reports carry no per-image predictions; "
        "no predictions: no per-image predictions were kept; "
        "other images: not scored on the same test images as the baseline."
    )


def test_comparing_only_imports_draws_no_curve_chart(client: TestClient, session: Session) -> None:
    first = import_seed(session, "study: custom CNN", "custom-cnn")
    second = import_seed(session, "study: EfficientNetB2", "efficientnetb2-transfer")
    html = client.get(f"/compare?ids={ids_of([first, second])}").text
    ids = {e.attrs["id"] for e in elements(html) if "id" in e.attrs}
    assert not ids & {"accuracy-chart", "loss-chart", "time-chart", "gap-chart", "hyperparameters",
                      "compare-diagnostics", "matrices", "significance"}  # fmt: skip
    assert {"summary", "per-class", "f1-chart"} <= ids
    assert set(page_data(html)["figures"]) == {"f1-chart"}
    assert "for the first epoch" not in html and "No confusion matrices yet" not in html
    assert 'data-toggle-kind="train"' not in html
    assert by_id(html, "imports-note").text == (
        "Imported reports study: custom CNN, study: EfficientNetB2 carry a classification "
        "report only: they appear in the summary, the per-class report and its F1 chart, with "
        "no training curves, settings or per-image predictions to compare."
    )
    assert html.count('id="imports-note"') == 1
    live = client.get(page_data(html)["liveUrl"]).json()
    assert (
        set(live["figures"]) == {"f1-chart"} and "No curves" not in live["sections"]["curves_note"]
    )


def test_the_baseline_defaults_to_the_best_run_with_per_image_predictions(
    client: TestClient, session: Session
) -> None:
    worse = make_evaluated(session, wrong_every(4), LABELS)
    best = make_evaluated(session, wrong_every(10), LABELS, learning_rate=0.01)
    unkept = make_evaluated(session, LABELS, LABELS, fingerprint=None, seed=4)  # 100 %, no pairs
    imported = import_seed(session, "newest import")  # selected first, as the list sorts
    ids = ids_of([imported, unkept, best, worse])
    html = client.get(f"/compare?ids={ids}").text
    assert baseline_choice(html) == best.id
    assert client.get(f"/api/compare?ids={ids}").json()["baseline_id"] == best.id
    chosen = client.get(f"/compare?ids={ids}&baseline={imported.id}").text
    assert baseline_choice(chosen) == imported.id
    assert "the baseline has no per-image predictions" in by_id(chosen, "untested").text
    only_imports = [imported, import_seed(session, "better import", "efficientnetb2-fine-tuned")]
    data = client.get(f"/api/compare?ids={ids_of(only_imports)}").json()
    assert data["baseline_id"] == only_imports[1].id  # none has predictions: the most accurate
    # The best run scored on other test images could be paired with nothing: the best of
    # the runs sharing the most common test set is the baseline.
    elsewhere = make_evaluated(session, LABELS, LABELS, fingerprint="other", seed=5)
    ids = ids_of([elsewhere, best, worse])
    assert client.get(f"/api/compare?ids={ids}").json()["baseline_id"] == best.id


def test_the_f1_chart_turns_into_a_heatmap_past_six_runs(
    client: TestClient, session: Session
) -> None:
    runs = [make_evaluated(session, wrong_every(step), LABELS, seed=step) for step in range(2, 8)]
    runs.append(make_evaluated(session, LABELS, LABELS, seed=99))  # every image right
    six = page_data(client.get(f"/compare?ids={ids_of(runs[:6])}").text)["figures"]["f1-chart"]
    assert {trace["type"] for trace in six["data"]} == {"bar"}
    seven = page_data(client.get(f"/compare?ids={ids_of(runs)}").text)["figures"]["f1-chart"]
    (heatmap,) = seven["data"]
    assert heatmap["type"] == "heatmap"
    assert heatmap["x"] == [f"#{run.id}" for run in runs]
    assert heatmap["y"] == CLASSES
    assert len(heatmap["z"]) == 10 and {len(row) for row in heatmap["z"]} == {7}
    assert [row[-1] for row in heatmap["z"]] == [1.0] * 10
    assert all(0 <= value < 1 for value in heatmap["z"][0][:-1])
    assert heatmap["customdata"][0] == ["tiny cnn"] * 7


def test_per_class_headers_tell_runs_with_one_long_prefix_apart(
    client: TestClient, session: Session
) -> None:
    runs = [make_evaluated(session, wrong_every(step), LABELS, seed=step) for step in (3, 5)]
    names = ["seed: efficientnetb2-transfer, lr 0.001", "seed: efficientnetb2-transfer, lr 0.01"]
    for run, name in zip(runs, names, strict=True):
        rename(session, run, name)
    html = client.get(f"/compare?ids={ids_of(runs)}").text
    heads = [e for e in elements(html) if "experiment-head" in e.attrs.get("class", "").split()]
    f1 = [e for e in heads if e.attrs["data-metric"] == "f1-score"]
    assert [e.attrs["title"] for e in f1] == names  # the full name on hover
    labels = [
        e.text
        for e in elements(table_html(html, "per-class"))
        if e.attrs.get("class") == "run-label"
    ]
    assert labels[:2] == [f"#{run.id}" for run in runs] and len(set(labels[:2])) == 2
    shown = [
        e.text
        for e in elements(table_html(html, "per-class"))
        if e.attrs.get("class") == "run-name"
    ]
    assert shown[:2] == names  # whole, wrapped by the stylesheet rather than cut
    css = client.get("/static/app.css").text
    assert re.search(r"\.experiment-head \{[^}]*white-space: normal", css)


def test_an_imports_scores_keep_the_digits_its_report_printed(
    client: TestClient, session: Session
) -> None:
    """A two-digit report reads 82% and 0.83 on compare, not 82.00% and 0.830."""
    imported = import_seed(session, "study cnn")
    trained = make_evaluated(session, wrong_every(10), LABELS)
    page = elements(client.get(f"/compare?ids={imported.id},{trained.id}").text)

    def after(start: int, **attrs: str) -> int:
        """The index of the first element from ``start`` on with these attributes."""
        return next(
            i for i in range(start, len(page))
            if all(page[i].attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        )  # fmt: skip

    row = after(after(0, id="summary"), data_experiment=str(imported.id))
    assert page[after(row, data_column="test_accuracy")].text == "82%"
    table = after(0, id="per-class")
    airplane = after(table, data_row="airplane")
    cell = after(airplane, data_metric="f1-score", data_experiment=str(imported.id))
    assert page[cell + 1].text == "0.83"  # the cell's value span
    average = after(table, data_row="macro avg")  # both runs have one; ours has 3 decimals
    cell = after(average, data_metric="f1-score", data_experiment=str(trained.id))
    assert re.fullmatch(r"0\.\d{3}", page[cell + 1].text)
