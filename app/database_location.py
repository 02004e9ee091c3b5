"""Which database a command works on, and whether cifarlab's schema is there yet.

Admin commands (`migrate`, `user`, `token`) write the database directly. Run with another
data directory than the server's, they used to make a new, empty SQLite file in
~/.cifarlab, report success, and leave the running server open to anyone. So they take the
same ``--data-dir`` and ``--database-url`` as ``cifarlab up``, say where they wrote, and only
``cifarlab migrate`` (or ``user create --create``) creates a database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from app.core import db
from app.core.config import Settings, get_settings
from app.migrate import alembic_config, upgrade


class DatabaseMissing(Exception):
    """The message says where was looked and what to pass."""


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
    """What to print: a SQLite database's file, or the URL with its password hidden. A URL
    SQLAlchemy cannot read is a ``DatabaseMissing`` saying what one looks like."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseMissing(
            f"{url!r} is not a database URL; give sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DATABASE (--database-url, CIFARLAB_DATABASE_URL)"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).resolve())
    return parsed.render_as_string(hide_password=True)


def schema_revisions(url: str) -> set[str] | None:
    """The schema revisions stamped in the database; None when there is no database. A
    missing SQLite file is not created to look."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).is_file():
            return None
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


ADMIN_ADVICE = (
    "pass --data-dir or --database-url (the ones `cifarlab up` or the server uses), or "
    "`cifarlab user create --create` to start a new one"
)
SERVICE_ADVICE = "run `cifarlab migrate` first, with the same CIFARLAB_DATABASE_URL"
"""For `cifarlab web` and `cifarlab worker`, which take the database from the environment:
started on one without the schema, every page answered 500 ("no such table")."""


@contextmanager
def reaching(where: str) -> Iterator[None]:
    """Around opening or making the database at ``where``: a driver this install lacks, a
    folder that cannot hold the file, or a server that refuses, as a ``DatabaseMissing``
    saying so (each ended an admin command in a traceback)."""
    try:
        yield
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DatabaseMissing(
            f"the database at {where} needs a driver this install lacks ({exc}); for "
            "PostgreSQL install cifarlab's postgres extra: pip install 'cifarlab[postgres]'"
        ) from None
    except OSError as exc:
        raise DatabaseMissing(f"cannot make the database at {where}: {exc}") from None
    except SQLAlchemyError as exc:
        raise DatabaseMissing(f"cannot open the database at {where}: {exc}") from None


def open_database(*, create: bool = False, advice: str = ADMIN_ADVICE) -> str:
    """The configured database, described, once it is there and current; ``create`` makes
    or migrates it instead of refusing; ``advice``: what to do when it is not there."""
    url = get_settings().sqlalchemy_url
    where = describe(url)
    if create:
        with reaching(where):
            upgrade()
        return where
    with reaching(where):
        found = schema_revisions(url)
    if not found:
        raise DatabaseMissing(f"no cifarlab database at {where}; {advice}")
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if found != heads:
        raise DatabaseMissing(
            f"the database at {where} has an older schema; run `cifarlab migrate` first"
        )
    return where
