"""`cifarlab bench`: the benchmarks behind docs/benchmarks.md. Each records into a throwaway
database and prints a table, then one JSON line for scripts."""

from __future__ import annotations

import atexit
import enum
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.bench import chart as charts
from app.cli.output import console, fail
from app.cli.services import require_training
from app.core.config import get_settings, make_private_dir
from app.core.zoo import MODELS

commands = typer.Typer()
group = typer.Typer(help="Benchmarks; each prints a table, then one JSON line.")
commands.add_typer(group, name="bench")


def _scratch_database() -> None:
    """Benchmarks record into a throwaway database, never the user's experiment list."""
    from app.migrate import upgrade

    scratch = Path(tempfile.mkdtemp(prefix="cifarlab-bench-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ["CIFARLAB_DATABASE_URL"] = f"sqlite:///{scratch / 'bench.db'}"
    get_settings.cache_clear()
    upgrade()


def _print_figures(title: str, rows: Sequence[tuple[str, ...]], header: tuple[str, ...],
                   figures: dict[str, Any], notes: Sequence[str] = ()) -> None:  # fmt: skip
    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for note in notes:
        console.print(note)
    typer.echo(json.dumps(figures))  # the last line: one JSON object for scripts


ChartOption = Annotated[
    Path | None, typer.Option(help="Also draw the figures as an SVG bar chart at this path.")
]


@group.command("train")
def bench_train(
    train_size: Annotated[
        int, typer.Option(min=10, max=50_000, help="Training images (80% fit, 20% validate).")
    ] = 10_000,
    epochs: Annotated[int, typer.Option(min=2, help="Epochs per run; the first is not timed.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step.")] = 128,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds of all variants.")] = 2,
    variants: Annotated[
        str,
        typer.Option(
            help="plain, cifarlab, cifarlab-norecord, cifarlab-xla, "
            "cifarlab-bf16, cifarlab-bf16-xla"
        ),
    ] = "plain,cifarlab,cifarlab-norecord,cifarlab-xla,cifarlab-bf16",
    seed: Annotated[int, typer.Option(help="Data subset and weights.")] = 0,
    chart: ChartOption = None,
    to_accuracy: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=1.0,
            help="Instead of throughput: the wall time each preset of --presets needs to reach "
            "this validation accuracy on the full copy, beside the plain Keras script.",
        ),
    ] = None,
    presets: Annotated[
        str, typer.Option(help="With --to-accuracy: the presets to race, comma-separated.")
    ] = "fast-90,study-custom-cnn",
) -> None:
    """cifarlab's worker pipeline against plain Keras, or presets' time to an accuracy.

    Without --to-accuracy: the same model and data (custom CNN) trained both ways. With it:
    the time each preset takes to reach that accuracy, beside the plain-Keras script."""
    require_training()
    _scratch_database()
    if to_accuracy is not None:
        _race_to_accuracy(to_accuracy, [p.strip() for p in presets.split(",") if p.strip()], seed)
        return
    from worker.bench import train_benchmark

    try:
        figures = train_benchmark(
            train_size=train_size, epochs=epochs, batch_size=batch_size, rounds=rounds,
            variants=[v.strip() for v in variants.split(",") if v.strip()], seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from None
    speedups = figures.get("speedup_vs_plain", {})
    rows = [
        (f["label"], f"{f['images_per_second']:.0f}", f"{speedups.get(name, 1.0):.2f}x",
         f"{f['val_accuracy']:.3f}", " ".join(map(str, f["per_round"])))
        for name, f in figures["variants"].items()
    ]  # fmt: skip
    header = ("variant", "images/s", "vs plain", "val acc", "per round")
    notes = []
    if "recording_percent_of_epoch" in figures:
        notes.append(
            f"recording (metrics, progress, cancel checks): "
            f"{figures['recording_percent_of_epoch']:.2f}% of epoch time, timed in its hooks"
        )
    charts.write(charts.train_chart(figures), chart)
    _print_figures("training throughput", rows, header, figures, notes)


def _race_to_accuracy(target: float, presets: list[str], seed: int) -> None:
    """Runs in a scratch data folder too (models, checkpoints), sharing only the decoded
    dataset cache, so bench runs never touch the user's experiments' files."""
    user_cache = get_settings().dataset_cache_dir
    scratch = Path(tempfile.mkdtemp(prefix="cifarlab-bench-data-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    make_private_dir(user_cache)
    (scratch / "datasets").symlink_to(user_cache, target_is_directory=True)
    os.environ["CIFARLAB_DATA_DIR"] = str(scratch)
    get_settings.cache_clear()
    from worker.bench import accuracy_benchmark

    try:
        figures = accuracy_benchmark(target=target, presets=presets, plain_epochs=20, seed=seed)
    except ValueError as exc:
        raise fail(str(exc)) from None

    def minutes(seconds: float | None) -> str:
        return "not reached" if seconds is None else f"{seconds / 60:.1f} min"

    rows = [
        (r["contender"], minutes(r["seconds"]), minutes(r["training_seconds"]),
         "-" if r["reached_epoch"] is None else str(r["reached_epoch"]),
         f"{r['best_val_accuracy']:.3f}", str(r["epochs_run"]))
        for r in figures["races"]
    ]  # fmt: skip
    header = ("contender", "wall time", "in epochs", "epoch", "best val acc", "epochs run")
    _print_figures(f"time to {target:.2f} validation accuracy", rows, header, figures)


@group.command("memory")
def bench_memory(
    model: Annotated[str, typer.Option(help="A transfer model of the zoo.")] = "efficientnet_b2",
    image_size: Annotated[
        int, typer.Option(min=32, max=600, help="Pixels per side after resizing.")
    ] = 128,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step.")] = 128,
    steps: Annotated[int, typer.Option(min=1, help="Training steps to run.")] = 10,
    chart: ChartOption = None,
) -> None:
    """Peak memory of a transfer model training on the full training set at a large size."""
    transfer = [name for name, info in MODELS.items() if info.family == "transfer"]
    if model not in transfer:  # before the minute of loading the data, not after
        raise fail(f"--model {model!r}: choose a transfer model: {', '.join(transfer)}")
    require_training()
    _scratch_database()
    from worker.bench import memory_benchmark

    figures = memory_benchmark(model=model, image_size=image_size, batch_size=batch_size,
                               steps=steps)  # fmt: skip
    rows = [(key, str(value)) for key, value in figures.items()]
    charts.write(charts.memory_chart(figures), chart)
    _print_figures("peak memory", rows, ("figure", "value"), figures)


class BenchDatabase(enum.StrEnum):
    sqlite = "sqlite"
    postgresql = "postgresql"
    both = "both"


@group.command("web")
def bench_web(
    experiments: Annotated[
        int, typer.Option(min=2, help="Experiments to fill the database with.")
    ] = 1000,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of each finished experiment.")] = 50,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent readers.")] = 20,
    requests: Annotated[int, typer.Option(min=1, help="Requests per endpoint.")] = 200,
    sweep_trials: Annotated[
        int,
        typer.Option(
            min=0,
            max=2000,
            help="Make this many of the experiments one sweep's trials (ten seeds per "
            "configuration; 20 or more) and measure its page and seed-group compare.",
        ),
    ] = 0,
    per_image: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Store per-image test results for only the newest N experiments besides "
            "the sweep (default: all; 10,000 experiments' take about 600 MB).",
        ),
    ] = None,
    database: Annotated[
        BenchDatabase, typer.Option(help="Database to measure.")
    ] = BenchDatabase.both,
    processes: Annotated[
        list[int] | None,
        typer.Option(
            min=1,
            help="Web server processes; repeat to measure each (default: as many as "
            "`cifarlab web` starts).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the databases and server logs here (default: a temporary "
            "directory, removed)."
        ),
    ] = None,
    chart: ChartOption = None,
) -> None:
    """The dashboard under load; exits 1 if anything failed.

    Fill a database, serve it on loopback, and measure each page and API with concurrent
    readers while a worker records epochs."""
    from app.bench import web

    if sweep_trials and not web.MIN_SWEEP_TRIALS <= sweep_trials <= experiments - 2:
        raise typer.BadParameter(
            f"0, or {web.MIN_SWEEP_TRIALS} to the experiments less two", param_hint="--sweep-trials"
        )
    databases = web.DATABASES if database is BenchDatabase.both else (database.value,)
    figures = web.run(
        web.Options(
            experiments=experiments, epochs=epochs, clients=clients, requests=requests,
            databases=databases, data_dir=data_dir, sweep_trials=sweep_trials,
            per_image=per_image,
            processes=tuple(processes or [get_settings().web_process_count]),
        )
    )  # fmt: skip
    console.print(web.report(figures), highlight=False)
    charts.write(charts.web_chart(figures), chart)
    typer.echo(json.dumps(figures, default=str))  # the last line: one JSON object for scripts
    if not figures["goals"]["correct"]:
        raise typer.Exit(code=1)


@group.command("stream")
def bench_stream(
    seconds: Annotated[float, typer.Option(min=1, help="How long the page stays open.")] = 60,
    epoch_seconds: Annotated[float, typer.Option(min=0.1, help="Seconds per epoch.")] = 5,
    progress_seconds: Annotated[
        float, typer.Option(min=0.05, help="Seconds between progress writes.")
    ] = 1,
) -> None:
    """Queries and bytes per minute of one open experiment page while its run trains."""
    _scratch_database()
    from app.bench import stream

    figures = stream.run(stream.Options(seconds=seconds, epoch_seconds=epoch_seconds,
                                        progress_seconds=progress_seconds))  # fmt: skip
    rows = [(key, str(value)) for key, value in figures.items()]
    _print_figures("one open experiment page", rows, ("figure", "value"), figures)


@group.command("login")
def bench_login(
    loops: Annotated[int, typer.Option(min=1, help="Clients guessing passwords at once.")] = 30,
    samples: Annotated[int, typer.Option(min=2, help="Requests timed per figure.")] = 40,
    processes: Annotated[int, typer.Option(min=1, help="Web server processes.")] = 1,
) -> None:
    """Signed-in API latency, alone and while clients guess passwords.

    Also a wrong password's time for a real user against an unknown one (which must not tell
    them apart)."""
    from app.bench import login

    figures = login.run(login.Options(loops=loops, samples=samples, processes=processes))
    rows = [
        (name, f"{figures[name]['p50_ms']:.1f}", f"{figures[name]['p95_ms']:.1f}")
        for name in ("signed_in_alone", "signed_in_while_guessing",
                     "wrong_password_real_user", "wrong_password_unknown_user")
    ]  # fmt: skip
    _print_figures(f"sign-in, {loops} guessing clients", rows, ("figure", "p50 ms", "p95 ms"),
                   figures)  # fmt: skip
