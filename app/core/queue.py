"""The Celery client the web uses to enqueue runs, and the settings workers share.

The web never imports the worker package (it would drag in TensorFlow); it sends tasks by
name instead.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery

from app.core.config import Settings, get_settings

TRAIN_TASK = "cifarlab.train"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Settings that matter for hour-long GPU tasks; workers and the web use the same."""
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_seconds},
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue,
        "task_routes": {TRAIN_TASK: {"queue": settings.queue}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "worker_prefetch_multiplier": 1,
        "worker_max_tasks_per_child": 1,
        "worker_hijack_root_logger": False,
    }


def web_client_config(settings: Settings) -> dict[str, Any]:
    """The web's client gives up on a broker call after ``broker_timeout_seconds``: with
    Redis stopped (SIGSTOP), kombu's defaults held /api/health and launches for 15-30 s. A
    launch that cannot be sent stays in the outbox (app/services/outbox.py), so nothing
    retries here.
    Workers keep the defaults: their blocking reads wait on Redis by design."""
    timeout = settings.broker_timeout_seconds
    config = celery_config(settings)
    config["broker_transport_options"] = {
        **config["broker_transport_options"],
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "max_retries": 0,
    }
    config.update(
        broker_connection_timeout=timeout,
        broker_connection_max_retries=0,
        task_publish_retry=False,
    )
    return config


@lru_cache
def get_celery() -> Celery:
    """The web's (and the CLI's) client; workers build theirs in worker/celery_app.py."""
    app = Celery("cifarlab")
    app.conf.update(web_client_config(get_settings()))
    return app


def enqueue_training(experiment_id: int) -> None:
    """Send only the id: the worker reads the spec from the database it was committed to.
    Raises (within ``broker_timeout_seconds``) when the broker cannot take it."""
    get_celery().send_task(TRAIN_TASK, args=[experiment_id], queue=get_settings().queue)


def restore_unacknowledged(limit: int = 10_000) -> None:
    """Put every message taken but not acknowledged back in its queue, as if the visibility
    timeout had passed. Only for a broker none of whose consumers is alive: `cifarlab up`'s own
    Redis after its one worker died. That worker's message would otherwise wait out the
    7-day timeout, and a run it had taken but not yet claimed would stay queued all along."""
    celery = get_celery()
    with celery.connection_for_write(transport_options={"visibility_timeout": 0}) as connection:
        connection.default_channel.qos.restore_visible(num=limit, interval=1)


def online_workers(timeout_seconds: float = 1.0) -> list[str]:
    """Workers that answer a ping. A broker that cannot be reached fails at once: kombu's
    own retries took 6 s, longer than a health probe waits for /api/health."""
    celery = get_celery()
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0)
        replies = celery.control.ping(timeout=timeout_seconds, connection=connection) or []
    return sorted(name for reply in replies for name in reply)
