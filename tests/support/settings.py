"""Settings as tests change them: every process reads CIFARLAB_* variables once and caches
what it built from them, so a test that sets one clears those caches."""

from __future__ import annotations

from app.core import config, db, queue


def clear_caches() -> None:
    """Forget cached settings and the engine, sessions and Celery app built from them."""
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()
    queue.get_celery.cache_clear()
