"""Which database a command works on, and whether cifarlab's schema is there yet.

Admin commands write the database directly. Run with another data directory than the
server's, they would write a database no server reads, and report success. So they take the
same ``--data-dir`` and ``--database-url`` as ``cifarlab up``, say where they wrote, and only
``cifarlab migrate`` creates a database.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from app import db
from app.config import Settings, get_settings


def point_at(*, data_dir: Path | None, database_url: str | None) -> Settings:
    """Settings with these overrides, set in the environment as ``cifarlab up`` sets them, so
    Alembic's env.py and any process started from here read the same database."""
    if data_dir is not None:
        os.environ["CIFARLAB_DATA_DIR"] = str(data_dir.resolve())
    if database_url is not None:
        os.environ["CIFARLAB_DATABASE_URL"] = database_url
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()
    return get_settings()


def describe(url: str) -> str:
    """What to print: a SQLite database's file, or the URL with its password hidden."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def has_schema(url: str) -> bool:
    """Whether cifarlab's tables are there. A missing SQLite file is not created to look."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return False
        if not Path(parsed.database).is_file():
            return False
    engine = create_engine(parsed)
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table("alembic_version")
    finally:
        engine.dispose()
