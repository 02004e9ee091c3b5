"""Which workers are online and what each is running: GET /api/workers and the workers page
share this one definition of "online"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Worker, utcnow
from app.core.telemetry import describe_telemetry

WORKER_ONLINE_SECONDS = 60


def list_online(session: Session) -> list[dict[str, Any]]:
    """Workers seen in the last minute, their device, what each is running and that run's
    last resource readings in words (CPU, memory, GPUs)."""
    workers = online(session)
    running = crud.running_on(session=session, worker_names=[w.name for w in workers])
    return [
        {
            "name": w.name, "hostname": w.hostname, "pid": w.pid, "device": w.device,
            "started_at": w.started_at, "last_seen_at": w.last_seen_at,
            "restarts": w.restarts, "last_exit": w.last_exit, "running": running.get(w.name),
            "resources": describe_telemetry(running[w.name].telemetry) if w.name in running else [],
        }
        for w in workers
    ]  # fmt: skip


def online(session: Session) -> Sequence[Worker]:
    """Workers seen in the last ``WORKER_ONLINE_SECONDS``: the one definition of online."""
    seen_since = utcnow() - timedelta(seconds=WORKER_ONLINE_SECONDS)
    return crud.online_workers(session=session, seen_since=seen_since)
