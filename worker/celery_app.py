"""The Celery app workers run; configured from the same Settings as the web."""

from __future__ import annotations

from celery import Celery

from app.core.config import get_settings
from app.core.queue import celery_config

app = Celery("cifarlab", include=["worker.tasks", "worker.presence"])
app.conf.update(celery_config(get_settings()))
