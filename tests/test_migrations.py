"""Migrations build the schema the models describe, and tear it down again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from app.migrate import downgrade, upgrade
from app.models import Base


def test_upgrade_head_then_downgrade_base_on_empty_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    for name, table in Base.metadata.tables.items():
        columns = {column["name"] for column in inspect(engine).get_columns(name)}
        assert columns == set(table.columns.keys()), name
    downgrade(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_upgrade_and_downgrade_on_postgresql(postgres_server) -> None:
    url = postgres_server.create_database("migrations")
    upgrade(url)
    engine = create_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    downgrade(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_upgrading_keeps_every_row(tmp_path: Path) -> None:
    """Table rebuilds on SQLite must not cascade: experiments keep their epochs and results."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, revision="0001")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.exec_driver_sql(
            "INSERT INTO experiments (id, name, model, spec, tags, status, created_at, "
            "current_epoch, epoch_progress, total_epochs) VALUES (1, 'old', 'custom_cnn', '{}', "
            "'[]', 'succeeded', '2026-01-01 00:00:00', 2, 1.0, 2)"
        )
        for epoch in (1, 2):
            connection.exec_driver_sql(
                "INSERT INTO epoch_metrics (experiment_id, epoch, phase) "
                f"VALUES (1, {epoch}, 'train')"
            )
        connection.exec_driver_sql(
            "INSERT INTO evaluations (experiment_id, accuracy, classes, confusion_matrix, report, "
            "test_size, created_at) VALUES (1, 0.5, '[]', '[]', '{}', 10, '2026-01-01 00:00:00')"
        )
    engine.dispose()
    upgrade(url)
    with create_engine(url).connect() as connection:
        counts = [
            connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            for table in ("experiments", "epoch_metrics", "evaluations")
        ]
        foreign_keys = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    assert counts == [1, 2, 1]
    assert foreign_keys == []
