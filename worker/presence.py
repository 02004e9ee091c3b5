"""A worker process announces itself (name, host, device) while it is up, for /workers.

This runs in Celery's main process, which forks the pool, so it must not import
TensorFlow: the device comes from CUDA_VISIBLE_DEVICES and nvidia-smi instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from app import crud
from app.db import session_scope

logger = logging.getLogger(__name__)
INTERVAL_SECONDS = 10.0
_stop = threading.Event()


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


def _announce(name: str, device: str) -> None:
    while True:
        try:
            with session_scope() as session:
                crud.see_worker(
                    session=session, name=name, hostname=socket.gethostname(), pid=os.getpid(),
                    device=device,
                )  # fmt: skip
        except Exception:  # the database may be briefly away; say so and keep going
            logger.exception("could not record worker %s as alive", name)
        if _stop.wait(INTERVAL_SECONDS):
            return


@worker_ready.connect
def _on_ready(sender: Any, **_kwargs: Any) -> None:
    name = sender.hostname
    threading.Thread(
        target=_announce, args=(name, describe_device()), name="cifarlab-presence", daemon=True
    ).start()


@worker_shutdown.connect
def _on_shutdown(sender: Any, **_kwargs: Any) -> None:
    _stop.set()
    try:
        with session_scope() as session:
            crud.forget_worker(session=session, name=sender.hostname)
    except Exception:
        logger.exception("could not remove worker %s", sender.hostname)
