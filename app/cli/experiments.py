"""The commands on experiments, all through the API: launch one, follow it, list, show,
cancel, retry, compare, export and import them; and what the server offers (presets, models,
workers)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from app.cli.options import ApiUrl, ExperimentId, ModelOption, PresetOption, api_client
from app.cli.output import console, fail, following, labelled, listing, minute
from app.cli.specs import build_spec
from app.client import ApiClient, ApiError
from app.core.models import IMPORTED_MODEL, INTEGER_MAX, Status
from app.core.presets import PRESETS
from app.core.report_export import import_body
from app.core.report_import import report_digits
from app.core.run_phase import RunPhase
from app.core.schemas import SpecError
from app.core.zoo import MODELS

commands = typer.Typer()
FINISHED = {status.value for status in Status if status.finished}


@commands.command()
def launch(
    model: ModelOption = None,
    preset: PresetOption = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Hyperparameter as key=value; repeatable.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Experiment name; default: the preset or model and what --set changes."),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag; repeatable.")] = None,
    follow: Annotated[bool, typer.Option(help="Show progress until it ends.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Launch an experiment through the API."""
    try:
        spec = build_spec(
            preset=preset, model=model, assignments=set_ or [], name=name, tags=tag or []
        )
    except SpecError as exc:
        for error in exc.errors:
            console.print(
                labelled("error:", "red", f"{error.field}: {error.message}"), highlight=False
            )
        raise typer.Exit(code=2) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    client = api_client(api_url)
    try:
        experiment = client.launch(spec)
        console.print(
            f"launched experiment {experiment['id']}: "
            f"{client.base_url}/experiments/{experiment['id']}"
        )
    except ApiError as exc:
        raise fail(str(exc)) from None
    if follow:
        _follow_to_the_end(client, experiment["id"])


@commands.command()
def presets() -> None:
    """List the ready specs `launch --preset` takes."""
    # The ids are what `--preset` takes: never cut; the description wraps instead.
    table = Table(Column("preset", no_wrap=True), Column("model", no_wrap=True),
                  Column("what", overflow="fold"),
                  "published test acc")  # fmt: skip
    for preset in PRESETS.values():
        published = (
            "" if preset.published_test_accuracy is None else str(preset.published_test_accuracy)
        )
        table.add_row(preset.name, preset.spec.model, preset.title, published)
    console.print(table)


@commands.command()
def models() -> None:
    """List the models `launch --model` takes."""
    table = Table("model", "family", "title")
    for info in MODELS.values():
        table.add_row(info.name, info.family, info.title)
    console.print(table)


def _follow_to_the_end(client: ApiClient, experiment_id: int) -> None:
    """`--follow` of `launch` and `retry`: the epochs as they train; exits 2 unless the
    experiment succeeds, so a script can tell."""
    show, cancel = f"cifarlab show {experiment_id}", f"cifarlab cancel {experiment_id}"
    with following(f"experiment {experiment_id}", show, cancel):
        experiment = _follow(client, experiment_id)
    if experiment["status"] != "succeeded":
        reason = experiment["error"] or experiment["stop_reason"]  # none for a plain cancel
        ended = f"experiment {experiment_id} {experiment['status']}"
        raise fail(f"{ended}: {reason}" if reason else ended)


PHASE_WORDS = {
    RunPhase.loading_data: "loading data",
    RunPhase.train: "training",
    RunPhase.fine_tune: "fine-tuning (phase 2)",
    RunPhase.evaluating: "evaluating on the test images",
}


def _stage(client: ApiClient, experiment: dict[str, Any]) -> str | None:
    """What the run is doing besides its epochs, which have their bars: its place in the
    queue (and what it waits for), loading data, a phase, evaluating; None once it has ended.
    Without it a queued run's `--follow` printed nothing, however long it waited."""
    if experiment["status"] == Status.queued:
        waits_for = (
            "it starts when a worker is free"
            if client.workers()
            else "no worker is online: start one with `cifarlab worker` (or `cifarlab up`)"
        )
        return f"queued (position {experiment['queue_position']}); {waits_for}"
    if experiment["status"] != Status.running:
        return None
    try:
        return PHASE_WORDS[RunPhase(experiment["run_phase"])]
    except ValueError:  # no phase yet, or one another version wrote
        return "starting"


def _follow(client: ApiClient, experiment_id: int) -> dict[str, Any]:
    """A line each time the run moves on to another stage, one progress bar per epoch, then
    the test accuracy."""
    bars: dict[int, TaskID] = {}
    stage = None
    with Progress(
        TextColumn("{task.description}", markup=False), BarColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        while True:
            experiment = client.experiment(experiment_id)
            if (now := _stage(client, experiment)) not in (None, stage):
                progress.console.print(f"{time.strftime('%H:%M:%S')} {now}", highlight=False)
                stage = now
            rows = {row["epoch"]: row for row in client.metrics(experiment_id)}
            current = experiment["current_epoch"]
            for epoch in range(1, max(current, max(rows, default=0)) + 1):
                if epoch not in bars:
                    bars[epoch] = progress.add_task(
                        f"epoch {epoch}/{experiment['total_epochs']}", total=1.0, info=""
                    )
                row = rows.get(epoch)
                if row:
                    info = f"acc {row['accuracy']:.3f} val_acc {row['val_accuracy'] or 0:.3f}"
                    progress.update(bars[epoch], completed=1.0, info=info)
                elif epoch == current:
                    progress.update(bars[epoch], completed=experiment["epoch_progress"])
            if experiment["status"] in FINISHED:
                break
            time.sleep(1.0)
    if experiment["status"] == "succeeded":
        console.print(
            f"test accuracy: {_score(experiment['test_accuracy'], experiment['spec'])}  "
            f"macro F1: {_score(experiment['macro_f1'], experiment['spec'])}"
        )
    return experiment


def split_values(option: str, given: list[str] | None, known: Sequence[str] | None) -> list[str]:
    """A repeatable option's values, each of which may be comma-separated; with ``known``,
    a value outside it is refused naming the option and the choices."""
    values = [value.strip() for text in given or [] for value in text.split(",") if value.strip()]
    for value in values:
        if known is not None and value not in known:
            raise ValueError(f"{option} {value!r}: choose from {', '.join(known)}")
    return values


@commands.command("list")
def list_(
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only these statuses: repeat or comma-separate (failed,cancelled)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these models (the zoo's, or an imported report's own): repeat or "
            "comma-separate."
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(help="Only runs with any of these tags: repeat or comma-separate."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Rows to show.")] = 20,
    api_url: ApiUrl = None,
) -> None:
    """List experiments, newest first; several values of one filter match any of them."""
    try:
        filters = {
            "status": split_values("--status", status, [s.value for s in Status]),
            # Any name: an imported report keeps its own model's (vgg16).
            "model": split_values("--model", model, None),
            "tag": split_values("--tag", tag, None),
        }
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        page = api_client(api_url).experiments(**filters, limit=limit)
    except ApiError as exc:
        raise fail(str(exc)) from None
    table = listing("id", "name", "model", "status", "test acc", "created")
    for item in page["items"]:
        accuracy = _score(item["test_accuracy"], item["spec"])
        table.add_row(str(item["id"]), item["name"], item["model"], item["status"], accuracy,
                      minute(item["created_at"]))  # fmt: skip
    console.print(table)
    console.print(f"{len(page['items'])} of {page['total']}")
    if not page["items"] and (unknown := [m for m in filters["model"] if m not in MODELS]):
        known = ", ".join([*MODELS, IMPORTED_MODEL])
        console.print(f"no run has model {', '.join(unknown)}; the zoo's models: {known}")


SHOWN_FIELDS = ("id", "name", "model", "status", "device", "worker_host", "test_accuracy",
                "macro_f1", "training_seconds", "wall_clock_seconds", "error")  # fmt: skip
LABEL_WIDTH = max(len(key) for key in (*SHOWN_FIELDS, "hyperparameters"))
"""`show`'s labels are right-aligned to the longest, so every value starts in one column."""


def _field_text(experiment: dict[str, Any], key: str) -> str:
    """One of `show`'s fields as the rest of the CLI prints it: durations as `compare` does
    and scores as `list` does, and a dash for what a run does not have yet. Printed raw,
    a run that never started read "device: None" and a time "1.9900706250045914"."""
    value = experiment[key]
    if value is None or value == "":
        return "-"
    if key.endswith("_seconds"):
        return _seconds(value)
    if key in ("test_accuracy", "macro_f1"):
        return _score(value, experiment["spec"])
    return str(value)


@commands.command()
def show(experiment_id: ExperimentId, api_url: ApiUrl = None) -> None:
    """Show one experiment with its epochs."""
    client = api_client(api_url)
    try:
        experiment = client.experiment(experiment_id)
        epochs = client.metrics(experiment_id)
    except ApiError as exc:
        raise fail(str(exc)) from None
    for key in SHOWN_FIELDS:
        console.print(f"{key:>{LABEL_WIDTH}}: {_field_text(experiment, key)}", highlight=False)
    hyperparameters = experiment["spec"].get("hyperparameters")
    if hyperparameters is None:  # an imported report: a result without a run behind it
        label = f"{'hyperparameters':>{LABEL_WIDTH}}"
        console.print(f"{label}: none (an imported report)", highlight=False)
    else:
        settings = Table("hyperparameter", "value")
        for name, value in hyperparameters.items():
            settings.add_row(name, json.dumps(value))
        console.print(settings)
    table = Table("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
    for row in epochs:
        table.add_row(
            *(str(row["epoch"]),),
            *(
                f"{row[k]:.4f}" if row[k] is not None else ""
                for k in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")
            ),
        )
    console.print(table)


@commands.command()
def cancel(experiment_id: ExperimentId, api_url: ApiUrl = None) -> None:
    """Cancel an experiment: a queued one never starts, a running one stops at its next batch.

    Exits 2, cancelling nothing, when it had already finished."""
    client = api_client(api_url)
    try:
        before = client.experiment(experiment_id)["status"]
        experiment = None if before in FINISHED else client.cancel(experiment_id)
    except ApiError as exc:
        raise fail(str(exc)) from None
    if experiment is None or experiment["status"] != "cancelled":
        ended = before if experiment is None else experiment["status"]
        raise fail(f"experiment {experiment_id} is {ended}: nothing was cancelled")
    console.print(f"experiment {experiment_id}: cancelled")


@commands.command()
def retry(
    experiment_id: ExperimentId,
    follow: Annotated[bool, typer.Option(help="Show progress until it ends.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Run a failed or cancelled experiment again, resuming from its last epoch checkpoint."""
    client = api_client(api_url)
    try:
        experiment = client.retry(experiment_id)
    except ApiError as exc:
        raise fail(str(exc)) from None
    console.print(f"experiment {experiment_id}: {experiment['status']}")
    if follow:
        _follow_to_the_end(client, experiment_id)


def _score(value: float | None, spec: dict[str, Any]) -> str:
    """Four decimals for a measured score; an imported one with the digits its report printed
    (0.82, not 0.8200, a precision it never had)."""
    if value is None:
        return ""
    return f"{value:.{report_digits(spec) or 4}f}"


def _percent(value: float | None, signed: bool = False) -> str:
    return "" if value is None else f"{value * 100:{'+' if signed else ''}.2f}%"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _print_comparison(comparison: dict[str, Any]) -> None:
    """The summary, then each run against the baseline: accuracy difference with its
    interval and McNemar's p, or why no paired test could run."""
    baseline = comparison["baseline_id"]
    names = {run["id"]: run["name"] for run in comparison["experiments"]}
    summary = listing("id", "name", "model", "status", "test acc", "training\ntime",
                      "best\nepoch", title=f"summary (baseline: {baseline})")  # fmt: skip
    for run in comparison["experiments"]:
        diagnosis = comparison["diagnostics"].get(str(run["id"])) or {}
        best = diagnosis.get("best_epoch")
        summary.add_row(str(run["id"]), run["name"], run["model"], run["status"],
                        _percent(run["test_accuracy"]), _seconds(run["training_seconds"]),
                        "" if best is None else str(best))  # fmt: skip
    console.print(summary)
    tests = Table("id", Column("name", overflow="fold"), "acc difference", "95% CI",
                  "McNemar p", "only baseline right", "only this right",
                  title=f"against the baseline, {baseline}: {names[baseline]}")  # fmt: skip
    untested = []
    for pairing in comparison["significance"]:
        interval, test = pairing.get("bootstrap"), pairing.get("mcnemar")
        if interval is None or test is None:
            untested.append(f"{pairing['b']}: {pairing['text']}")
            continue
        tests.add_row(str(pairing["b"]), names[pairing["b"]],
                      _percent(interval["difference"], signed=True),
                      f"[{_percent(interval['low'], True)}, {_percent(interval['high'], True)}]",
                      f"{test['p_value']:.3g}", str(test["only_a_correct"]),
                      str(test["only_b_correct"]))  # fmt: skip
    if tests.row_count:
        console.print(tests)
    for line in untested:
        console.print(f"no paired test for {line}", highlight=False)
    for warning in comparison["warnings"]:
        console.print(labelled("note:", "yellow", warning), highlight=False)


@commands.command()
def compare(
    experiment_ids: Annotated[
        list[int], typer.Argument(min=1, max=INTEGER_MAX, help="2 to 12 experiment ids.")
    ],
    baseline: Annotated[
        int | None,
        typer.Option(help="Differences and tests are against it (default: as the compare page)."),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print GET /api/compare's JSON instead.")
    ] = False,
    api_url: ApiUrl = None,
) -> None:
    """Compare experiments: headline figures, and each against a baseline.

    Against the baseline, each gets the accuracy difference, its confidence interval and
    McNemar's test."""
    try:
        comparison = api_client(api_url).compare(experiment_ids, baseline)
    except ApiError as exc:
        raise fail(str(exc)) from None
    if json_:
        typer.echo(json.dumps(comparison, indent=2))  # the whole output: JSON for scripts
        return
    _print_comparison(comparison)


@commands.command()
def export(
    experiment_id: ExperimentId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write it to this file instead; - prints it."),
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Print an experiment's test report as JSON, to bring it into another cifarlab.

    The JSON is in the shape `cifarlab import` (and POST /api/experiments/import) takes."""
    client = api_client(api_url)
    try:
        body = import_body(client.experiment(experiment_id), client.evaluation(experiment_id))
    except ApiError as exc:
        raise fail(str(exc)) from None
    text = json.dumps(body, indent=2) + "\n"
    if output is None or str(output) == "-":  # `-o -`: standard output, as Unix tools read it
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise fail(f"{output}: {exc.strerror}") from None
    console.print(f"experiment {experiment_id}'s report written to {output}", highlight=False)


def load_import_file(path: Path, name: str | None) -> dict[str, Any]:
    """A file `cifarlab export` wrote (JSON), or a classification report as printed (text,
    named by ``name`` or else the file's stem); ``name`` replaces the JSON's."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.strip():
        raise ValueError(f"{path}: empty; give a classification report or a file that "
                         "`cifarlab export` wrote")  # fmt: skip
    if not text.lstrip().startswith("{"):
        return {"name": name or path.stem, "report_text": text}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError(f"{path}: expected a JSON object as `cifarlab export` writes")
    return body | ({"name": name} if name else {})


@commands.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="JSON from `cifarlab export`, or a classification report.")
    ],
    name: Annotated[str | None, typer.Option(help="Name of the imported experiment.")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Import a result, as the web's import page does.

    The file is a report `cifarlab export` wrote, or scikit-learn's classification_report
    text."""
    client = api_client(api_url)
    try:
        experiment = client.import_report(load_import_file(file, name))
    except (ValueError, ApiError) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"imported experiment {experiment['id']}: {client.base_url}/experiments/{experiment['id']}",
        highlight=False,
    )


@commands.command()
def workers(api_url: ApiUrl = None) -> None:
    """List the workers online, their device and what each is running."""
    try:
        rows = api_client(api_url).workers()
    except ApiError as exc:
        raise fail(str(exc)) from None
    table = Table("worker", "device", "restarts", "running")
    for row in rows:
        running = row["running"]
        label = f"{running['id']}: {running['name']}" if running else "idle"
        restarts = str(row["restarts"]) + (
            f" (last {row['last_exit']})" if row["last_exit"] else ""
        )
        table.add_row(row["name"], row["device"], restarts, label)
    console.print(table)
