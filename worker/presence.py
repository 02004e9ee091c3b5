"""A worker announces itself (name, host, device) while it is up, for /workers.

Celery's main process forks the pool, so it must hold no threads and no database
connections: a fork taken while another thread holds a lock (the connection pool's, the
logging module's) leaves the child deadlocked. The announcing loop therefore runs in a
separate process that the main process starts when ready and stops when shutting down.
It also must not import TensorFlow: the device comes from CUDA_VISIBLE_DEVICES and
nvidia-smi instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from celery.signals import worker_ready, worker_shutdown

logger = logging.getLogger(__name__)
INTERVAL_SECONDS = 10.0
_announcer: list[subprocess.Popen[bytes]] = []


def describe_device() -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    gpus = [gpu for gpu in visible.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if gpus and shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", gpus[0]]
        try:
            name = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            name = ""
        if name.strip():
            return f"GPU {gpus[0]}: {name.strip()}"
    return f"CPU ({os.cpu_count()} cores)"


def announce(name: str, worker_pid: int) -> None:
    """The announcing process: upsert the row every interval while the worker lives."""
    from app.core import crud
    from app.core.db import session_scope

    device = describe_device()
    hostname = socket.gethostname()
    while os.getppid() == worker_pid:
        try:
            with session_scope() as session:
                crud.see_worker(
                    session=session, name=name, hostname=hostname, pid=worker_pid, device=device
                )
        except Exception:  # the database may be briefly away; say so and keep going
            logger.exception("could not record worker %s as alive", name)
        time.sleep(INTERVAL_SECONDS)


def forget(name: str) -> None:
    from app.core import crud
    from app.core.db import session_scope

    with session_scope() as session:
        crud.forget_worker(session=session, name=name)


@worker_ready.connect
def _on_ready(sender: Any, **_kwargs: Any) -> None:
    argv = [sys.executable, "-m", "worker.presence", sender.hostname, str(os.getpid())]
    _announcer.append(subprocess.Popen(argv))


@worker_shutdown.connect
def _on_shutdown(sender: Any, **_kwargs: Any) -> None:
    for process in _announcer:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    # A short-lived process again: the main process keeps no connection of its own.
    subprocess.run([sys.executable, "-m", "worker.presence", "--forget", sender.hostname],
                   timeout=30, check=False)  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "--forget":
        forget(sys.argv[2])
    else:
        announce(sys.argv[1], int(sys.argv[2]))
