"""The commands that run cifarlab's services: `up` (everything on this machine, supervised),
and `web`, `worker` and `migrate` one by one, as compose runs them."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Annotated, TextIO

import httpx
import typer

from app.cli.options import DatabaseUrl, DataDir
from app.cli.output import console, fail, labelled
from app.core.config import get_settings, make_private_dir
from app.core.loopback import is_loopback
from app.embedded_redis import free_port, redis_url, start_redis
from app.supervisor import Backoff, Supervisor
from app.web_server import command as web_command
from app.web_server import listen_error
from app.worker_extra import cannot_train_reason

commands = typer.Typer()


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


@commands.command()
def up(
    host: Annotated[str, typer.Option(help="Address the web server listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web server.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Database, broker and models \\[env: CIFARLAB_DATA_DIR].")
    ] = None,
    redis_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Embedded Redis port; 0 picks a free one.")
    ] = 0,
    verbose: Annotated[
        bool,
        typer.Option(help="Also show the migrations', Celery's, uvicorn's and TensorFlow's logs."),
    ] = False,
) -> None:
    """Start everything on this machine, and restart any part that dies.

    The parts: an embedded Redis, SQLite, one worker and the web server."""
    if verbose:
        logging.getLogger("alembic").setLevel(logging.INFO)
    _refuse_taken_ports(host, port, redis_port)
    if data_dir is not None:
        os.environ["CIFARLAB_DATA_DIR"] = str(data_dir.resolve())
    get_settings.cache_clear()
    settings = get_settings()
    make_private_dir(settings.data_dir)
    held = _hold_data_dir(settings.data_dir, f"http://{host}:{port}")  # noqa: F841 (held open)
    redis_port = redis_port or free_port()
    os.environ["CIFARLAB_REDIS_URL"] = redis_url(settings.data_dir, redis_port)
    os.environ["CIFARLAB_API_URL"] = f"http://{host}:{port}"
    get_settings.cache_clear()

    from app.migrate import upgrade

    upgrade()
    try:
        check_exposure(host)
    except ValueError as exc:
        raise fail(str(exc)) from None
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
            labelled(
                "warning:", "yellow", f"no worker started: {cannot_train}. "
                "Experiments wait in the queue until a worker connects.",
            ),
            highlight=False,
        )  # fmt: skip
    console.print(
        f"cifarlab is running at http://{host}:{port} (data in {settings.data_dir}); "
        "press Ctrl-C to stop",
        highlight=False,
    )
    raise typer.Exit(code=supervisor.wait())


def _refuse_taken_ports(host: str, port: int, redis_port: int) -> None:
    """Before anything starts: on a port in use the web (or Redis) would fail and restart
    forever, and the health check would find the server already there and call it this one."""
    wanted = {"--port": (host, port), "--redis-port": ("127.0.0.1", redis_port)}
    for option, (address, number) in wanted.items():
        error = None if number == 0 else listen_error(address, number)
        if error is None:
            continue
        advice = (
            f"Is cifarlab already running there? Stop it, or choose another {option}."
            if error.errno == errno.EADDRINUSE
            else "Check --host."
        )
        raise fail(f"cannot listen on {address}:{number}: {error.strerror or error}. {advice}")


def _hold_data_dir(data_dir: Path, url: str) -> TextIO:
    """One `cifarlab up` per data folder: a second started its own Redis appending to the same
    file as the first's, and its own worker and web on the same database. An advisory lock,
    which the kernel lets go when this process ends, even by SIGKILL: none goes stale."""
    handle = (data_dir / "up.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        raise fail(
            f"cifarlab up is already running on {data_dir} ({holder}); use it, stop it first, "
            "or give another --data-dir"
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}, {url}")
    handle.flush()
    return handle


def require_training() -> None:
    """Commands that train stop here, before any work, on an install without the extra."""
    reason = cannot_train_reason()
    if reason is not None:
        raise fail(reason)


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


@commands.command()
def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
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
        raise fail(str(exc)) from None
    _require_database()
    count = processes or get_settings().web_process_count
    os.execv(sys.executable, web_command(host, port, count))


def _require_database() -> None:
    """A service refuses to start on a database without cifarlab's current schema."""
    from app.database_location import SERVICE_ADVICE, DatabaseMissing, open_database

    try:
        open_database(advice=SERVICE_ADVICE)
    except DatabaseMissing as exc:
        raise fail(str(exc)) from None


def parse_gpus(gpus: str) -> list[str]:
    """`0,1,3` -> ["0", "1", "3"]: one worker per listed GPU."""
    found = [part.strip() for part in gpus.split(",") if part.strip()]
    if not found or not all(part.isdigit() for part in found) or len(set(found)) != len(found):
        raise ValueError(f"--gpus {gpus!r}: list distinct GPU numbers, e.g. --gpus 0,1")
    return found


@commands.command()
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
    require_training()
    _require_database()
    name = name or default_worker_name()
    if gpus is None:
        os.execv(sys.executable, worker_argv(concurrency, loglevel, hostname=name))
    try:
        devices = parse_gpus(gpus)
    except ValueError as exc:
        raise fail(str(exc)) from None
    supervisor = Supervisor(peers=True)
    for device in devices:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": device}
        prefix, _, host = name.partition("@")
        argv = worker_argv(1, loglevel, hostname=f"{prefix}-gpu{device}@{host or '%h'}")
        supervisor.start(f"worker gpu {device}", argv, env)
    raise typer.Exit(code=supervisor.wait())


@commands.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date, creating the database if there is none.

    With CIFARLAB_ADMIN_USER set and no account yet, also create that admin."""
    from app.core.db import session_scope
    from app.database_location import (
        DatabaseMissing,
        describe,
        point_at,
        reaching,
        schema_revisions,
    )
    from app.migrate import upgrade
    from app.services import accounts

    settings = point_at(data_dir=data_dir, database_url=database_url)
    try:
        where = describe(settings.sqlalchemy_url)
        with reaching(where):
            before = schema_revisions(settings.sqlalchemy_url)
            upgrade()
            after = schema_revisions(settings.sqlalchemy_url) or set()
    except DatabaseMissing as exc:
        raise fail(str(exc)) from None
    if not before:
        console.print(f"created a new cifarlab database: {where}", highlight=False)
    elif before == after:
        console.print(f"cifarlab database is up to date: {where}", highlight=False)
    else:
        old, new = (", ".join(sorted(revisions)) for revisions in (before, after))
        console.print(f"upgraded the cifarlab database from schema {old} to {new}: {where}",
                      highlight=False)  # fmt: skip
    if settings.admin_user:
        try:
            with session_scope() as session:
                admin = accounts.bootstrap_admin(
                    session=session,
                    username=settings.admin_user,
                    password_file=settings.admin_password_file,
                )
        except ValueError as exc:
            raise fail(f"first admin {settings.admin_user!r} not created: {exc}") from None
        if admin is not None:
            console.print(f"created admin user {admin.username} (CIFARLAB_ADMIN_USER)")
