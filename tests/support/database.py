"""A database migrated once per test run, copied for each test.

Running every migration for every test cost about 0.15 s a test on SQLite (more on
PostgreSQL); a copy costs a millisecond or so and is as isolated: each test still gets a
database of its own, at head.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import psycopg

from app.bench.postgres import PostgresServer
from app.migrate import upgrade

DATABASE_FILE = "cifarlab.db"  # where Settings puts SQLite inside the data directory
TEMPLATE_DATABASE = "cifarlab_template"


def migrate_sqlite_template(directory: Path) -> Path:
    """An SQLite file at head, in rollback-journal mode so that the one file is the whole
    database (the app turns WAL back on when it connects to a copy)."""
    template = directory / DATABASE_FILE
    upgrade(f"sqlite:///{template}")
    with sqlite3.connect(template) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    return template


def copy_sqlite_template(template: Path, data_dir: Path) -> None:
    """The template as ``data_dir``'s database, private (0700 directory, 0600 file) as the app
    makes its own."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(data_dir / DATABASE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(template, "rb") as source, os.fdopen(descriptor, "wb") as target:
        shutil.copyfileobj(source, target)


def migrate_postgres_template(server: PostgresServer) -> str:
    """A database at head that ``copy_postgres_template`` clones; returns its name."""
    upgrade(server.create_database(TEMPLATE_DATABASE))  # the migration closes its connections
    return TEMPLATE_DATABASE


def copy_postgres_template(server: PostgresServer, template: str, name: str) -> str:
    """A new database ``name`` cloned from ``template`` (PostgreSQL copies its files, far
    quicker than migrating); returns its URL."""
    with psycopg.connect(
        f"host=127.0.0.1 port={server.port} user={server.user} dbname=postgres", autocommit=True
    ) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.url(name)
