"""The commands on sweeps, through the API: `sweep` launches one (from options or a file) and
can follow its trials; `sweeps` lists them, shows one, cancels or retries its trials."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.options import ApiUrl, ModelOption, PresetOption, SweepId, api_client
from app.cli.output import console, fail, following, listing, minute
from app.cli.specs import RANDOM_EXAMPLE, PruneRule, build_sweep, load_sweep_file
from app.client import ApiClient, ApiError

commands = typer.Typer()
group = typer.Typer(help="Sweeps: list them, show one's trials, cancel or retry them.")
commands.add_typer(group, name="sweeps")

ACTIVE = ("queued", "running")


def _counts_text(counts: dict[str, int]) -> str:
    order = [*ACTIVE, "succeeded", "pruned", "failed", "cancelled"]
    known = sorted(counts, key=lambda status: order.index(status) if status in order else 99)
    return ", ".join(f"{counts[status]} {status}" for status in known)


def _value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _trial_label(trial: dict[str, Any]) -> str:
    point = ", ".join(f"{key}={_value_text(value)}" for key, value in trial["point"].items())
    return f"trial {trial['id']} ({point})"


def _print_sweep(sweep: dict[str, Any]) -> None:
    """The trial table: varied values, seed, status and best metric; then the best trial."""
    metric = sweep["metric"]
    table = Table("trial", *sweep["varied"], "seed", "status", f"best {metric}", "test acc",
                  "note", title=f"sweep {sweep['id']}: {sweep['name']}")  # fmt: skip
    for trial in sweep["trials"]:
        point = trial["point"]
        table.add_row(
            str(trial["id"]), *(_value_text(point.get(name)) for name in sweep["varied"]),
            str(point.get("seed")), trial["status"],
            "" if trial["best_metric"] is None else f"{trial['best_metric']:.4f}",
            "" if trial["test_accuracy"] is None else f"{trial['test_accuracy']:.4f}",
            trial["stop_reason"] or trial["error"] or "",
        )  # fmt: skip
    console.print(table)
    console.print(_counts_text(sweep["counts"]), highlight=False)
    best = sweep["best"]
    if best is not None:
        console.print(f"best: {_trial_label(best)}: {metric} {best['best_metric']:.4f}",
                      highlight=False)  # fmt: skip


def _follow_sweep(client: ApiClient, sweep_id: int) -> dict[str, Any]:
    """A line each time the counts change, until every trial has finished; then the table."""
    last = None
    while True:
        sweep = client.sweep(sweep_id)
        active = sum(sweep["counts"].get(status, 0) for status in ACTIVE)
        line = f"{sweep['trial_count'] - active}/{sweep['trial_count']} finished: " + (
            _counts_text(sweep["counts"])
        )
        if sweep["eta_seconds"] and active:
            line += f"; about {sweep['eta_seconds']:.0f} s left"
        if line != last:
            console.print(f"{time.strftime('%H:%M:%S')} {line}", highlight=False)
            last = line
        if not active:
            break
        time.sleep(1.0)
    _print_sweep(sweep)
    return sweep


@commands.command()
def sweep(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The whole sweep as YAML or JSON (the body of POST /api/sweeps), "
            "instead of the options below.",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = None,
    preset: PresetOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Hyperparameter every trial has, as key=value; repeatable."),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(help="Values to try, all combined: learning_rate=1e-3,3e-3; repeatable."),
    ] = None,
    random: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Drawn --trials times: {RANDOM_EXAMPLE}, dense_units=uniform:16:64 "
            "or optimizer=choice:adam,sgd; repeatable."
        ),
    ] = None,
    trials: Annotated[int | None, typer.Option(help="Random draws (with --random).")] = None,
    seeds: Annotated[
        str | None, typer.Option(help="A count (3: seeds 0-2) or a list (0,1,2); default: seed 0.")
    ] = None,
    max_parallel: Annotated[
        int | None, typer.Option(help="Trials running at once; default: no cap.")
    ] = None,
    prune: Annotated[
        PruneRule | None, typer.Option(help="Stop bad trials early; default: never.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Sweep name; none: what the base changes from its preset or model."),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag of every trial; repeatable.")] = None,
    follow: Annotated[bool, typer.Option(help="Show progress until every trial ends.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Launch a sweep through the API: a base spec, axes that vary it, and seeds."""
    options = (model, preset, set_, grid, random, trials, seeds, max_parallel, prune, name, tag)
    try:
        if file is not None:
            if any(option not in (None, []) for option in options):
                raise ValueError("give the sweep as FILE or as options, not both")
            body = load_sweep_file(file)
        else:
            body = build_sweep(
                preset=preset, model=model, assignments=set_ or [], grid=grid or [],
                random=random or [], trials=trials, seeds=seeds, max_parallel=max_parallel,
                prune=prune, name=name, tags=tag or [],
            )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from None
    client = api_client(api_url)
    try:
        launched = client.launch_sweep(body)
    except ApiError as exc:
        raise fail(str(exc)) from None
    sweep_id, ids = launched["id"], launched["experiment_ids"]
    console.print(
        f"launched sweep {sweep_id}: {len(ids)} trials: {client.base_url}/sweeps/{sweep_id}",
        highlight=False,
    )
    console.print(f"trial ids: {' '.join(map(str, ids))}", highlight=False)
    if not follow:
        return
    show, cancel = f"cifarlab sweeps show {sweep_id}", f"cifarlab sweeps cancel {sweep_id}"
    with following(f"sweep {sweep_id}", show, cancel):
        finished = _follow_sweep(client, sweep_id)
    lost = {k: n for k, n in finished["counts"].items() if k in ("failed", "cancelled")}
    if lost:
        raise fail(f"sweep {sweep_id}: {_counts_text(lost)}; "
                   f"`cifarlab sweeps retry {sweep_id}` runs them again")  # fmt: skip


@group.callback(invoke_without_command=True)
def sweeps_list(
    context: typer.Context,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    api_url: ApiUrl = None,
) -> None:
    """List sweeps, newest first, with their trials' statuses (or run a command below)."""
    if context.invoked_subcommand is not None:
        return
    try:
        page = api_client(api_url).sweeps(limit=limit)
    except ApiError as exc:
        raise fail(str(exc)) from None
    table = listing("id", "name", "model", "trials", "status", "created",
                    folding=("name", "status"))  # fmt: skip
    for item in page["items"]:
        table.add_row(str(item["id"]), item["name"], item["model"], str(item["trial_count"]),
                      _counts_text(item["counts"]), minute(item["created_at"]))  # fmt: skip
    console.print(table)
    console.print(f"{len(page['items'])} of {page['total']}")


@group.command("show")
def sweeps_show(sweep_id: SweepId, api_url: ApiUrl = None) -> None:
    """Show a sweep's trials (varied values, seed, status, best metric) and its best trial."""
    client = api_client(api_url)
    try:
        found = client.sweep(sweep_id)
    except ApiError as exc:
        raise fail(str(exc)) from None
    _print_sweep(found)
    console.print(f"{client.base_url}/sweeps/{sweep_id}", highlight=False)


def _act_on_sweep(sweep_id: int, api_url: str | None, *, retry: bool) -> None:
    client = api_client(api_url)
    try:
        found = client.retry_sweep(sweep_id) if retry else client.cancel_sweep(sweep_id)
    except ApiError as exc:
        raise fail(str(exc)) from None
    ids = found["experiment_ids"]
    if not ids:  # as `cancel` of a finished run, and as the API's 409 for retry
        raise fail(f"sweep {sweep_id}: every trial had ended; nothing was cancelled")
    verb = "retrying" if retry else "cancelled"
    console.print(f"sweep {sweep_id}: {verb} {len(ids)} trials {' '.join(map(str, ids))}",
                  highlight=False)  # fmt: skip


@group.command("cancel")
def sweeps_cancel(sweep_id: SweepId, api_url: ApiUrl = None) -> None:
    """Cancel a sweep's queued and running trials; finished ones keep their results.

    Exits 2 when every trial had already ended."""
    _act_on_sweep(sweep_id, api_url, retry=False)


@group.command("retry")
def sweeps_retry(sweep_id: SweepId, api_url: ApiUrl = None) -> None:
    """Queue a sweep's failed and cancelled trials again, under its cap."""
    _act_on_sweep(sweep_id, api_url, retry=True)
