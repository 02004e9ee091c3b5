"""The `cifarlab` command: run the services, and launch and inspect experiments."""

from __future__ import annotations

import enum
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from app.bench import chart as charts
from app.client import ApiClient, ApiError
from app.core.config import get_settings, make_private_dir, restrict_file_modes
from app.core.models import IMPORTED_MODEL, Status
from app.core.naming import parse_named_spec
from app.core.presets import PRESETS
from app.core.report_export import import_body
from app.core.report_import import report_digits
from app.core.schemas import SpecError
from app.core.zoo import MODELS
from app.embedded_redis import free_port, redis_url, start_redis
from app.supervisor import Backoff, Supervisor
from app.web_server import command as web_command
from app.worker_extra import cannot_train_reason

cli = typer.Typer(
    help="cifarlab: launch, watch and compare CIFAR-10 experiments.", no_args_is_help=True
)
# soft_wrap: a line longer than the terminal is left for the terminal to wrap, so a printed
# path or token stays one string to copy, and piped output never gets line breaks inside it.
# Tables still fit the width.
console = Console(soft_wrap=True)
FINISHED = {status.value for status in Status if status.finished}

ApiUrl = Annotated[
    str | None, typer.Option(help="cifarlab server to talk to \\[env: CIFARLAB_API_URL].")
]


def _client(api_url: str | None) -> ApiClient:
    settings = get_settings()
    return ApiClient(api_url or settings.api_url, token=settings.api_token)


def _fail(message: str) -> typer.Exit:
    """Prints the message as written: brackets in it (`cifarlab[worker]`, a list in a run's
    error) are text, not Rich markup."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code=2)


def default_worker_name() -> str:
    """``cifarlab-PID@host``: this process's id makes the name unique on its host, so two
    workers never share one presence row; `cifarlab worker` execs Celery, which keeps the id."""
    return f"cifarlab-{os.getpid()}@{socket.gethostname()}"


def worker_argv(
    concurrency: int, loglevel: str, hostname: str, *, quiet: bool = False
) -> list[str]:
    """Celery's command line; ``quiet`` leaves out its start-up banner."""
    return [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", *(["--quiet"] if quiet else []),
        "worker", "--concurrency", str(concurrency), "--loglevel", loglevel,
        "--queues", get_settings().queue, "--hostname", hostname,
    ]  # fmt: skip


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_exposure(host: str) -> None:
    """Open access (no accounts) only on loopback, unless auth is disabled on purpose."""
    from app.core.db import session_scope
    from app.services import accounts

    settings = get_settings()
    if is_loopback(host) or settings.auth == "disabled":
        return
    with session_scope() as session:
        if accounts.any_users(session=session):
            return
    raise ValueError(
        f"cifarlab would listen on {host} with no accounts, so anyone who reaches it could "
        "launch and delete experiments. Create an admin first: `cifarlab user create NAME "
        "--admin`, with the same --data-dir or CIFARLAB_DATABASE_URL; or set "
        "CIFARLAB_AUTH=disabled to run open on purpose."
    )


@cli.command()
def up(
    host: Annotated[str, typer.Option(help="Address the web server listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web server.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Database, broker and models \\[env: CIFARLAB_DATA_DIR].")
    ] = None,
    redis_port: Annotated[int, typer.Option(help="Embedded Redis port; 0 picks a free one.")] = 0,
    verbose: Annotated[
        bool,
        typer.Option(help="Also show the migrations', Celery's, uvicorn's and TensorFlow's logs."),
    ] = False,
) -> None:
    """Start everything on this machine, and restart any part that dies.

    The parts: an embedded Redis, SQLite, one worker and the web server."""
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if data_dir is not None:
        os.environ["CIFARLAB_DATA_DIR"] = str(data_dir.resolve())
    get_settings.cache_clear()
    settings = get_settings()
    make_private_dir(settings.data_dir)
    redis_port = redis_port or free_port()
    os.environ["CIFARLAB_REDIS_URL"] = redis_url(settings.data_dir, redis_port)
    os.environ["CIFARLAB_API_URL"] = f"http://{host}:{port}"
    get_settings.cache_clear()

    from app.migrate import upgrade

    upgrade()
    try:
        check_exposure(host)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    cannot_train = cannot_train_reason()
    supervisor = Supervisor()
    name = default_worker_name()
    try:
        supervisor.supervise(
            "redis", lambda: start_redis(settings.data_dir, redis_port), backoff=Backoff()
        )
        env = dict(os.environ)
        level = "INFO" if verbose else "WARNING"
        if not verbose:
            # Each pool process's TensorFlow prints its start-up INFO and WARNING lines (oneDNN
            # is on, no CUDA driver, CPU features) after the "running at" line. A level set by
            # the user wins.
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if cannot_train is None:
            supervisor.start(
                "worker", worker_argv(1, level, name, quiet=not verbose), env,
                backoff=Backoff(), on_death=lambda returncode: _worker_died(name, returncode),
            )  # fmt: skip
        web_argv = web_command(host, port, settings.web_process_count, log_level=level.lower())
        supervisor.start("web", web_argv, env, backoff=Backoff())
    except BaseException:
        supervisor.stop()
        raise
    _wait_until_ready(host, port, supervisor, worker=cannot_train is None)
    if cannot_train is not None:
        console.print(
            f"[yellow]warning:[/yellow] no worker started: {escape(cannot_train)}. "
            "Experiments wait in the queue until a worker connects.",
            highlight=False,
        )
    console.print(
        f"cifarlab is running at http://{host}:{port} (data in {settings.data_dir}); "
        "press Ctrl-C to stop",
        highlight=False,
    )
    raise typer.Exit(code=supervisor.wait())


def _require_training() -> None:
    """Commands that train stop here, before any work, on an install without the extra."""
    reason = cannot_train_reason()
    if reason is not None:
        raise _fail(reason)


def _worker_died(name: str, returncode: int) -> None:
    """Its runs go back to the queue now (they resume from their checkpoints), not after the
    heartbeat timeout, and so do its messages: it was this Redis's only consumer. Its row on
    /workers counts the restart."""
    from app.core import crud
    from app.core.db import session_scope
    from app.core.interruptions import describe_exit, requeue_dead_worker
    from app.core.queue import restore_unacknowledged

    requeue_dead_worker(get_settings(), worker_name=name, returncode=returncode)
    restore_unacknowledged()
    with session_scope() as session:
        crud.record_worker_restart(session=session, name=name, reason=describe_exit(returncode))


def _wait_until_ready(
    host: str, port: int, supervisor: Supervisor, *, worker: bool, timeout: float = 60
) -> None:
    """Until the web answers and, if one was started, a worker is online (or a child exits,
    or time is up), so the "running at" line comes after what the children print as they
    start. A child that died meanwhile is restarted once ``supervisor.wait`` runs."""
    local = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    url = f"http://{f'[{local}]' if ':' in local else local}:{port}/api/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.process.poll() is not None for child in supervisor.children):
            return
        try:
            health = httpx.get(url, timeout=2).json()
            parts_up = health.get("database") == health.get("broker") == "ok"
            if health.get("status") == "ok" or (not worker and parts_up):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)


@cli.command()
def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Web server processes (default: CIFARLAB_WEB_PROCESSES, else one per core, "
            "at most 4).",
        ),
    ] = None,
) -> None:
    """Run only the web server (reads CIFARLAB_DATABASE_URL and CIFARLAB_REDIS_URL)."""
    try:
        check_exposure(host)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _require_database()
    count = processes or get_settings().web_process_count
    os.execv(sys.executable, web_command(host, port, count))


def _require_database() -> None:
    """A service refuses to start on a database without cifarlab's current schema."""
    from app.database_location import SERVICE_ADVICE, DatabaseMissing, open_database

    try:
        open_database(advice=SERVICE_ADVICE)
    except DatabaseMissing as exc:
        raise _fail(str(exc)) from None


def parse_gpus(gpus: str) -> list[str]:
    """`0,1,3` -> ["0", "1", "3"]: one worker per listed GPU."""
    found = [part.strip() for part in gpus.split(",") if part.strip()]
    if not found or not all(part.isdigit() for part in found) or len(set(found)) != len(found):
        raise ValueError(f"--gpus {gpus!r}: list distinct GPU numbers, e.g. --gpus 0,1")
    return found


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Experiments trained at once (CPU).")] = 1,
    gpus: Annotated[
        str | None,
        typer.Option(help="One worker process per GPU, e.g. 0,1 (each sees only its GPU)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Worker name, unique per machine; %h is the host name. "
            "Default: cifarlab-PID@host.",
            show_default=False,
        ),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run training workers (reads CIFARLAB_DATABASE_URL and CIFARLAB_REDIS_URL)."""
    _require_training()
    _require_database()
    name = name or default_worker_name()
    if gpus is None:
        os.execv(sys.executable, worker_argv(concurrency, loglevel, hostname=name))
    try:
        devices = parse_gpus(gpus)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    supervisor = Supervisor(peers=True)
    for device in devices:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": device}
        prefix, _, host = name.partition("@")
        argv = worker_argv(1, loglevel, hostname=f"{prefix}-gpu{device}@{host or '%h'}")
        supervisor.start(f"worker gpu {device}", argv, env)
    raise typer.Exit(code=supervisor.wait())


DataDir = Annotated[
    Path | None,
    typer.Option(help="The data directory `cifarlab up` uses \\[env: CIFARLAB_DATA_DIR]."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="SQLAlchemy URL; default: SQLite in the data directory "
                 "\\[env: CIFARLAB_DATABASE_URL]."),
]  # fmt: skip


@cli.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date, creating the database if there is none.

    With CIFARLAB_ADMIN_USER set and no account yet, also create that admin."""
    from app.core.db import session_scope
    from app.database_location import describe, has_schema, point_at
    from app.migrate import upgrade
    from app.services import accounts

    settings = point_at(data_dir=data_dir, database_url=database_url)
    where = describe(settings.sqlalchemy_url)
    existed = has_schema(settings.sqlalchemy_url)
    upgrade()
    if existed:
        console.print(f"cifarlab database is up to date: {where}", highlight=False)
    else:
        console.print(f"created a new cifarlab database: {where}", highlight=False)
    if settings.admin_user:
        try:
            with session_scope() as session:
                admin = accounts.bootstrap_admin(
                    session=session,
                    username=settings.admin_user,
                    password_file=settings.admin_password_file,
                )
        except ValueError as exc:
            raise _fail(f"first admin {settings.admin_user!r} not created: {exc}") from None
        if admin is not None:
            console.print(f"created admin user {admin.username} (CIFARLAB_ADMIN_USER)")


def parse_value(raw: str) -> Any:
    """A value on the command line: JSON (numbers, null, true) or else text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _split(option: str, assignment: str, example: str) -> tuple[str, str]:
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{option} {assignment!r}: write it as key=value, e.g. {example}")
    return key.strip(), raw


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set key=value`: values read as JSON (numbers, null, true) or else as text."""
    return {
        key: parse_value(raw)
        for key, raw in (_split("--set", assignment, "epochs=2") for assignment in assignments)
    }


def base_spec(preset: str | None, model: str | None) -> dict[str, Any]:
    """A preset's spec, or ``model`` (default custom_cnn) with its defaults, as plain JSON:
    what `launch` and `sweep` start from."""
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"no preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        base = PRESETS[preset].spec.model_dump(mode="json")
        if model is not None and model != base["model"]:
            raise ValueError(f"preset {preset} trains {base['model']}; drop --model {model}")
        return base
    return {"name": "", "model": model or "custom_cnn", "hyperparameters": {}}


def build_spec(
    *,
    preset: str | None,
    model: str | None,
    assignments: list[str],
    name: str | None,
    tags: list[str],
) -> dict[str, Any]:
    """A spec from a preset (or a model's defaults) with `--set` overrides, as plain JSON;
    without ``name``, named by what it changes (``app.core.naming``, as the server would)."""
    base = base_spec(preset, model)
    base["hyperparameters"].update(parse_assignments(assignments))
    base["name"] = name or ""
    base["tags"] = [*base.get("tags", []), *tags]
    return parse_named_spec(base).model_dump(mode="json")


@cli.command()
def launch(
    model: Annotated[
        str | None, typer.Option(help="Model to train (see `cifarlab models`); default custom_cnn.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Start from a ready spec (see `cifarlab presets`).")
    ] = None,
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
            console.print(f"[red]error:[/red] {error.field}: {error.message}", highlight=False)
        raise typer.Exit(code=2) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    client = _client(api_url)
    try:
        experiment = client.launch(spec)
        console.print(
            f"launched experiment {experiment['id']}: "
            f"{client.base_url}/experiments/{experiment['id']}"
        )
    except ApiError as exc:
        raise _fail(str(exc)) from None
    if follow:
        _follow_to_the_end(client, experiment["id"])


@cli.command()
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


@cli.command()
def models() -> None:
    """List the models `launch --model` takes."""
    table = Table("model", "family", "title")
    for info in MODELS.values():
        table.add_row(info.name, info.family, info.title)
    console.print(table)


def _follow_to_the_end(client: ApiClient, experiment_id: int) -> None:
    """`--follow` of `launch` and `retry`: the epochs as they train; exits 2 unless the
    experiment succeeds, so a script can tell."""
    try:
        experiment = _follow(client, experiment_id)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    if experiment["status"] != "succeeded":
        raise _fail(f"experiment {experiment_id} {experiment['status']}: {experiment['error']}")


def _follow(client: ApiClient, experiment_id: int) -> dict[str, Any]:
    """One progress bar per epoch, then the test accuracy."""
    bars: dict[int, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        while True:
            experiment = client.experiment(experiment_id)
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


@cli.command("list")
def list_(
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only these statuses: repeat or comma-separate (failed,cancelled)."),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option(help="Only these models: repeat or comma-separate.")
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
            "model": split_values("--model", model, [*MODELS, IMPORTED_MODEL]),
            "tag": split_values("--tag", tag, None),
        }
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        page = _client(api_url).experiments(**filters, limit=limit)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    table = Table("id", "name", "model", "status", "test acc", "created")
    for item in page["items"]:
        accuracy = _score(item["test_accuracy"], item["spec"])
        table.add_row(
            str(item["id"]),
            item["name"],
            item["model"],
            item["status"],
            accuracy,
            item["created_at"][:19],
        )
    console.print(table)
    console.print(f"{len(page['items'])} of {page['total']}")


@cli.command()
def show(experiment_id: int, api_url: ApiUrl = None) -> None:
    """Show one experiment with its epochs."""
    client = _client(api_url)
    try:
        experiment = client.experiment(experiment_id)
        epochs = client.metrics(experiment_id)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    for key in (
        "id",
        "name",
        "model",
        "status",
        "device",
        "worker_host",
        "test_accuracy",
        "macro_f1",
        "training_seconds",
        "wall_clock_seconds",
        "error",
    ):
        console.print(f"{key:>16}: {experiment[key]}", highlight=False)
    hyperparameters = experiment["spec"].get("hyperparameters")
    if hyperparameters is None:  # an imported report: a result without a run behind it
        console.print(f"{'hyperparameters':>16}: none (an imported report)", highlight=False)
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


@cli.command()
def cancel(experiment_id: int, api_url: ApiUrl = None) -> None:
    """Cancel an experiment: a queued one never starts, a running one stops at its next batch.

    Exits 2, cancelling nothing, when it had already finished."""
    client = _client(api_url)
    try:
        before = client.experiment(experiment_id)["status"]
        experiment = None if before in FINISHED else client.cancel(experiment_id)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    if experiment is None or experiment["status"] != "cancelled":
        ended = before if experiment is None else experiment["status"]
        raise _fail(f"experiment {experiment_id} is {ended}: nothing was cancelled")
    console.print(f"experiment {experiment_id}: cancelled")


@cli.command()
def retry(
    experiment_id: int,
    follow: Annotated[bool, typer.Option(help="Show progress until it ends.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Run a failed or cancelled experiment again, resuming from its last epoch checkpoint."""
    client = _client(api_url)
    try:
        experiment = client.retry(experiment_id)
    except ApiError as exc:
        raise _fail(str(exc)) from None
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
    summary = Table("id", Column("name", overflow="fold"), "model", "status", "test acc",
                    "training time", "best epoch", title="summary")  # fmt: skip
    for run in comparison["experiments"]:
        diagnosis = comparison["diagnostics"].get(str(run["id"])) or {}
        best = diagnosis.get("best_epoch")
        label = f"{run['id']} (baseline)" if run["id"] == baseline else str(run["id"])
        summary.add_row(label, run["name"], run["model"], run["status"],
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
        console.print(f"[yellow]note:[/yellow] {warning}", highlight=False)


@cli.command()
def compare(
    experiment_ids: Annotated[list[int], typer.Argument(help="2 to 12 experiment ids.")],
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
    if baseline is not None and baseline not in experiment_ids:
        raise _fail(f"--baseline {baseline}: give one of the compared ids")
    try:
        comparison = _client(api_url).compare(experiment_ids, baseline)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    if json_:
        print(json.dumps(comparison, indent=2))  # the whole output: JSON for scripts
        return
    _print_comparison(comparison)


@cli.command()
def export(
    experiment_id: int,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write it here instead of printing it.")
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Print an experiment's test report as JSON, to bring it into another cifarlab.

    The JSON is in the shape `cifarlab import` (and POST /api/experiments/import) takes."""
    client = _client(api_url)
    try:
        body = import_body(client.experiment(experiment_id), client.evaluation(experiment_id))
    except ApiError as exc:
        raise _fail(str(exc)) from None
    text = json.dumps(body, indent=2) + "\n"
    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise _fail(f"{output}: {exc.strerror}") from None
    console.print(f"experiment {experiment_id}'s report written to {output}", highlight=False)


def load_import_file(path: Path, name: str | None) -> dict[str, Any]:
    """A file `cifarlab export` wrote (JSON), or a classification report as printed (text,
    named by ``name`` or else the file's stem); ``name`` replaces the JSON's."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.lstrip().startswith("{"):
        return {"name": name or path.stem, "report_text": text}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError(f"{path}: expected a JSON object as `cifarlab export` writes")
    return body | ({"name": name} if name else {})


@cli.command("import")
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
    client = _client(api_url)
    try:
        experiment = client.import_report(load_import_file(file, name))
    except (ValueError, ApiError) as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"imported experiment {experiment['id']}: {client.base_url}/experiments/{experiment['id']}",
        highlight=False,
    )


@cli.command()
def workers(api_url: ApiUrl = None) -> None:
    """List the workers online, their device and what each is running."""
    try:
        rows = _client(api_url).workers()
    except ApiError as exc:
        raise _fail(str(exc)) from None
    table = Table("worker", "device", "restarts", "running")
    for row in rows:
        running = row["running"]
        label = f"{running['id']}: {running['name']}" if running else "idle"
        restarts = str(row["restarts"]) + (
            f" (last {row['last_exit']})" if row["last_exit"] else ""
        )
        table.add_row(row["name"], row["device"], restarts, label)
    console.print(table)


class _SweepFileLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` (an exponent without a dot) as text; a sweep file writes
    learning rates that way, so here it is a number, as in JSON."""


_SweepFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_sweep_file(path: Path) -> Any:
    """A sweep as a YAML or JSON file, in the body ``POST /api/sweeps`` takes."""
    if path.suffix.lower() not in {".yaml", ".yml", ".json"}:
        raise ValueError(f"{path}: give a .yaml, .yml or .json file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.load(text, Loader=_SweepFileLoader)  # noqa: S506 (a SafeLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None


RANDOM_EXAMPLE = "learning_rate=log_uniform:1e-4:1e-1"


def parse_grid(axes: list[str]) -> dict[str, list[Any]]:
    """`--grid name=v1,v2,...`: each value read as `--set` reads one."""
    grid = {}
    for axis in axes:
        key, raw = _split("--grid", axis, "learning_rate=1e-3,3e-3")
        grid[key] = [parse_value(value.strip()) for value in raw.split(",")]
    return grid


def parse_random(axes: list[str]) -> dict[str, dict[str, Any]]:
    """`--random name=uniform:LOW:HIGH`, `name=log_uniform:LOW:HIGH` or `name=choice:A,B`."""
    drawn: dict[str, dict[str, Any]] = {}
    for axis in axes:
        key, raw = _split("--random", axis, RANDOM_EXAMPLE)
        distribution, _, rest = raw.partition(":")
        low, sep, high = rest.partition(":")
        if distribution == "choice" and rest:
            values = [parse_value(value.strip()) for value in rest.split(",")]
            drawn[key] = {"distribution": distribution, "values": values}
        elif distribution in ("uniform", "log_uniform") and sep:
            drawn[key] = {"distribution": distribution, "low": parse_value(low),
                          "high": parse_value(high)}  # fmt: skip
        else:
            raise ValueError(
                f"--random {axis!r}: write name=uniform:LOW:HIGH, name=log_uniform:LOW:HIGH "
                f"or name=choice:A,B, e.g. {RANDOM_EXAMPLE}"
            )
    return drawn


def parse_seeds(text: str) -> int | list[int]:
    """`--seeds 3`: seeds 0, 1 and 2; `--seeds 0,1,2` (or `7,` for one): those seeds."""
    parts = [part.strip() for part in text.split(",")]
    if "," in text:
        parts = [part for part in parts if part]
    if not parts or not all(part.isdigit() for part in parts):
        raise ValueError(f"--seeds {text!r}: give a count (3) or a list of seeds (0,1,2)")
    return int(parts[0]) if "," not in text else [int(part) for part in parts]


class PruneRule(enum.StrEnum):
    median = "median"
    asha = "asha"


def build_sweep(
    *,
    preset: str | None,
    model: str | None,
    assignments: list[str],
    grid: list[str],
    random: list[str],
    trials: int | None,
    seeds: str | None,
    max_parallel: int | None,
    prune: PruneRule | None,
    name: str | None,
    tags: list[str],
) -> dict[str, Any]:
    """A sweep from a preset (or a model's defaults), `--set` overrides and the axes, as the
    body of ``POST /api/sweeps``; the server validates it and every trial."""
    base = base_spec(preset, model)
    base["hyperparameters"].update(parse_assignments(assignments))
    default_name = f"{base['name']} sweep" if preset else f"{base['model']} sweep from the CLI"
    sweep: dict[str, Any] = {
        "name": name or default_name,
        "model": base["model"],
        "tags": [*base.get("tags", []), *tags],
        "hyperparameters": base["hyperparameters"],
        "grid": parse_grid(grid),
        "random": parse_random(random),
    }
    optional = {"trials": trials, "max_parallel": max_parallel,
                "seeds": None if seeds is None else parse_seeds(seeds),
                "pruning": None if prune is None else {"rule": prune.value}}  # fmt: skip
    return sweep | {key: value for key, value in optional.items() if value is not None}


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


@cli.command()
def sweep(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The whole sweep as YAML or JSON (the body of POST /api/sweeps), "
            "instead of the options below.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model to train (see `cifarlab models`); default custom_cnn.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Start from a ready spec (see `cifarlab presets`).")
    ] = None,
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
    name: Annotated[str | None, typer.Option(help="Sweep name.")] = None,
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
        raise _fail(str(exc)) from None
    client = _client(api_url)
    try:
        launched = client.launch_sweep(body)
        ids = launched["experiment_ids"]
        console.print(
            f"launched sweep {launched['id']}: {len(ids)} trials: "
            f"{client.base_url}/sweeps/{launched['id']}",
            highlight=False,
        )
        console.print(f"trial ids: {' '.join(map(str, ids))}", highlight=False)
        if follow:
            finished = _follow_sweep(client, launched["id"])
    except ApiError as exc:
        raise _fail(str(exc)) from None
    if follow:
        lost = {k: n for k, n in finished["counts"].items() if k in ("failed", "cancelled")}
        if lost:
            raise _fail(f"sweep {launched['id']}: {_counts_text(lost)}; "
                        f"`cifarlab sweeps retry {launched['id']}` runs them again")  # fmt: skip


sweeps_cli = typer.Typer(help="Sweeps: list them, show one's trials, cancel or retry them.")
cli.add_typer(sweeps_cli, name="sweeps")


@sweeps_cli.callback(invoke_without_command=True)
def sweeps_list(
    context: typer.Context,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    api_url: ApiUrl = None,
) -> None:
    """List sweeps, newest first, with their trials' statuses (or run a command below)."""
    if context.invoked_subcommand is not None:
        return
    try:
        page = _client(api_url).sweeps(limit=limit)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    table = Table("id", "name", "model", "trials", "status", "created")
    for item in page["items"]:
        table.add_row(str(item["id"]), item["name"], item["model"], str(item["trial_count"]),
                      _counts_text(item["counts"]), item["created_at"][:19])  # fmt: skip
    console.print(table)
    console.print(f"{len(page['items'])} of {page['total']}")


@sweeps_cli.command("show")
def sweeps_show(sweep_id: int, api_url: ApiUrl = None) -> None:
    """Show a sweep's trials (varied values, seed, status, best metric) and its best trial."""
    client = _client(api_url)
    try:
        found = client.sweep(sweep_id)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    _print_sweep(found)
    console.print(f"{client.base_url}/sweeps/{sweep_id}", highlight=False)


def _act_on_sweep(sweep_id: int, api_url: str | None, *, retry: bool) -> None:
    client = _client(api_url)
    try:
        found = client.retry_sweep(sweep_id) if retry else client.cancel_sweep(sweep_id)
    except ApiError as exc:
        raise _fail(str(exc)) from None
    ids = found["experiment_ids"]
    verb = "retrying" if retry else "cancelled"
    console.print(f"sweep {sweep_id}: {verb} {len(ids)} trials {' '.join(map(str, ids))}",
                  highlight=False)  # fmt: skip


@sweeps_cli.command("cancel")
def sweeps_cancel(sweep_id: int, api_url: ApiUrl = None) -> None:
    """Cancel a sweep's queued and running trials; finished ones keep their results."""
    _act_on_sweep(sweep_id, api_url, retry=False)


@sweeps_cli.command("retry")
def sweeps_retry(sweep_id: int, api_url: ApiUrl = None) -> None:
    """Queue a sweep's failed and cancelled trials again, under its cap."""
    _act_on_sweep(sweep_id, api_url, retry=True)


bench_cli = typer.Typer(help="Benchmarks; each prints a table, then one JSON line.")
cli.add_typer(bench_cli, name="bench")


def _scratch_database() -> None:
    """Benchmarks record into a throwaway database, never the user's experiment list."""
    from app.migrate import upgrade

    scratch = Path(tempfile.mkdtemp(prefix="cifarlab-bench-"))
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
    print(json.dumps(figures))  # the last line: one JSON object for scripts


ChartOption = Annotated[
    Path | None, typer.Option(help="Also draw the figures as an SVG bar chart at this path.")
]


@bench_cli.command("train")
def bench_train(
    train_size: Annotated[
        int, typer.Option(help="Training images (80% fit, 20% validate).")
    ] = 10_000,
    epochs: Annotated[int, typer.Option(help="Epochs per run; the first is not timed.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 128,
    rounds: Annotated[int, typer.Option(help="Alternating rounds of all variants.")] = 2,
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
    _require_training()
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
        raise _fail(str(exc)) from None
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
    make_private_dir(user_cache)
    (scratch / "datasets").symlink_to(user_cache, target_is_directory=True)
    os.environ["CIFARLAB_DATA_DIR"] = str(scratch)
    get_settings.cache_clear()
    from worker.bench import accuracy_benchmark

    try:
        figures = accuracy_benchmark(target=target, presets=presets, plain_epochs=20, seed=seed)
    except ValueError as exc:
        raise _fail(str(exc)) from None

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


@bench_cli.command("memory")
def bench_memory(
    model: Annotated[str, typer.Option(help="A transfer model of the zoo.")] = "efficientnet_b2",
    image_size: Annotated[int, typer.Option(help="Pixels per side after resizing.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 128,
    steps: Annotated[int, typer.Option(help="Training steps to run.")] = 10,
    chart: ChartOption = None,
) -> None:
    """Peak memory of a transfer model training on the full training set at a large size."""
    _require_training()
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


@bench_cli.command("web")
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
    print(json.dumps(figures, default=str))  # the last line: one JSON object for scripts
    if not figures["goals"]["correct"]:
        raise typer.Exit(code=1)


@bench_cli.command("stream")
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


@bench_cli.command("login")
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


user_cli = typer.Typer(help="Accounts (run on the server: it writes the database directly).")
token_cli = typer.Typer(help="API tokens for the CLI and scripts (written to the database).")
cli.add_typer(user_cli, name="user")
cli.add_typer(token_cli, name="token")

PasswordOption = Annotated[
    str | None,
    typer.Option(
        help="Default: asked for, hidden \\[env: CIFARLAB_PASSWORD].", envvar="CIFARLAB_PASSWORD"
    ),
]


def _database(data_dir: Path | None, database_url: str | None, *, create: bool = False) -> str:
    """Point at the database the options name and check it is there; its description."""
    from app.database_location import DatabaseMissing, open_database, point_at

    point_at(data_dir=data_dir, database_url=database_url)
    try:
        return open_database(create=create)
    except DatabaseMissing as exc:
        raise _fail(str(exc)) from None


def _when(moment: Any) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@user_cli.command("create")
def user_create(
    username: str,
    admin: Annotated[bool, typer.Option(help="May change everyone's experiments.")] = False,
    password: PasswordOption = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    create: Annotated[
        bool, typer.Option(help="Make the database if there is none yet (or migrate it).")
    ] = False,
) -> None:
    """Create an account; once one exists, cifarlab asks everyone to sign in."""
    from app.core.db import session_scope
    from app.services import accounts

    where = _database(data_dir, database_url, create=create)
    secret = password or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as session:
            accounts.create_user(session=session, username=username, password=secret,
                                 is_admin=admin)  # fmt: skip
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"created {'admin ' if admin else ''}user {username} in {where}", highlight=False)


@user_cli.command("list")
def user_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List the accounts."""
    from app.core.db import session_scope
    from app.services import accounts

    where = _database(data_dir, database_url)
    table = Table("user", "admin", "created", "disabled")
    with session_scope() as session:
        for user in accounts.list_users(session=session):
            table.add_row(user.username, "yes" if user.is_admin else "",
                          _when(user.created_at), _when(user.disabled_at))  # fmt: skip
    console.print(table)
    console.print(f"database: {where}", highlight=False)


@user_cli.command("password")
def user_password(
    username: str,
    password: PasswordOption = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password; every browser signed in as USERNAME is signed out."""
    from app.core.db import session_scope
    from app.services import accounts

    where = _database(data_dir, database_url)
    secret = password or typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as session:
            user = accounts.require_user(session=session, username=username)
            accounts.set_password(session=session, user=user, password=secret)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"new password for {username}, signed out everywhere, in {where}",
                  highlight=False)  # fmt: skip


def _set_disabled(username: str, disabled: bool, where: str) -> None:
    from app.core.db import session_scope
    from app.services import accounts

    try:
        with session_scope() as session:
            user = accounts.require_user(session=session, username=username)
            accounts.set_disabled(session=session, user=user, disabled=disabled)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    state = "disabled: signed out, tokens refused" if disabled else "enabled"
    console.print(f"user {username} {state}, in {where}", highlight=False)


@user_cli.command("disable")
def user_disable(username: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Stop USERNAME signing in: their browsers are signed out and their tokens refused."""
    _set_disabled(username, True, _database(data_dir, database_url))


@user_cli.command("enable")
def user_enable(username: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Let a disabled USERNAME sign in again; their unexpired tokens work again."""
    _set_disabled(username, False, _database(data_dir, database_url))


@token_cli.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[
        float | None, typer.Option(help="Lifetime [default: CIFARLAB_TOKEN_DAYS, 90].")
    ] = None,
    no_expiry: Annotated[
        bool, typer.Option(help="Never expires (until revoked); for a service's own token.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API token for USERNAME and print it (shown once; keep it secret)."""
    from datetime import timedelta

    from app.core.db import session_scope
    from app.core.models import utcnow
    from app.services import accounts

    if no_expiry and expires_in_days is not None:
        raise _fail("choose --expires-in-days or --no-expiry, not both")
    if expires_in_days is not None and not expires_in_days > 0:
        raise _fail("--expires-in-days: give a number of days above 0")
    where = _database(data_dir, database_url)
    if no_expiry:
        expires = None
    elif expires_in_days is None:
        expires = accounts.default_token_expiry()
    else:
        expires = utcnow() + timedelta(days=expires_in_days)
    try:
        with session_scope() as session:
            user = accounts.require_user(session=session, username=username)
            token = accounts.create_token(session=session, user=user, name=name,
                                          expires_at=expires)  # fmt: skip
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(token, highlight=False)
    until = "never expires" if expires is None else f"expires {_when(expires)} UTC"
    console.print(f"token {name!r} for {username}, {until}, in {where}", style="dim",
                  highlight=False)  # fmt: skip
    console.print("use it as CIFARLAB_API_TOKEN=... or Authorization: Bearer ...", style="dim")


@token_cli.command("list")
def token_list(
    username: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List API tokens: who, what for, when made, last used and expires (never the token)."""
    from app.core.db import session_scope
    from app.services import accounts

    where = _database(data_dir, database_url)
    table = Table("id", "user", "name", "created", "last used", "expires")
    try:
        with session_scope() as session:
            user = None if username is None else accounts.require_user(
                session=session, username=username)  # fmt: skip
            for row in accounts.list_tokens(session=session, user=user):
                expires = "never" if row.expires_at is None else _when(row.expires_at)
                table.add_row(str(row.id), row.user.username, row.name, _when(row.created_at),
                              _when(row.last_used_at), expires)  # fmt: skip
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(table)
    console.print(f"database: {where}", highlight=False)


@token_cli.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The id `cifarlab token list` shows.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API token: it is refused from the next request on."""
    from app.core.db import session_scope
    from app.services import accounts

    where = _database(data_dir, database_url)
    try:
        with session_scope() as session:
            row = accounts.revoke_token(session=session, token_id=token_id)
            label = f"token {token_id} ({row.name!r} of {row.user.username})"
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"revoked {label} in {where}", highlight=False)


def main() -> None:
    restrict_file_modes()  # inherited by everything `up`, `web` and `worker` start
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per poll drowns the bars
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin
    cli()


if __name__ == "__main__":
    main()
