"""Another local user can neither reach the embedded Redis nor read the data directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from app.embedded_redis import free_port, redis_url, start_redis


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_redis_refuses_clients_without_its_password(tmp_path: Path) -> None:
    port = free_port()
    process = start_redis(tmp_path, port)
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).lpush("cifarlab", "task")
        assert redis.Redis.from_url(redis_url(tmp_path, port)).ping()
        password = tmp_path / "redis" / "password"
        assert mode(password) == 0o600 and mode(tmp_path / "redis") == 0o700
        # Not on the command line, where `ps` shows it to everyone.
        assert password.read_text().strip() not in Path(f"/proc/{process.pid}/cmdline").read_text()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cifarlab_makes_its_data_directory_and_database_private(tmp_path: Path) -> None:
    """As `cifarlab migrate` runs from a shell with the usual umask (022)."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFARLAB_")}
    env["CIFARLAB_DATA_DIR"] = str(data_dir)
    subprocess.run(
        [sys.executable, "-c", "import os, sys; os.umask(0o022); from app.cli import main; "
         "sys.argv = ['cifarlab', 'migrate']; main()"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    assert mode(data_dir) == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert data_dir / "cifarlab.db" in files
    assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}


def test_an_existing_data_directory_is_tightened(tmp_path: Path) -> None:
    from app.core.config import make_private_dir

    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    make_private_dir(data_dir)
    assert mode(data_dir) == 0o700
